//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

// The device specs xl parses itself (not libxlutil), read as Xen 4.17's
// tools/xl/xl_parse.c reads them, into the fields of the libxl device structure xl fills.
// Where xl goes on after a bad term (it prints a message and ignores parse_nic_config's
// result, or stops at a term without '='), domb refuses the spec instead: a term dropped
// silently would launch something else than the file says.

/// `strtok(buf, ",")` followed by xl's `while (*p == ' ') p++`: the non-empty fields of
/// `spec`, each without its leading spaces (tabs and trailing spaces stay, as in xl).
func xlTokens(_ spec: String) -> [Substring] {
    spec.split(separator: ",", omittingEmptySubsequences: true).map { $0.drop { $0 == " " } }
}

/// A VIFSPEC (xl-network-configuration(5)) as `parse_nic_config` fills `libxl_device_nic`.
public struct XLNicSpec: Hashable, Sendable {
    /// `libxl_nic_type`: `type=vif` or `type=ioemu`.
    public enum NICType: String, Hashable, Sendable {
        case vif
        case ioemu
    }

    public var nicType: NICType?
    /// Six bytes; nil when not given (libxl then draws a random one in Xen's OUI).
    public var mac: [UInt8]?
    public var bridge: String?
    /// `gatewaydev=`, or `netdev=`, its deprecated alias.
    public var gatewaydev: String?
    public var ip: String?
    public var script: String?
    /// `backend=`: a domain name (xl passes a number through as a name too).
    public var backendDomain: String?
    /// `vifname=` (libxl's `ifname`).
    public var vifname: String?
    public var model: String?
    public var rate: XLVifRate?
    /// The rate as written.
    public var rateText: String?
    /// `devid=`; nil means the item's index in the list (xl's ARRAY_EXTEND_INIT).
    public var devid: Int32?
    public var mtu: Int32?
    public var trusted: Bool?
    /// COLO keys (`colo_*`, `forwarddev`), by name: libxl's unstable COLO settings.
    public var colo: [String: String] = [:]

    public init() {}

    /// COLO keys of parse_nic_config (4.17).
    static let coloKeys: Set<String> = {
        var keys: Set<String> = ["forwarddev", "colo_checkpoint_host", "colo_checkpoint_port", "colo_compare_pri_in",
            "colo_compare_sec_in", "colo_compare_out", "colo_compare_notify_dev", "colo_filter_sec_rewriter0_queue"]
        for socket in ["sock_mirror", "sock_compare_sec_in", "sock_redirector0", "sock_redirector1", "sock_redirector2",
            "sock_compare_pri_in", "sock_compare_notify", "sock_sec_redirector0", "sock_sec_redirector1"] {
            for suffix in ["id", "ip", "port"] { keys.insert("colo_\(socket)_\(suffix)") }
        }
        for filter in ["filter_redirector0", "filter_redirector1", "filter_sec_redirector0", "filter_sec_redirector1"] {
            for suffix in ["queue", "indev", "outdev"] { keys.insert("colo_\(filter)_\(suffix)") }
        }
        keys.insert("colo_filter_mirror_queue")
        keys.insert("colo_filter_mirror_outdev")
        return keys
    }()

    /// Parses one VIFSPEC.
    /// - Parameter rate: `xlu_vif_parse_rate` (the libxlutil wrapper's), for `rate=`.
    /// - Throws: `ParseError` naming the term: an unknown keyword, an invalid `type` or
    ///   `mac`, `accel` (xl ignores those three with a message; domb refuses), a rate or
    ///   number xl refuses.
    public static func parse(
        _ spec: String, rate parseRate: (String) throws(ParseError) -> XLVifRate
    ) throws(ParseError) -> XLNicSpec {
        var nic = XLNicSpec()
        for token in xlTokens(spec) {
            let term = String(token)
            if term == "trusted" || term == "untrusted" {
                nic.trusted = term == "trusted"
                continue
            }
            guard let equals = term.firstIndex(of: "=") else { throw unrecognized(term) }
            let key = String(term[..<equals])
            let value = String(term[term.index(after: equals)...])
            // Strings are copied as written (`replace_string`), trailing spaces included.
            switch key {
            case "bridge": nic.bridge = value
            case "netdev", "gatewaydev": nic.gatewaydev = value
            case "ip": nic.ip = value
            case "script": nic.script = value
            case "backend": nic.backendDomain = value
            case "vifname": nic.vifname = value
            case "model": nic.model = value
            case "type":
                guard let type = NICType(rawValue: value) else {
                    throw .invalid("\(TerminalText.escape(term)): type is vif or ioemu (xl: \"Invalid parameter `type'\")")
                }
                nic.nicType = type
            case "mac":
                nic.mac = try mac(value, term: term)
            case "rate":
                nic.rate = try parseRate(value)
                nic.rateText = value
            case "devid":
                nic.devid = try number(value, term: term)
            case "mtu":
                nic.mtu = try number(value, term: term)
            case "accel":
                throw .unsupported("\(TerminalText.escape(term)): xl 4.17 does not support accel and ignores it; drop it")
            case let colo where coloKeys.contains(colo):
                nic.colo[colo] = value
            default:
                throw unrecognized(term)
            }
        }
        return nic
    }

    private static func unrecognized(_ term: String) -> ParseError {
        .invalid("unrecognized argument `\(TerminalText.escape(term))' (xl 4.17 ignores it; domb does not drop it silently)")
    }

    /// `mac=`: six `strtoul(…, 16)` values up to 255, each followed by one separator
    /// character of any kind (xl skips exactly one). xl reads past the string when it has
    /// fewer than six groups; domb refuses that.
    static func mac(_ text: String, term: String) throws(ParseError) -> [UInt8] {
        var rest = Substring(text)
        var bytes: [UInt8] = []
        for index in 0..<6 {
            let number = CStrtoul(rest, base: 16)
            guard number.converted, !number.negative, number.value <= 255 else {
                throw .invalid("\(TerminalText.escape(term)): not six hex bytes xx:xx:xx:xx:xx:xx (xl: \"Invalid parameter `mac'\")")
            }
            bytes.append(UInt8(number.value))
            if index < 5 {
                guard !number.rest.isEmpty else {
                    throw .invalid("\(TerminalText.escape(term)): fewer than six bytes (xl would read past the value)")
                }
                rest = number.rest.dropFirst()
            }
        }
        return bytes
    }

    /// `parse_ulong`: `strtoul(…, 10)`, anything after the digits ignored (as xl does),
    /// ULONG_MAX or no digits refused; then stored in an `int`, so above INT_MAX is refused.
    static func number(_ text: String, term: String) throws(ParseError) -> Int32 {
        let number = CStrtoul(Substring(text), base: 10)
        guard number.converted, !number.negative, !number.overflow, let value = Int32(exactly: number.value) else {
            throw .invalid("\(TerminalText.escape(term)): not a number from 0 to \(Int32.max) (xl: \"failed to convert\")")
        }
        return value
    }
}

/// A `vtpm` item (xl.cfg(5) VTPM_SPEC_STRING) as xl_parse.c fills `libxl_device_vtpm`.
public struct XLVtpmSpec: Hashable, Sendable {
    public var backendDomain: String
    /// Lowercase RFC 4122 text; nil lets libxl generate one at every boot.
    public var uuid: String?

    public init(backendDomain: String, uuid: String?) {
        self.backendDomain = backendDomain
        self.uuid = uuid
    }

    /// - Throws: `ParseError`: no `backend` ("vtpm spec missing required backend field"),
    ///   an unknown key or a bad uuid (xl exits on both), or a term without `=`, at which xl
    ///   stops reading the spec and drops the rest (domb refuses it).
    public static func parse(_ spec: String) throws(ParseError) -> XLVtpmSpec {
        var backend: String?
        var uuid: String?
        for (key, value) in try xlKeyValues(spec, what: "vtpm") {
            switch key {
            case "backend": backend = value
            case "uuid":
                guard let canonical = XenstoreUUID.canonical(value) else {
                    throw .invalid("Failed to parse vtpm UUID: \(TerminalText.escape(value))")
                }
                uuid = canonical
            default: throw .invalid("Unknown string `\(TerminalText.escape(key))' in vtpm spec")
            }
        }
        guard let backend else { throw .invalid("vtpm spec missing required backend field!") }
        return XLVtpmSpec(backendDomain: backend, uuid: uuid)
    }
}

/// A `p9` item (xl.cfg(5) 9PFS_SPEC_STRING) as xl_parse.c fills `libxl_device_p9`.
public struct XLP9Spec: Hashable, Sendable {
    public var tag: String
    public var securityModel: String
    public var path: String
    public var backendDomain: String?

    public init(tag: String, securityModel: String, path: String, backendDomain: String?) {
        self.tag = tag
        self.securityModel = securityModel
        self.path = path
        self.backendDomain = backendDomain
    }

    /// The whole `p9` list. xl keeps `tag`, `security_model`, `path` and `backend` from one
    /// item to the next (its variables live outside the loop), so an item that leaves one
    /// out inherits the previous item's; domb refuses such an item rather than copy a value
    /// the item does not show.
    /// - Throws: `ParseError`: a missing field ("9pfs spec missing required field!"), an
    ///   unknown key, a term without `=` (xl stops there), an inherited field.
    public static func parse(_ items: [String]) throws(ParseError) -> [XLP9Spec] {
        var seen: Set<String> = []
        var result: [XLP9Spec] = []
        for item in items {
            var fields: [String: String] = [:]
            for (key, value) in try xlKeyValues(item, what: "9pfs") {
                guard ["security_model", "path", "tag", "backend"].contains(key) else {
                    throw .invalid("Unknown string `\(TerminalText.escape(key))' in 9pfs spec")
                }
                fields[key] = value
            }
            if let inherited = seen.subtracting(fields.keys).sorted().first {
                throw .invalid(
                    "\"\(TerminalText.escape(item))\" has no \(inherited): xl 4.17 would reuse the previous item's; write it out")
            }
            seen.formUnion(fields.keys)
            guard let tag = fields["tag"], let securityModel = fields["security_model"], let path = fields["path"] else {
                throw .invalid("\"\(TerminalText.escape(item))\": 9pfs spec missing required field! (tag, security_model, path)")
            }
            result.append(XLP9Spec(tag: tag, securityModel: securityModel, path: path, backendDomain: fields["backend"]))
        }
        return result
    }
}

/// A `vkb` item (xl.cfg(5) VKB_SPEC_STRING) as `parse_vkb_config` fills `libxl_device_vkb`.
public struct XLVkbSpec: Hashable, Sendable {
    /// `libxl_vkb_backend`.
    public enum BackendType: String, Hashable, Sendable {
        case qemu
        case linux
    }

    public var backendDomain: String?
    public var backendType: BackendType
    public var uniqueID: String?
    /// The `feature-*`, `multi-touch-*`, `width` and `height` numbers given, by name
    /// (`strtoul(…, 0)`, stored as 32-bit); `feature-multi-touch` is set to 1 when a
    /// multi-touch size is, as xl sets it.
    public var numbers: [String: UInt32]

    static let numberKeys = [
        "feature-disable-keyboard", "feature-disable-pointer", "feature-abs-pointer", "feature-raw-pointer",
        "feature-multi-touch", "multi-touch-width", "multi-touch-height", "multi-touch-num-contacts", "width", "height",
    ]

    /// - Throws: `ParseError`: an unknown key or backend type, no `backend-type`
    ///   ("backend-type should be set in vkb spec"), multi-touch without its sizes.
    public static func parse(_ spec: String) throws(ParseError) -> XLVkbSpec {
        var backend: String?
        var type: BackendType?
        var uniqueID: String?
        var numbers: [String: UInt32] = [:]
        for token in xlTokens(spec) {
            let term = String(token)
            guard let equals = term.firstIndex(of: "=") else {
                throw .invalid("Unknown string \"\(TerminalText.escape(term))\" in vkb spec")
            }
            let key = String(term[..<equals])
            let value = String(term[term.index(after: equals)...])
            switch key {
            case "backend": backend = value
            case "backend-type":
                // libxl_vkb_backend_from_string compares without case.
                guard let parsed = BackendType(rawValue: value.lowercased()) else {
                    throw .invalid("Unknown backend_type \"\(TerminalText.escape(value))\" in vkb spec")
                }
                type = parsed
            case "unique-id": uniqueID = value
            case let name where numberKeys.contains(name):
                // strtoul(oparg, NULL, 0) into a uint32_t field: junk is ignored, as in xl;
                // a value that does not fit is refused (xl would truncate it).
                let number = CStrtoul(Substring(value), base: 0)
                guard !number.negative, !number.overflow, let fitted = UInt32(exactly: number.value) else {
                    throw .invalid("\(TerminalText.escape(term)): not a 32-bit number")
                }
                numbers[name] = fitted
            default:
                throw .invalid("Unknown string \"\(TerminalText.escape(term))\" in vkb spec")
            }
        }
        guard let type else { throw .invalid("backend-type should be set in vkb spec") }
        let sizes = ["multi-touch-height", "multi-touch-width", "multi-touch-num-contacts"]
        if sizes.contains(where: { (numbers[$0] ?? 0) != 0 }) { numbers["feature-multi-touch"] = 1 }
        if (numbers["feature-multi-touch"] ?? 0) != 0 && !sizes.contains(where: { (numbers[$0] ?? 0) != 0 }) {
            throw .invalid("multi-touch-width, multi-touch-height, multi-touch-num-contacts should be set for multi touch in vkb spec")
        }
        return XLVkbSpec(backendDomain: backend, backendType: type, uniqueID: uniqueID, numbers: numbers)
    }
}

/// The `key=value` terms of a vtpm or p9 item, as xl walks them: `strtok` on commas,
/// leading spaces skipped, split at the first `=`. xl stops at a term without `=` and
/// ignores the rest; domb refuses the item there.
func xlKeyValues(_ spec: String, what: String) throws(ParseError) -> [(String, String)] {
    var result: [(String, String)] = []
    for token in xlTokens(spec) {
        guard let equals = token.firstIndex(of: "=") else {
            throw .invalid(
                "\(what) spec \"\(TerminalText.escape(spec))\": `\(TerminalText.escape(String(token)))' has no '=' "
                    + "(xl 4.17 stops reading there and drops the rest)")
        }
        result.append((String(token[..<equals]), String(token[token.index(after: equals)...])))
    }
    return result
}

/// A `vdispl` item (xl.cfg(5) VDISPL_SPEC_STRING) as `parse_vdispl_config` fills
/// `libxl_device_vdispl`.
public struct XLVdisplSpec: Hashable, Sendable {
    /// The model's connector: xl's `<id>:<W>x<H>`.
    public typealias Connector = VdisplSettings.Connector

    public var backendDomain: String?
    /// `be-alloc=` (`strtoul(…, 0)` into a bool).
    public var backendAllocates: Bool
    public var connectors: [Connector]

    /// - Throws: `ParseError`: an unknown key ("Unknown string … in vdispl spec"), a connector
    ///   xl cannot read ("Can't parse connector resolution"), none at all ("At least one
    ///   connector should be specified."); and the forms xl crashes or reads garbage on (an
    ///   empty `connectors=`, a connector without `:`), which domb refuses.
    public static func parse(_ spec: String) throws(ParseError) -> XLVdisplSpec {
        var result = XLVdisplSpec(backendDomain: nil, backendAllocates: false, connectors: [])
        for token in xlTokens(spec) {
            let term = String(token)
            if term.hasPrefix("backend=") {
                result.backendDomain = String(term.dropFirst("backend=".count))
            } else if term.hasPrefix("be-alloc=") {
                let number = CStrtoul(term.dropFirst("be-alloc=".count), base: 0)
                result.backendAllocates = number.value != 0
            } else if term.hasPrefix("connectors=") {
                result.connectors = try connectors(String(term.dropFirst("connectors=".count)))
            } else {
                throw .invalid("Unknown string \"\(TerminalText.escape(term))\" in vdispl spec")
            }
        }
        guard !result.connectors.isEmpty else { throw .invalid("At least one connector should be specified.") }
        return result
    }

    /// `split_string_into_string_list(…, ";")` then `split_string_into_pair(…, ":")` and
    /// `sscanf("%ux%u")` for each.
    static func connectors(_ text: String) throws(ParseError) -> [Connector] {
        let items = text.split(separator: ";", omittingEmptySubsequences: true)
        guard !items.isEmpty else {
            throw .invalid("connectors= is empty (xl 4.17 crashes on it)")
        }
        var connectors: [Connector] = []
        for item in items {
            let parts = item.split(separator: ":", omittingEmptySubsequences: true)
            guard parts.count >= 2 else {
                throw .invalid("connector \"\(TerminalText.escape(String(item)))\" is not ID:WxH (xl 4.17 would read garbage)")
            }
            guard let (width, afterWidth) = scanUnsigned(parts[1]), afterWidth.first == "x",
                let (height, _) = scanUnsigned(afterWidth.dropFirst())
            else { throw .invalid("Can't parse connector resolution \"\(TerminalText.escape(String(parts[1])))\"") }
            connectors.append(Connector(uniqueID: String(parts[0]), width: width, height: height))
        }
        return connectors
    }

    /// `sscanf`'s `%u`: leading white space, an optional sign (domb refuses `-`), digits;
    /// the value must fit 32 bits (C would wrap it).
    private static func scanUnsigned(_ text: Substring) -> (UInt32, Substring)? {
        let number = CStrtoul(text, base: 10)
        guard number.converted, !number.negative, let value = UInt32(exactly: number.value) else { return nil }
        return (value, number.rest)
    }
}
