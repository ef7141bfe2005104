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
