//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The device lists of an xl.cfg file (`disk`, `vif`, `vtpm`, `p9`, `vkb`), each item
/// parsed as xl 4.17 parses it (DISKSPEC by libxlutil's `xlu_disk_parse`, the others by
/// xl_parse.c's rules in ``XLNicSpec``, ``XLVtpmSpec``, ``XLP9Spec``, ``XLVkbSpec``), then
/// put into the launch model; what the model cannot carry is refused with the key and line.
enum XLDevices {
    static func `import`(_ reader: inout XLReader, type: GuestType) throws(ParseError) -> [DeviceSpec] {
        // libxl always gives a guest console 0.
        var devices = [DeviceSpec(kind: .console)]
        let config = reader.config
        if let (items, line) = try reader.strings("vif") {
            for item in items {
                let nic = try located("vif", line: line, item) { () throws(ParseError) in
                    try XLNicSpec.parse(item) { (rate) throws(ParseError) in try config.parseVifRate(rate) }
                }
                devices.append(try located("vif", line: line, item) { () throws(ParseError) in try vif(nic) })
            }
        }
        if let (items, line) = try reader.strings("disk") {
            for item in items {
                let disk = try located("disk", line: line, item) { () throws(ParseError) in try config.parseDisk(item) }
                devices.append(try located("disk", line: line, item) { () throws(ParseError) in try vbd(disk) })
            }
        }
        if let (items, line) = try reader.strings("vtpm") {
            for item in items {
                let vtpm = try located("vtpm", line: line, item) { () throws(ParseError) in try XLVtpmSpec.parse(item) }
                devices.append(
                    DeviceSpec(kind: .vtpm, backend: backendName(vtpm.backendDomain), settings: vtpm.uuid.map { ["uuid": $0] } ?? [:]))
            }
        }
        if let (items, line) = try reader.strings("p9") {
            let specs = try located("p9", line: line, nil) { () throws(ParseError) in try XLP9Spec.parse(items) }
            for p9 in specs {
                devices.append(
                    DeviceSpec(
                        kind: .p9, backend: backendName(p9.backendDomain),
                        settings: ["tag": p9.tag, "path": p9.path, "security_model": p9.securityModel]))
            }
        }
        if let (items, line) = try reader.strings("vkb") {
            for item in items {
                let vkb = try located("vkb", line: line, item) { () throws(ParseError) in try XLVkbSpec.parse(item) }
                if let (name, _) = vkb.numbers.sorted(by: { $0.key < $1.key }).first {
                    throw .unsupported("line \(line): vkb: \"\(TerminalText.escape(item))\": \(name) has no place in the launch model")
                }
                var settings = ["backend-type": vkb.backendType.rawValue]
                if let id = vkb.uniqueID { settings["unique-id"] = id }
                devices.append(DeviceSpec(kind: .vkbd, backend: backendName(vkb.backendDomain), settings: settings))
            }
        }
        return devices
    }

    /// Runs `body`, putting the line, the key and the item in front of what it throws.
    private static func located<T>(
        _ key: String, line: Int, _ item: String?, _ body: () throws(ParseError) -> T
    ) throws(ParseError) -> T {
        do {
            return try body()
        } catch {
            let what = item.map { " \"\(TerminalText.escape($0))\"" } ?? ""
            throw ParseError(error.code, "line \(line): \(key)\(what): \(error.reason)")
        }
    }

    /// xl passes `backend=` through as a name; libxl takes all digits as a domid, so `0`
    /// is dom0 as `Domain-0` is.
    static func backendName(_ name: String?) -> String {
        guard let name, name != "0" else { return dom0Name }
        return name
    }

    private static func vbd(_ disk: XLDiskSpec) throws(ParseError) -> DeviceSpec {
        if disk.colo != nil { throw .unsupported("COLO block replication has no place in the launch model") }
        if disk.trusted != nil { throw .unsupported("trusted/untrusted: xl 4.17 does not take them in a DISKSPEC") }
        if disk.backend == .tap { throw .unsupported("backendtype tap: libxl 4.17 has no blktap backend") }
        var settings: [String: String] = ["vdev": disk.vdev, "format": disk.format.rawValue]
        settings["target"] = disk.target
        settings["access"] = disk.readWrite ? "rw" : "ro"
        if disk.isCDROM { settings["devtype"] = "cdrom" }
        settings["backendtype"] = disk.backend?.rawValue
        settings["script"] = disk.script
        settings["discard"] = disk.discard.map { $0 ? "1" : "0" }
        if disk.directIOSafe { settings["direct-io-safe"] = "1" }
        let kind: DeviceSpec.Kind = disk.specification == .virtio ? .virtioDisk : .vbd
        if kind == .virtioDisk { settings["devtype"] = nil }
        return DeviceSpec(kind: kind, backend: backendName(disk.backendDomain), settings: settings)
    }

    private static func vif(_ nic: XLNicSpec) throws(ParseError) -> DeviceSpec {
        if let key = nic.colo.keys.sorted().first {
            throw .unsupported("\(key): COLO network replication has no place in the launch model")
        }
        var settings: [String: String] = [:]
        settings["mac"] = nic.mac.map { $0.map { byte in hex(byte) }.joined(separator: ":") }
        settings["bridge"] = nic.bridge
        settings["script"] = nic.script
        settings["ip"] = nic.ip
        settings["mtu"] = nic.mtu.map(String.init)
        settings["rate"] = nic.rateText
        settings["vifname"] = nic.vifname
        settings["type"] = nic.nicType?.rawValue
        settings["model"] = nic.model
        settings["gatewaydev"] = nic.gatewaydev
        settings["trusted"] = nic.trusted.map { $0 ? "1" : "0" }
        return DeviceSpec(
            kind: .vif, backend: backendName(nic.backendDomain), devid: nic.devid.map { UInt32($0) }, settings: settings)
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
