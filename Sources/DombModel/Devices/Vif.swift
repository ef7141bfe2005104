//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

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

/// A vif's bandwidth limit, as xl's `rate=` gives it (`xlu_vif_parse_rate`,
/// libxlu_vif.c): `<n>[GMK](B|b)/s[@<n>[m|u][s]]`, G/M/K decimal, `b` bits, the
/// replenishment interval 50 ms unless given. libxl writes it as bytes per interval and
/// the interval in microseconds.
public struct VifRate: Hashable, Sendable {
    /// The rate as written.
    public let text: String
    public let bytesPerInterval: UInt64
    public let intervalMicroseconds: UInt32

    public init?(_ text: String) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let rate = Array(parts[0].utf8)
        func leadingNumber(_ bytes: [UInt8]) -> (UInt64, Int)? {
            let digits = bytes.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard !digits.isEmpty, digits.count <= 20 else { return nil }
            let string = String(decoding: digits, as: UTF8.self)
            // strtoull(..., 0): a leading 0 means octal.
            let value = string.count > 1 && string.hasPrefix("0") ? UInt64(string.dropFirst(), radix: 8) : UInt64(string)
            return value.map { ($0, digits.count) }
        }
        guard let (amount, used) = leadingNumber(rate), amount > 0, amount <= UInt64(UInt32.max) else { return nil }
        let units: [String: (UInt64, Bool)] = [
            "B/s": (1, false), "b/s": (1, true), "KB/s": (1000, false), "Kb/s": (1000, true),
            "MB/s": (1_000_000, false), "Mb/s": (1_000_000, true), "GB/s": (1_000_000_000, false), "Gb/s": (1_000_000_000, true),
        ]
        guard let (scale, bits) = units[String(decoding: rate[used...], as: UTF8.self)] else { return nil }
        let bytesPerSecond = amount * scale / (bits ? 8 : 1)
        var interval: UInt64 = 50_000
        if parts.count == 2 {
            let spec = Array(parts[1].utf8)
            guard let (value, count) = leadingNumber(spec), value > 0, value <= UInt64(UInt32.max) else { return nil }
            switch String(decoding: spec[count...], as: UTF8.self) {
            case "", "s": interval = value * 1_000_000
            case "m", "ms": interval = value * 1000
            case "u", "us": interval = value
            default: return nil
            }
            guard interval <= UInt64(UInt32.max) else { return nil }
        }
        let (product, overflow) = bytesPerSecond.multipliedReportingOverflow(by: interval)
        guard !overflow else { return nil }
        self.text = text
        self.bytesPerInterval = product / 1_000_000
        self.intervalMicroseconds = UInt32(interval)
    }
}
