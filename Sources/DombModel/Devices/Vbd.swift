//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

extension DeviceKind {
    /// A PV block device (`libxl_disk.c`, xl.cfg `disk`).
    public static let vbd = DeviceKind("vbd")
}

/// `access`: how the guest may use a disk (xl: `r`/`ro`, `w`/`rw`).
public enum DiskAccess: String, Hashable, Sendable, CaseIterable {
    case readOnly = "ro"
    case readWrite = "rw"

    /// Also takes xl's short spellings `r` and `w`.
    public init?(xl text: String) {
        switch text {
        case "r", "ro": self = .readOnly
        case "w", "rw": self = .readWrite
        default: return nil
        }
    }
}

/// `format`: the image format (`libxl_disk_format`); `empty` is a CD-ROM drive without a
/// medium (xl's `,hdc:cdrom,r`).
public enum DiskFormat: String, Hashable, Sendable, CaseIterable {
    case raw, qcow, qcow2, vhd, qed, empty

    /// How a qdisk backend's `params` names the format (`libxl__device_disk_string_of_format`).
    var qdiskName: String { self == .raw || self == .empty ? "aio" : rawValue }
}

/// `backendtype`: who serves the disk (`libxl_disk_backend`).
public enum DiskBackendType: String, Hashable, Sendable, CaseIterable {
    /// The kernel's blkback on a block device (the `block` hotplug script).
    case phy
    /// QEMU's qdisk.
    case qdisk
    /// A standalone virtio backend (virtio disks only).
    case standalone
}

/// A PV block device, xl-disk-configuration(5).
public struct VbdSettings: DeviceSettings {
    public static let kind = DeviceKind.vbd
    public static let settingNames = ["target", "vdev", "access", "backendtype", "format", "devtype", "script", "discard", "direct-io-safe"]

    /// `devtype`.
    public enum DeviceType: String, Hashable, Sendable, CaseIterable {
        case disk
        case cdrom
    }

    /// The block device or image file the backend serves; empty for an empty CD-ROM drive
    /// (format `empty`).
    public var target: String
    public var vdev: VirtualDisk
    /// Default: `rw` for a disk, `ro` for a cdrom (xl's defaults, written out).
    public var access: DiskAccess
    /// Nil lets libxl choose (see ``resolvedBackendType(backendIsDom0:)``).
    public var backendType: DiskBackendType?
    /// Default: raw.
    public var format: DiskFormat
    public var deviceType: DeviceType
    /// The hotplug script of a phy backend (default `block`).
    public var script: String?
    /// Whether the backend offers discard (xl `discard`/`no-discard`; libxl's default: when
    /// the disk is writable).
    public var discard: Bool?
    /// xl `direct-io-safe`: the backend may use O_DIRECT.
    public var directIOSafe: Bool

    public init(
        target: String, vdev: VirtualDisk, access: DiskAccess? = nil, backendType: DiskBackendType? = nil,
        format: DiskFormat = .raw, deviceType: DeviceType = .disk, script: String? = nil, discard: Bool? = nil,
        directIOSafe: Bool = false
    ) {
        self.target = target
        self.vdev = vdev
        self.access = access ?? (deviceType == .cdrom ? .readOnly : .readWrite)
        self.backendType = backendType
        self.format = format
        self.deviceType = deviceType
        self.script = script
        self.discard = discard
        self.directIOSafe = directIOSafe
    }

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        let disk = try DiskCommonSettings(settings: &settings, kind: Self.kind)
        let deviceType = try settings.take("devtype", as: DeviceType.self) ?? .disk
        self.init(
            target: disk.target, vdev: disk.vdev, access: disk.access, backendType: disk.backendType, format: disk.format,
            deviceType: deviceType, script: settings.take("script"), discard: try settings.takeFlag("discard"),
            directIOSafe: try settings.takeFlag("direct-io-safe") ?? false)
    }

    public var namedSettings: [(name: String, value: String)] {
        let values: [String?] = [
            target.isEmpty ? nil : target, vdev.name, access.rawValue, backendType?.rawValue, format.rawValue,
            deviceType.rawValue, script,
            discard.map { $0 ? "1" : "0" }, directIOSafe ? "1" : nil,
        ]
        return zip(Self.settingNames, values).compactMap { name, value in value.map { (name, $0) } }
    }

    public static let xlListKey: String? = "disk"

    /// A DISKSPEC; `specification=virtio` makes a virtio disk.
    /// DISKSPECs through libxlutil's `xlu_disk_parse`, as xl reads each item of `disk`; a
    /// spec with `specification=virtio` is a ``VirtioDiskSettings``.
    public static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec] {
        try XLDevices.eachItem(items) { (_, item) throws(ParseError) -> DeviceSpec in
            let disk = try xl.parseDisk(item)
            if disk.colo != nil { throw .unsupported("COLO block replication has no place in the launch model") }
            if disk.trusted != nil { throw .unsupported("trusted/untrusted: xl 4.17 does not take them in a DISKSPEC") }
            guard let vdev = VirtualDisk(disk.vdev) else {
                throw .invalid("vdev \"\(TerminalText.escape(disk.vdev))\" is not \(VirtualDisk.rule)")
            }
            let backendType: DiskBackendType?
            switch disk.backend {
            case nil: backendType = nil
            case .phy?: backendType = .phy
            case .qdisk?: backendType = .qdisk
            case .standalone?: backendType = .standalone
            case .tap?: throw .unsupported("backendtype tap: libxl 4.17 has no blktap backend")
            }
            guard let format = DiskFormat(rawValue: disk.format.rawValue) else {
                throw .invalid("format \(disk.format.rawValue)")
            }
            let access: DiskAccess = disk.readWrite ? .readWrite : .readOnly
            let backend = XLDevices.backend(disk.backendDomain)
            if disk.specification == .virtio {
                let virtio = VirtioDiskSettings(
                    target: disk.target ?? "", vdev: vdev, access: access, backendType: backendType, format: format)
                return DeviceSpec(virtio, backend: backend)
            }
            let vbd = VbdSettings(
                target: disk.target ?? "", vdev: vdev, access: access, backendType: backendType, format: format,
                deviceType: disk.isCDROM ? .cdrom : .disk, script: disk.script, discard: disk.discard,
                directIOSafe: disk.directIOSafe)
            return DeviceSpec(vbd, backend: backend)
        }
    }

    public var fixedDevid: UInt32? { vdev.number }
    public var identities: [DeviceIdentity] { [.disk(number: vdev.number)] }

    /// The backend libxl 4.17 picks when none is given (`libxl__device_disk_set_backend`:
    /// phy first, then qdisk): phy takes a raw disk whose path is a block device or a
    /// regular file (`libxl__try_phy_backend` on Linux; the `block` script attaches a file
    /// through a loop device), or any raw disk of a driver domain or with a script; anything
    /// else (another format, an empty CD-ROM) is qdisk. libxl stats the path and refuses one
    /// that does not exist; a plan made away from the host cannot, so a raw disk is phy here.
    /// Checked against libxl's own choice on Xen 4.17 (docs/e2e.md, `xlcfg-disk-backend`).
    public func resolvedBackendType(backendIsDom0: Bool) -> DiskBackendType {
        if let backendType { return backendType }
        return format == .raw ? .phy : .qdisk
    }

    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] {
        var problems: [LaunchProblem] = []
        if deviceType == .cdrom && access == .readWrite {
            problems.append(context.problem(.deviceSetting, "a cdrom is read-only (xl makes it so); drop access=rw"))
        }
        // libxl__device_disk_set_backend: an empty disk must be a CD-ROM without a target.
        if format == .empty && (deviceType != .cdrom || !target.isEmpty) {
            problems.append(context.problem(.deviceSetting, "format empty is a CD-ROM drive without a medium: devtype cdrom, no target"))
        }
        switch resolvedBackendType(backendIsDom0: context.device.backend == .dom0) {
        case .phy:
            if format != .raw {
                problems.append(context.problem(.deviceSetting, "backendtype phy serves only raw disks, not \(format.rawValue)"))
            }
        case .qdisk:
            if script != nil {
                problems.append(context.problem(.deviceSetting, "a qdisk backend runs no hotplug script; drop script"))
            }
            if let backend = context.backendDomain, backend.type == .hvm {
                problems.append(
                    context.problem(
                        .backendCapability, "qdisk backend domain \"\(backend.name)\" is HVM; qemu backends run in PV or PVH domains"))
            }
        case .standalone:
            problems.append(context.problem(.deviceSetting, "backendtype standalone is for virtio disks (specification=virtio)"))
        }
        return problems
    }

    public static let xenstoreOrder = 0

    /// `device_disk_add` (libxl_disk.c).
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        let cdrom = deviceType == .cdrom
        // xlu_disk_parse: a cdrom is always removable and read-only.
        let readwrite = access == .readWrite && !cdrom
        let backendType = resolvedBackendType(backendIsDom0: context.backend == .dom0)
        var back: [(String, XenstoreTemplate)] = []
        let backendKind: String
        switch backendType {
        case .phy:
            back.append(("params", XenstoreTemplate(literal: target)))
            back.append(("script", XenstoreTemplate(literal: context.scriptPath(script ?? "block"))))
            backendKind = "vbd"
        case .qdisk:
            back.append(("params", XenstoreTemplate(literal: "\(format.qdiskName):\(target)")))
            backendKind = "qdisk"
        case .standalone:
            throw .invalid("backendtype standalone is for virtio disks")
        }
        back += [
            ("frontend-id", context.domid), ("online", "1"), ("removable", cdrom ? "1" : "0"), ("bootable", "1"),
            ("state", "1"), ("dev", XenstoreTemplate(literal: vdev.name)),
            ("type", XenstoreTemplate(literal: backendType.rawValue)), ("mode", readwrite ? "w" : "r"),
            ("device-type", cdrom ? "cdrom" : "disk"),
        ]
        if directIOSafe { back.append(("direct-io-safe", "1")) }
        back += [("discard-enable", (discard ?? readwrite) ? "1" : "0"), ("specification", "xen")]
        var front: [(String, XenstoreTemplate)] = [
            ("backend-id", context.backendDomid), ("state", "1"), ("virtual-device", "\(vdev.number)"),
            ("device-type", cdrom ? "cdrom" : "disk"), ("trusted", "1"),
        ]
        if context.domain.type == .pv { front.append(("protocol", context.domain.is64Bit ? "x86_64-abi" : "x86_32-abi")) }
        return XenstoreDevice(kind: "vbd", backendKind: backendKind, context: context, back: back, front: front)
    }
}

/// What a vbd and a virtio disk share: the target, the vdev, access, format and backend.
struct DiskCommonSettings {
    var target: String
    var vdev: VirtualDisk
    var access: DiskAccess?
    var backendType: DiskBackendType?
    var format: DiskFormat

    init(settings: inout DeviceSettingsReader, kind: DeviceKind) throws(DeviceSettingError) {
        format = try settings.take("format", as: DiskFormat.self) ?? .raw
        // An empty CD-ROM drive (format empty) has no target; every other disk needs one.
        target = format == .empty ? settings.take("target") ?? "" : try settings.require("target", kind: kind)
        guard let name = settings.take("vdev") else {
            throw DeviceSettingError("a disk needs a vdev (e.g. xvda)", setting: "vdev")
        }
        guard let vdev = VirtualDisk(name) else {
            throw DeviceSettingError("vdev \"\(name)\" is not \(VirtualDisk.rule)", setting: "vdev")
        }
        self.vdev = vdev
        access = try settings.take("access", expected: "ro or rw") { DiskAccess(xl: $0) }
        backendType = try settings.take("backendtype", as: DiskBackendType.self)
    }
}
