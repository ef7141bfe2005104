//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

extension DeviceKind {
    /// A virtio-mmio network device (libxl's generic virtio device).
    public static let virtioNet = DeviceKind("virtio-net")
}

/// A virtio-mmio network device: libxl's generic virtio device (`libxl_virtio.c`, from
/// libxl 4.18) of type `virtio,device1`. xl 4.17 has no key for it; it is a domb binding
/// extension.
public struct VirtioNetSettings: DeviceSettings {
    public static let kind = DeviceKind.virtioNet
    public static let settingNames = ["mac", "transport", "base", "irq", "type"]

    /// The MAC address the backend gives the device (checked; libxl writes no key for it).
    public var mac: MACAddress?
    public var transport: VirtioDiskSettings.Transport?
    public var base: UInt64?
    public var irq: UInt32?
    /// The virtio device compatible, `virtio,device<N>` (default `virtio,device1`: network).
    public var type: String?

    public init(mac: MACAddress? = nil, transport: VirtioDiskSettings.Transport? = nil, base: UInt64? = nil, irq: UInt32? = nil, type: String? = nil) {
        self.mac = mac
        self.transport = transport
        self.base = base
        self.irq = irq
        self.type = type
    }

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        mac = try settings.take("mac", expected: "six hex pairs xx:xx:xx:xx:xx:xx") { MACAddress($0) }
        transport = try settings.take("transport", as: VirtioDiskSettings.Transport.self)
        base = try settings.take("base", expected: "a number (decimal or 0x hex)") { UInt64(decimalOrHex: $0) }
        irq = try settings.take("irq", expected: "an interrupt number") { UInt64(decimalOrHex: $0).flatMap { UInt32(exactly: $0) } }
        type = try settings.take("type", expected: "virtio,device<N>") { $0.hasPrefix("virtio,device") ? $0 : nil }
    }

    public var namedSettings: [(name: String, value: String)] {
        let values: [String?] = [mac?.description, transport?.rawValue, base.map { "0x" + String($0, radix: 16) }, irq.map(String.init), type]
        return zip(Self.settingNames, values).compactMap { name, value in value.map { (name, $0) } }
    }

    public var identities: [DeviceIdentity] { mac.map { [.mac($0)] } ?? [] }

    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] {
        if let mac, !mac.isUnicast {
            return [context.problem(.deviceSetting, "mac \(mac) is not a unicast address")]
        }
        return []
    }

    public static let xenstoreOrder = 60

    /// `libxl__set_xenstore_virtio` (libxl 4.18 layout).
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        let (deviceBase, deviceIRQ) = context.virtioMMIO.place(base: base, irq: irq)
        let keys: [(String, XenstoreTemplate)] = [
            ("irq", "\(deviceIRQ)"), ("base", "\(deviceBase)"), ("type", XenstoreTemplate(literal: type ?? "virtio,device1")),
            ("transport", "mmio"),
        ]
        let (back, front) = context.commonKeys
        return XenstoreDevice(kind: "virtio", context: context, back: back + keys, front: front + keys)
    }
}
