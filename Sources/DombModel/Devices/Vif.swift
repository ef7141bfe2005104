//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

extension DeviceKind {
    /// A PV network interface (`libxl_nic.c`, xl.cfg `vif`).
    public static let vif = DeviceKind("vif")
}

/// A PV network interface, xl-network-configuration(5).
public struct VifSettings: DeviceSettings {
    public static let kind = DeviceKind.vif
    public static let settingNames = ["mac", "bridge", "script", "ip", "mtu", "rate", "vifname", "type", "model", "gatewaydev", "trusted"]

    /// `type`: a PV vif, or an emulated NIC with a PV path (`ioemu`, HVM only).
    public enum NICType: String, Hashable, Sendable, CaseIterable {
        case vif
        case ioemu
    }

    /// A unicast MAC address; nil lets domb derive one (libxl would pick a random one).
    public var mac: MACAddress?
    public var bridge: String?
    public var script: String?
    public var ip: String?
    /// 68 to 65535; libxl's default is 1500.
    public var mtu: UInt32?
    public var rate: VifRate?
    public var vifname: String?
    /// Default: `ioemu` for HVM guests, `vif` otherwise.
    public var type: NICType?
    /// The emulated NIC model (`e1000`, …) for `ioemu`: the device model's business.
    public var model: String?
    public var gatewaydev: String?
    /// Whether the frontend may trust the backend (libxl default: yes).
    public var trusted: Bool?

    public init(
        mac: MACAddress? = nil, bridge: String? = nil, script: String? = nil, ip: String? = nil, mtu: UInt32? = nil,
        rate: VifRate? = nil, vifname: String? = nil, type: NICType? = nil, model: String? = nil, gatewaydev: String? = nil,
        trusted: Bool? = nil
    ) {
        self.mac = mac
        self.bridge = bridge
        self.script = script
        self.ip = ip
        self.mtu = mtu
        self.rate = rate
        self.vifname = vifname
        self.type = type
        self.model = model
        self.gatewaydev = gatewaydev
        self.trusted = trusted
    }

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        mac = try settings.take("mac", expected: "six hex pairs xx:xx:xx:xx:xx:xx") { MACAddress($0) }
        bridge = settings.take("bridge")
        script = settings.take("script")
        ip = settings.take("ip")
        mtu = try settings.takeNumber("mtu", in: 68...65535)
        rate = try settings.take("rate", expected: "a rate such as 100Mb/s or 10MB/s@20ms") { VifRate($0) }
        vifname = settings.take("vifname")
        type = try settings.take("type", as: NICType.self)
        model = settings.take("model")
        gatewaydev = settings.take("gatewaydev")
        trusted = try settings.takeFlag("trusted")
    }

    public var namedSettings: [(name: String, value: String)] {
        let values: [String?] = [
            mac?.description, bridge, script, ip, mtu.map(String.init), rate?.text, vifname, type?.rawValue, model, gatewaydev,
            trusted.map { $0 ? "1" : "0" },
        ]
        return zip(Self.settingNames, values).compactMap { name, value in value.map { (name, $0) } }
    }

    public static let xlListKey: String? = "vif"

    /// VIFSPECs as xl's `parse_nic_config` reads them (``XLNicSpec``); the devid is the
    /// item's index unless `devid=` gives one (xl's ARRAY_EXTEND_INIT).
    public static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec] {
        try XLDevices.eachItem(items) { (_, item) throws(ParseError) -> DeviceSpec in
            let nic = try XLNicSpec.parse(item) { (rate) throws(ParseError) in try xl.parseVifRate(rate) }
            if let key = nic.colo.keys.sorted().first {
                throw .unsupported("\(key): COLO network replication has no place in the launch model")
            }
            var settings = VifSettings(
                bridge: nic.bridge, script: nic.script, ip: nic.ip, vifname: nic.vifname, model: nic.model,
                gatewaydev: nic.gatewaydev, trusted: nic.trusted)
            if let bytes = nic.mac {
                let text = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
                guard let mac = MACAddress(text) else { throw .invalid("mac \(text) is not a MAC address") }
                settings.mac = mac
            }
            if let mtu = nic.mtu { settings.mtu = UInt32(mtu) }
            if let text = nic.rateText {
                guard let rate = VifRate(text) else { throw .invalid("rate \"\(TerminalText.escape(text))\"") }
                settings.rate = rate
            }
            switch nic.nicType {
            case .vif?: settings.type = .vif
            case .ioemu?: settings.type = .ioemu
            case nil: break
            }
            return DeviceSpec(settings, backend: XLDevices.backend(nic.backendDomain), devid: nic.devid.map { UInt32($0) })
        }
    }

    public var identities: [DeviceIdentity] { mac.map { [.mac($0)] } ?? [] }

    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] {
        var problems: [LaunchProblem] = []
        if let mac, !mac.isUnicast {
            problems.append(context.problem(.deviceSetting, "mac \(mac) is not a unicast address"))
        }
        if type == .ioemu && context.domain.type != .hvm {
            problems.append(context.problem(.deviceSetting, "type ioemu (an emulated NIC) needs an HVM guest"))
        }
        return problems
    }

    public static let xenstoreOrder = 30

    /// `libxl__set_xenstore_nic` (libxl_nic.c, 4.17: mtu, hotplug-status, trusted).
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        let mac = (self.mac ?? MACAddress.derived(domain: context.domain.name, devid: context.devid)).description
        let mtu = self.mtu ?? 1500
        let nicType: String
        switch type ?? (context.domain.type == .hvm ? .ioemu : .vif) {
        case .vif: nicType = "vif"
        case .ioemu: nicType = "vif_ioemu"
        }
        let (common, commonFront) = context.commonKeys
        var back = common
        back.append(("script", XenstoreTemplate(literal: context.scriptPath(script ?? "vif-bridge"))))
        if let vifname { back.append(("vifname", XenstoreTemplate(literal: vifname))) }
        back.append(("mac", XenstoreTemplate(literal: mac)))
        if let ip { back.append(("ip", XenstoreTemplate(literal: ip))) }
        if let gatewaydev { back.append(("gatewaydev", XenstoreTemplate(literal: gatewaydev))) }
        if let rate { back.append(("rate", "\(rate.bytesPerInterval),\(rate.intervalMicroseconds)")) }
        if mtu != 1500 { back.append(("mtu", "\(mtu)")) }
        back.append(("bridge", XenstoreTemplate(literal: bridge ?? context.defaultBridge)))
        back.append(("handle", "\(context.devid)"))
        back.append(("type", XenstoreTemplate(literal: nicType)))
        back.append(("hotplug-status", ""))
        let front = commonFront + [
            ("handle", "\(context.devid)"), ("mac", XenstoreTemplate(literal: mac)), ("trusted", (trusted ?? true) ? "1" : "0"),
        ]
        return XenstoreDevice(kind: "vif", context: context, back: back, front: front, roFront: [("mtu", "\(mtu)")])
    }
}

/// A vif's bandwidth limit, as xl's `rate=` gives it: `<n>[GMK](B|b)/s[@<n>[m|u][s]]`, G/M/K
/// decimal, `b` bits, the replenishment interval 50 ms unless given. Read by libxlutil's own
/// `xlu_vif_parse_rate` (xl's parser), which gives it as libxl writes it: bytes per interval
/// and the interval in microseconds.
public struct VifRate: Hashable, Sendable {
    /// The rate as written.
    public let text: String
    public let bytesPerInterval: UInt64
    public let intervalMicroseconds: UInt32

    /// nil where xl refuses the rate.
    public init?(_ text: String) {
        guard let rate = try? XLUtilConfig(parsing: []).parseVifRate(text) else { return nil }
        self.text = text
        self.bytesPerInterval = rate.bytesPerInterval
        self.intervalMicroseconds = rate.intervalMicroseconds
    }
}

// MARK: - xl.cfg

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
