//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// `xl -N create FILE` against `domb config import-xl FILE --libxl-json`: two JSON forms of
/// `libxl_domain_config` (libxl's own generator, which leaves out every field at its
/// default), compared field by field.
///
/// Before comparing, each side gets the defaults libxl itself fills in when it builds the
/// domain, so that a field one side sets to libxl's default and the other leaves unset is
/// not a difference (each rule names the libxl 4.17 function). What remains different is
/// reported; the few differences that are domb's choice are reported apart, with the
/// reason (``Result/accepted``).
public struct LibxlConfigComparison: Sendable {
    public struct Difference: Hashable, Sendable, CustomStringConvertible {
        /// `b_info.max_vcpus`, `disks[0].backend`.
        public var path: String
        /// The value in compact JSON, or nil when the side leaves the field out.
        public var xl: String?
        public var domb: String?
        /// Why the difference is domb's choice (for ``Result/accepted``).
        public var reason: String?

        public var description: String {
            "\(path): xl \(xl ?? "(unset)"), domb \(domb ?? "(unset)")" + (reason.map { " — \($0)" } ?? "")
        }
    }

    public struct Result: Hashable, Sendable {
        public var differences: [Difference]
        public var accepted: [Difference]
        public var matches: Bool { differences.isEmpty }
    }

    /// - Parameter uuidGiven: whether the xl.cfg file sets `uuid`; otherwise xl and domb
    ///   each draw one and `c_info.uuid` is not compared.
    public static func compare(xl: JSONValue, domb: JSONValue, uuidGiven: Bool) -> Result {
        var accepted: [Difference] = []
        var xlSide = normalized(xl, uuidGiven: uuidGiven)
        var dombSide = normalized(domb, uuidGiven: uuidGiven)
        acceptDerivedMACs(xl: &xlSide, domb: &dombSide, accepted: &accepted)
        var differences: [Difference] = []
        diff(xlSide, dombSide, path: "", into: &differences)
        return Result(differences: differences, accepted: accepted)
    }

    // MARK: libxl's defaults

    static func normalized(_ value: JSONValue, uuidGiven: Bool) -> JSONValue {
        guard case .object(var root) = value else { return value }
        if case .object(var cInfo) = root["c_info"] {
            if !uuidGiven { cInfo["uuid"] = nil }
            // libxl resolves pool_name to a pool id; Pool-0 is pool 0, the default.
            if cInfo["pool_name"] == .string("Pool-0") { cInfo["pool_name"] = nil }
            // libxl__domain_create_info_setdefault.
            cInfo["run_hotplug_scripts"] = cInfo["run_hotplug_scripts"] ?? .string("True")
            root["c_info"] = .object(cInfo)
        }
        if case .object(var bInfo) = root["b_info"] {
            // libxl__domain_build_info_setdefault: 1 vCPU (vCPU 0 online), 32 MiB, target = max.
            bInfo["max_vcpus"] = bInfo["max_vcpus"] ?? .integer(1)
            bInfo["avail_vcpus"] = bInfo["avail_vcpus"] ?? .array([.integer(0)])
            bInfo["max_memkb"] = bInfo["max_memkb"] ?? .integer(32 * 1024)
            bInfo["target_memkb"] = bInfo["target_memkb"] ?? bInfo["max_memkb"]
            if case .object(var hvm) = bInfo["type.hvm"], hvm["firmware"] == .string(XLImport.defaultHVMLoader) {
                // libxl__domain_firmware loads XENFIRMWAREDIR/hvmloader when none is named.
                hvm["firmware"] = nil
                bInfo["type.hvm"] = .object(hvm)
            }
            root["b_info"] = .object(bInfo)
        }
        // libxl__domain_build_info_setdefault's defaults of the booleans the import takes only
        // at those values (XLDefault).
        for entry in XLDefault.all { fill(&root, entry.path[...], with: .string(entry.value ? "True" : "False")) }
        root["disks"] = devices(root["disks"]) { disk in
            // libxl__device_disk_setdefault.
            disk["specification"] = disk["specification"] ?? .string("xen")
            let writable = disk["readwrite"].map { $0 != .integer(0) } ?? false
            disk["discard_enable"] = disk["discard_enable"] ?? .string(writable ? "True" : "False")
            disk["trusted"] = disk["trusted"] ?? .string("True")
            dropDom0Backend(&disk)
        }
        root["nics"] = devices(root["nics"]) { nic in
            // libxl__device_nic_setdefault.
            nic["trusted"] = nic["trusted"] ?? .string("True")
            dropDom0Backend(&nic)
        }
        root["vtpms"] = devices(root["vtpms"]) { vtpm in
            if vtpm["backend_domname"] == .string("0") { vtpm["backend_domname"] = .string("Domain-0") }
        }
        root["p9s"] = devices(root["p9s"]) { dropDom0Backend(&$0) }
        root["vkbs"] = devices(root["vkbs"]) { dropDom0Backend(&$0) }
        root["vdispls"] = devices(root["vdispls"]) { dropDom0Backend(&$0) }
        return .object(root)
    }

    /// Sets the field at `path` to `value` if it is absent, where its parent object exists.
    private static func fill(_ object: inout [String: JSONValue], _ path: ArraySlice<String>, with value: JSONValue) {
        guard let key = path.first else { return }
        if path.count == 1 {
            object[key] = object[key] ?? value
        } else if case .object(var child)? = object[key] {
            fill(&child, path.dropFirst(), with: value)
            object[key] = .object(child)
        }
    }

    /// libxl takes a backend named by its domid: `0` and `Domain-0` are dom0, the default.
    private static func dropDom0Backend(_ device: inout [String: JSONValue]) {
        if device["backend_domname"] == .string("0") || device["backend_domname"] == .string("Domain-0") {
            device["backend_domname"] = nil
        }
    }

    private static func devices(_ value: JSONValue?, _ rule: (inout [String: JSONValue]) -> Void) -> JSONValue? {
        guard case .array(let items)? = value else { return value }
        return .array(items.map { item in
            guard case .object(var fields) = item else { return item }
            rule(&fields)
            return .object(fields)
        })
    }

    /// A vif without `mac=`: xl leaves the MAC to libxl, which draws a random one at each
    /// start; domb derives a stable one so that the launch (and its measurement) is
    /// reproducible.
    private static func acceptDerivedMACs(xl: inout JSONValue, domb: inout JSONValue, accepted: inout [Difference]) {
        guard case .object(let xlRoot) = xl, case .object(var dombRoot) = domb,
            case .array(let xlNics)? = xlRoot["nics"], case .array(var dombNics)? = dombRoot["nics"]
        else { return }
        for index in dombNics.indices where index < xlNics.count {
            guard case .object(let xlNic) = xlNics[index], xlNic["mac"] == nil,
                case .object(var dombNic) = dombNics[index], let mac = dombNic["mac"]
            else { continue }
            dombNic["mac"] = nil
            dombNics[index] = .object(dombNic)
            accepted.append(
                Difference(
                    path: "nics[\(index)].mac", xl: nil, domb: mac.canonicalString,
                    reason: "xl leaves it to libxl's random choice; domb derives a stable MAC"))
        }
        dombRoot["nics"] = .array(dombNics)
        domb = .object(dombRoot)
    }

    // MARK: Walking

    private static func diff(_ xl: JSONValue?, _ domb: JSONValue?, path: String, into out: inout [Difference]) {
        switch (xl, domb) {
        case (.object(let a)?, .object(let b)?):
            for key in Set(a.keys).union(b.keys).sorted() {
                diff(a[key], b[key], path: path.isEmpty ? key : "\(path).\(key)", into: &out)
            }
        case (.array(let a)?, .array(let b)?) where a.count == b.count:
            for index in a.indices { diff(a[index], b[index], path: "\(path)[\(index)]", into: &out) }
        default:
            if xl != domb {
                out.append(Difference(path: path, xl: xl?.canonicalString, domb: domb?.canonicalString))
            }
        }
    }
}
