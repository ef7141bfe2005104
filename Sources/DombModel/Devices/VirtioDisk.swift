//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

extension DeviceKind {
    /// A virtio-mmio disk (xl.cfg `disk` with `specification=virtio`).
    public static let virtioDisk = DeviceKind("virtio-disk")
}

/// A virtio-mmio disk served by a standalone backend: a DISKSPEC with
/// `specification=virtio` (libxl 4.17, `LIBXL_DISK_SPECIFICATION_VIRTIO`).
public struct VirtioDiskSettings: DeviceSettings {
    public static let kind = DeviceKind.virtioDisk
    public static let settingNames = ["target", "vdev", "access", "backendtype", "format", "transport", "base", "irq"]

    /// `transport`: libxl 4.17 supports mmio only.
    public enum Transport: String, Hashable, Sendable, CaseIterable {
        case mmio
    }

    public var target: String
    public var vdev: VirtualDisk
    public var access: DiskAccess
    /// libxl 4.17 serves virtio disks with a standalone backend only; nil means that one.
    public var backendType: DiskBackendType?
    public var format: DiskFormat
    public var transport: Transport?
    /// The device's MMIO window and SPI; nil places it after the previous one.
    public var base: UInt64?
    public var irq: UInt32?

    public init(
        target: String, vdev: VirtualDisk, access: DiskAccess = .readWrite, backendType: DiskBackendType? = nil,
        format: DiskFormat = .raw, transport: Transport? = nil, base: UInt64? = nil, irq: UInt32? = nil
    ) {
        self.target = target
        self.vdev = vdev
        self.access = access
        self.backendType = backendType
        self.format = format
        self.transport = transport
        self.base = base
        self.irq = irq
    }

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        let disk = try DiskCommonSettings(settings: &settings, kind: Self.kind)
        self.init(
            target: disk.target, vdev: disk.vdev, access: disk.access ?? .readWrite, backendType: disk.backendType,
            format: disk.format, transport: try settings.take("transport", as: Transport.self),
            base: try settings.take("base", expected: "a number (decimal or 0x hex)") { UInt64(decimalOrHex: $0) },
            irq: try settings.take("irq", expected: "an interrupt number") { UInt64(decimalOrHex: $0).flatMap { UInt32(exactly: $0) } })
    }

    public var namedSettings: [(name: String, value: String)] {
        let values: [String?] = [
            target, vdev.name, access.rawValue, backendType?.rawValue, format.rawValue, transport?.rawValue,
            base.map { "0x" + String($0, radix: 16) }, irq.map(String.init),
        ]
        return zip(Self.settingNames, values).compactMap { name, value in value.map { (name, $0) } }
    }

    public var fixedDevid: UInt32? { vdev.number }
    public var identities: [DeviceIdentity] { [.disk(number: vdev.number)] }

    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] {
        var problems: [LaunchProblem] = []
        if let backendType, backendType != .standalone {
            problems.append(context.problem(.deviceSetting, "a virtio disk is served by backendtype standalone, not \(backendType.rawValue)"))
        }
        if format != .raw {
            problems.append(context.problem(.deviceSetting, "a virtio disk (standalone backend) serves only raw disks, not \(format.rawValue)"))
        }
        return problems
    }

    public static let xenstoreOrder = 1

    /// `device_disk_add` for `LIBXL_DISK_SPECIFICATION_VIRTIO` (4.17 has no grant_usage;
    /// libxl 4.18 adds it).
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        let readwrite = access == .readWrite
        let (deviceBase, deviceIRQ) = context.virtioMMIO.place(base: base, irq: irq)
        let back: [(String, XenstoreTemplate)] = [
            ("params", XenstoreTemplate(literal: target)),
            ("frontend-id", context.domid), ("online", "1"), ("removable", "0"), ("bootable", "1"),
            ("state", "1"), ("dev", XenstoreTemplate(literal: vdev.name)), ("type", "standalone"),
            ("mode", readwrite ? "w" : "r"), ("device-type", "disk"), ("discard-enable", readwrite ? "1" : "0"),
            ("specification", "virtio"), ("transport", "mmio"), ("base", "\(deviceBase)"), ("irq", "\(deviceIRQ)"),
        ]
        var front: [(String, XenstoreTemplate)] = [
            ("backend-id", context.backendDomid), ("state", "1"), ("virtual-device", "\(vdev.number)"), ("device-type", "disk"),
            ("trusted", "1"),
        ]
        if context.domain.type == .pv { front.append(("protocol", context.domain.is64Bit ? "x86_64-abi" : "x86_32-abi")) }
        return XenstoreDevice(kind: "virtio_disk", backendKind: "virtio_disk", context: context, back: back, front: front)
    }
}
