//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Per-device Xenstore keys as libxl 4.17 writes them (`libxl_console.c`, `libxl_disk.c`,
/// `libxl_nic.c`, `libxl_vkb.c`, `libxl_9pfs.c`, `libxl_vtpm.c`; generic virtio from
/// `libxl_virtio.c`, which libxl only has from 4.18).
enum XenstoreDeviceLayout {
    struct Device {
        /// Frontend kind (`vif`, `vbd`, `console`, `vkbd`, `9pfs`, `vtpm`, `virtio_disk`, `virtio`).
        var kind: String
        /// Backend kind (`qdisk` for qdisk disks, `vinput` for Linux vkb backends).
        var backendKind: String
        var devid: UInt32
        var backendDomid: XenstoreTemplate
        /// Keys in the order libxl appends them to its `back`, `front` and `ro_front` arrays.
        var back: [(String, XenstoreTemplate)]
        var front: [(String, XenstoreTemplate)]
        var roFront: [(String, XenstoreTemplate)]
        /// Console 0: the frontend directory belongs to the backend (XSA-175).
        var readOnlyFrontend = false
        /// Read-only frontend keys the backend daemon writes once the domain exists; the
        /// plan never overwrites them (``XenstorePlan/Node/keep``).
        var backendOwned: Set<String> = []
    }

    static let allowedSettings: [DeviceSpec.Kind: Set<String>] = [
        .console: [],
        .vif: ["mac", "bridge", "script", "ip", "mtu", "rate", "vifname", "type", "model", "gatewaydev"],
        .vbd: ["target", "vdev", "access", "backendtype", "format", "devtype", "script"],
        .vkbd: [
            "backend-type", "unique-id", "feature-disable-keyboard", "feature-disable-pointer", "feature-abs-pointer",
            "feature-raw-pointer", "feature-multi-touch", "multi-touch-width", "multi-touch-height",
            "multi-touch-num-contacts", "width", "height",
        ],
        .p9: ["tag", "path", "security_model"],
        .vtpm: ["uuid"],
        .virtioDisk: ["target", "vdev", "access", "format", "base", "irq", "transport"],
        .virtioNet: ["mac", "transport", "base", "irq", "type"],
    ]

    /// Arm guest layout (`xen/include/public/arch-arm.h`): where libxl places virtio-mmio
    /// devices when the configuration does not say.
    static let virtioMMIOBase: UInt64 = 0x0200_0000
    static let virtioMMIODeviceSize: UInt64 = 0x200
    static let virtioMMIOFirstSPI: UInt32 = 33

    static func devices(of domain: DomainSpec, in spec: LaunchSpec, domid: XenstoreTemplate, planner: XenstorePlanner) throws(ParseError) -> [Device] {
        var result: [Device] = []
        var consoles = 0
        // Sequential devids per kind, as xl/libxl assign them: explicit ids stay, the rest
        // count up from the largest explicit one.
        var nextID: [DeviceSpec.Kind: UInt32] = [:]
        for device in domain.devices {
            if let devid = device.devid { nextID[device.kind] = max(nextID[device.kind] ?? 0, devid + 1) }
        }
        var used = Set<String>()
        var virtioBase = virtioMMIOBase
        var virtioIRQ = virtioMMIOFirstSPI

        func backendDomid(_ device: DeviceSpec) throws(ParseError) -> XenstoreTemplate {
            if device.backend == "Domain-0" { return "0" }
            guard device.backend != domain.name else { throw .invalid("a \(device.kind.rawValue) device cannot have its own domain as backend") }
            guard let backend = spec.domain(named: device.backend) else {
                throw .invalid("\(device.kind.rawValue) backend \"\(device.backend)\" is not a domain of the launch")
            }
            if let fixed = backend.domid { return "\(fixed)" }
            return XenstoreTemplate(XenstorePlaceholder(.domid, backend.name))
        }
        func sequentialID(_ device: DeviceSpec) -> UInt32 {
            if let devid = device.devid { return devid }
            let id = nextID[device.kind] ?? 0
            nextID[device.kind] = id + 1
            return id
        }

        // libxl order: disks, then the console, vkbs, nics, vtpms, 9pfs, virtio.
        let order: [DeviceSpec.Kind] = [.vbd, .virtioDisk, .console, .vkbd, .vif, .vtpm, .p9, .virtioNet]
        var consoleDevice: Device?
        for kind in order {
            for (index, spec) in domain.devices.enumerated() where spec.kind == kind {
                do throws(ParseError) {
                    let allowed = allowedSettings[kind] ?? []
                    if let unknown = spec.settings.keys.sorted().first(where: { !allowed.contains($0) }) {
                        throw .invalid("unknown setting \"\(unknown)\" (accepted: \(allowed.sorted().joined(separator: ", ")))")
                    }
                    let backend = try backendDomid(spec)
                    var device: Device
                    switch kind {
                    case .console:
                        consoles += 1
                        guard consoles == 1, spec.devid ?? 0 == 0 else { throw .invalid("only one console (devid 0) is supported") }
                        device = console(domain: domain, backend: backend)
                    case .vbd, .virtioDisk:
                        device = try disk(spec, domain: domain, backend: backend, virtio: kind == .virtioDisk, base: &virtioBase, irq: &virtioIRQ, planner: planner)
                    case .vif:
                        device = try vif(spec, devid: sequentialID(spec), domain: domain, backend: backend, planner: planner)
                    case .vkbd:
                        device = try vkbd(spec, devid: sequentialID(spec), domain: domain, backend: backend)
                    case .p9:
                        device = try p9(spec, devid: sequentialID(spec), domain: domain, backend: backend)
                    case .vtpm:
                        device = try vtpm(spec, devid: sequentialID(spec), domain: domain, backend: backend)
                    case .virtioNet:
                        device = try virtio(spec, devid: sequentialID(spec), domain: domain, backend: backend, base: &virtioBase, irq: &virtioIRQ)
                    }
                    guard used.insert("\(device.kind)/\(device.devid)").inserted else {
                        throw .invalid("device id \(device.devid) is used twice")
                    }
                    if kind == .console { consoleDevice = device } else { result.append(device) }
                } catch {
                    throw ParseError(error.code, "device \(index) (\(kind.rawValue)): \(error.reason)")
                }
            }
            if kind == .console {
                // libxl always adds console 0 (backend: xenconsoled's domain, dom0 by default).
                result.append(consoleDevice ?? console(domain: domain, backend: "0"))
            }
            if kind == .vkbd, domain.type == .hvm, !domain.devices.contains(where: { $0.kind == .vkbd }) {
                // HVM guests get a QEMU vkb by default (`vkb_device`, default true).
                let vkb = DeviceSpec(kind: .vkbd, backend: "Domain-0")
                result.append(try vkbd(vkb, devid: sequentialID(vkb), domain: domain, backend: "0"))
            }
        }
        return result
    }

    // MARK: Kinds

    /// `libxl__device_console_add` with a build state (console 0).
    static func console(domain: DomainSpec, backend: XenstoreTemplate) -> Device {
        Device(
            kind: "console", backendKind: "console", devid: 0, backendDomid: backend,
            back: [("frontend-id", "\(domidOf(domain))"), ("online", "1"), ("state", "1"), ("protocol", "vt100")],
            front: [("backend-id", backend)],
            roFront: [
                ("limit", "1048576"), ("type", "xenconsoled"), ("output", "pty"), ("tty", ""),
                ("port", XenstoreTemplate(XenstorePlaceholder(.consolePort, domain.name))),
                ("ring-ref", XenstoreTemplate(XenstorePlaceholder(.consoleRingRef, domain.name))),
            ],
            // xenconsoled writes its pty as soon as libxl introduces the domain (seen on
            // Xen 4.17: "/dev/pts/0" before domb's transaction) and never again for the
            // same ring, so writing libxl's "" back would leave `xl console` no pty.
            readOnlyFrontend: true, backendOwned: ["tty"])
    }

    static func domidOf(_ domain: DomainSpec) -> XenstoreTemplate {
        if let fixed = domain.domid { return "\(fixed)" }
        return XenstoreTemplate(XenstorePlaceholder(.domid, domain.name))
    }

    static func common(_ domain: DomainSpec, backend: XenstoreTemplate) -> (back: [(String, XenstoreTemplate)], front: [(String, XenstoreTemplate)]) {
        ([("frontend-id", domidOf(domain)), ("online", "1"), ("state", "1")], [("backend-id", backend), ("state", "1")])
    }

    /// `device_disk_add` (libxl_disk.c).
    static func disk(
        _ spec: DeviceSpec, domain: DomainSpec, backend: XenstoreTemplate, virtio: Bool, base: inout UInt64, irq: inout UInt32,
        planner: XenstorePlanner
    ) throws(ParseError) -> Device {
        let settings = spec.settings
        guard let vdev = settings["vdev"] else { throw .invalid("a disk needs vdev") }
        guard let devid = XenstoreDiskNumber.number(of: vdev) else { throw .invalid("vdev \"\(vdev)\" is not a disk name libxl accepts") }
        if let given = spec.devid, given != devid { throw .invalid("devid \(given) does not match vdev \(vdev) (\(devid))") }
        let cdrom: Bool
        switch settings["devtype"] ?? "disk" {
        case "disk": cdrom = false
        case "cdrom": cdrom = true
        case let other: throw .invalid("devtype \"\(other)\" (disk or cdrom)")
        }
        var readwrite: Bool
        switch settings["access"] ?? "rw" {
        case "rw", "w": readwrite = true
        case "ro", "r": readwrite = false
        case let other: throw .invalid("access \"\(other)\" (rw or ro)")
        }
        // xlu_disk_parse: a CD-ROM is always removable and read-only.
        if cdrom { readwrite = false }
        let format = settings["format"] ?? "raw"
        let qdiskFormat: String
        switch format {
        case "raw": qdiskFormat = "aio"
        case "qcow", "qcow2", "vhd", "qed": qdiskFormat = format
        default: throw .invalid("format \"\(format)\" (raw, qcow, qcow2, vhd, qed)")
        }
        guard let target = settings["target"], !target.isEmpty else { throw .invalid("a disk needs target") }
        let backendType: String
        if virtio {
            backendType = settings["backendtype"] ?? "standalone"
        } else if let given = settings["backendtype"] {
            backendType = given
        } else if format != "raw" {
            backendType = "qdisk"
        } else {
            // libxl tries phy first (libxl_device.c disk_try_backend): on Linux it takes a raw
            // image that is a block device or a regular file (libxl__try_phy_backend; the
            // block script puts a file on a loop device), and anything a driver domain
            // serves. Only a target that is neither would fall to qdisk; libxl then fails to
            // stat it, so raw is phy.
            backendType = "phy"
        }
        var back: [(String, XenstoreTemplate)] = []
        let backendKind: String
        switch (backendType, virtio) {
        case ("phy", false):
            guard format == "raw" else { throw .invalid("backendtype phy takes only raw disks") }
            back.append(("params", XenstoreTemplate(literal: target)))
            back.append(("script", XenstoreTemplate(literal: absolute(settings["script"] ?? "block", planner))))
            backendKind = "vbd"
        case ("qdisk", false):
            guard settings["script"] == nil else { throw .invalid("backendtype qdisk takes no script") }
            back.append(("params", XenstoreTemplate(literal: "\(qdiskFormat):\(target)")))
            backendKind = "qdisk"
        case ("standalone", true):
            guard format == "raw" else { throw .invalid("virtio disks (backendtype standalone) take only raw disks") }
            back.append(("params", XenstoreTemplate(literal: target)))
            backendKind = "virtio_disk"
        default:
            throw .invalid("backendtype \"\(backendType)\" is not supported for \(virtio ? "virtio" : "xen") disks")
        }
        back += [
            ("frontend-id", domidOf(domain)), ("online", "1"), ("removable", cdrom ? "1" : "0"), ("bootable", "1"),
            ("state", "1"), ("dev", XenstoreTemplate(literal: vdev)), ("type", XenstoreTemplate(literal: backendType)),
            ("mode", readwrite ? "w" : "r"), ("device-type", cdrom ? "cdrom" : "disk"),
            ("discard-enable", readwrite ? "1" : "0"), ("specification", virtio ? "virtio" : "xen"),
        ]
        if virtio {
            guard (settings["transport"] ?? "mmio") == "mmio" else { throw .invalid("transport must be mmio") }
            let (deviceBase, deviceIRQ) = try mmio(settings, base: &base, irq: &irq)
            // 4.17 has no grant_usage (libxl 4.18 adds it).
            back += [("transport", "mmio"), ("base", "\(deviceBase)"), ("irq", "\(deviceIRQ)")]
        }
        var front: [(String, XenstoreTemplate)] = [
            ("backend-id", backend), ("state", "1"), ("virtual-device", "\(devid)"), ("device-type", cdrom ? "cdrom" : "disk"),
            ("trusted", "1"),
        ]
        if domain.type == .pv { front.append(("protocol", domain.is64Bit ? "x86_64-abi" : "x86_32-abi")) }
        return Device(
            kind: virtio ? "virtio_disk" : "vbd", backendKind: backendKind, devid: devid, backendDomid: backend,
            back: back, front: front, roFront: [])
    }

    /// `libxl__set_xenstore_nic` (libxl_nic.c, 4.17: mtu, hotplug-status, trusted).
    static func vif(_ spec: DeviceSpec, devid: UInt32, domain: DomainSpec, backend: XenstoreTemplate, planner: XenstorePlanner) throws(ParseError) -> Device {
        let settings = spec.settings
        let mac = try settings["mac"].map { (text) throws(ParseError) in try parseMAC(text) } ?? derivedMAC(domain: domain.name, devid: devid)
        let mtu: UInt32
        if let text = settings["mtu"] {
            guard let value = UInt32(text), (68...65535).contains(value) else { throw .invalid("mtu \"\(text)\" (68...65535)") }
            mtu = value
        } else {
            mtu = 1500
        }
        let nicType: String
        switch settings["type"] ?? (domain.type == .hvm ? "ioemu" : "vif") {
        case "vif": nicType = "vif"
        case "ioemu":
            guard domain.type == .hvm else { throw .invalid("type ioemu needs an HVM guest") }
            nicType = "vif_ioemu"
        case let other: throw .invalid("type \"\(other)\" (vif or ioemu)")
        }
        let (common, commonFront) = common(domain, backend: backend)
        var back = common
        back.append(("script", XenstoreTemplate(literal: absolute(settings["script"] ?? "vif-bridge", planner))))
        if let vifname = settings["vifname"] { back.append(("vifname", XenstoreTemplate(literal: vifname))) }
        back.append(("mac", XenstoreTemplate(literal: mac)))
        if let ip = settings["ip"] { back.append(("ip", XenstoreTemplate(literal: ip))) }
        if let gatewaydev = settings["gatewaydev"] { back.append(("gatewaydev", XenstoreTemplate(literal: gatewaydev))) }
        if let rate = settings["rate"] {
            let (bytes, usecs) = try parseRate(rate)
            back.append(("rate", "\(bytes),\(usecs)"))
        }
        if mtu != 1500 { back.append(("mtu", "\(mtu)")) }
        back.append(("bridge", XenstoreTemplate(literal: settings["bridge"] ?? planner.defaultBridge)))
        back.append(("handle", "\(devid)"))
        back.append(("type", XenstoreTemplate(literal: nicType)))
        back.append(("hotplug-status", ""))
        let front = commonFront + [("handle", "\(devid)"), ("mac", XenstoreTemplate(literal: mac)), ("trusted", "1")]
        return Device(kind: "vif", backendKind: "vif", devid: devid, backendDomid: backend, back: back, front: front, roFront: [("mtu", "\(mtu)")])
    }

    /// `libxl__set_xenstore_vkb`: backend `vkbd` (QEMU, the default) or `vinput` (Linux).
    static func vkbd(_ spec: DeviceSpec, devid: UInt32, domain: DomainSpec, backend: XenstoreTemplate) throws(ParseError) -> Device {
        let settings = spec.settings
        let backendKind: String
        switch settings["backend-type"] ?? "qemu" {
        case "qemu": backendKind = "vkbd"
        case "linux": backendKind = "vinput"
        case let other: throw .invalid("backend-type \"\(other)\" (qemu or linux)")
        }
        var extra: [(String, XenstoreTemplate)] = []
        if let id = settings["unique-id"] { extra.append(("unique-id", XenstoreTemplate(literal: id))) }
        for key in ["feature-disable-keyboard", "feature-disable-pointer", "feature-abs-pointer", "feature-raw-pointer"] {
            if let value = try number(settings[key], key), value != 0 { extra.append((key, "\(value)")) }
        }
        if let touch = try number(settings["feature-multi-touch"], "feature-multi-touch"), touch != 0 {
            extra.append(("feature-multi-touch", "\(touch)"))
            for key in ["multi-touch-width", "multi-touch-height", "multi-touch-num-contacts"] {
                extra.append((key, "\(try number(settings[key], key) ?? 0)"))
            }
        }
        for key in ["width", "height"] {
            if let value = try number(settings[key], key), value != 0 { extra.append((key, "\(value)")) }
        }
        let (back, front) = common(domain, backend: backend)
        return Device(kind: "vkbd", backendKind: backendKind, devid: devid, backendDomid: backend, back: back + extra, front: front, roFront: [])
    }

    /// 9pfs (libxl_9pfs.c, 4.17): `path`, `security_model` in the backend, `tag` in front.
    static func p9(_ spec: DeviceSpec, devid: UInt32, domain: DomainSpec, backend: XenstoreTemplate) throws(ParseError) -> Device {
        guard let tag = spec.settings["tag"], let path = spec.settings["path"], let model = spec.settings["security_model"] else {
            throw .invalid("9pfs needs tag, path and security_model")
        }
        let (back, front) = common(domain, backend: backend)
        return Device(
            kind: "9pfs", backendKind: "9pfs", devid: devid, backendDomid: backend,
            back: back + [("path", XenstoreTemplate(literal: path)), ("security_model", XenstoreTemplate(literal: model))],
            front: front + [("tag", XenstoreTemplate(literal: tag))], roFront: [])
    }

    /// `libxl__set_xenstore_vtpm`.
    static func vtpm(_ spec: DeviceSpec, devid: UInt32, domain: DomainSpec, backend: XenstoreTemplate) throws(ParseError) -> Device {
        guard let given = spec.settings["uuid"] else {
            throw .invalid("vtpm needs uuid (libxl would make a random one; a measured plan needs it fixed)")
        }
        guard let uuid = XenstoreUUID.canonical(given) else { throw .invalid("uuid \"\(given)\" is not an RFC 4122 UUID") }
        let (back, front) = common(domain, backend: backend)
        return Device(
            kind: "vtpm", backendKind: "vtpm", devid: devid, backendDomid: backend,
            back: back + [("handle", "\(devid)"), ("uuid", XenstoreTemplate(literal: uuid)), ("resume", "False")],
            front: front + [("handle", "\(devid)")], roFront: [])
    }

    /// Generic virtio device (`libxl__set_xenstore_virtio`, libxl 4.18 layout): virtio-net is
    /// `type = "virtio,device1"` over virtio-mmio.
    static func virtio(_ spec: DeviceSpec, devid: UInt32, domain: DomainSpec, backend: XenstoreTemplate, base: inout UInt64, irq: inout UInt32) throws(ParseError) -> Device {
        let settings = spec.settings
        guard (settings["transport"] ?? "mmio") == "mmio" else { throw .invalid("transport must be mmio") }
        let type = settings["type"] ?? "virtio,device1"
        guard type.hasPrefix("virtio,device") else { throw .invalid("type \"\(type)\" must start virtio,device") }
        let (deviceBase, deviceIRQ) = try mmio(settings, base: &base, irq: &irq)
        if let mac = settings["mac"] { _ = try parseMAC(mac) }  // checked; libxl writes no mac key for virtio
        let keys: [(String, XenstoreTemplate)] = [
            ("irq", "\(deviceIRQ)"), ("base", "\(deviceBase)"), ("type", XenstoreTemplate(literal: type)), ("transport", "mmio"),
        ]
        let (back, front) = common(domain, backend: backend)
        return Device(kind: "virtio", backendKind: "virtio", devid: devid, backendDomid: backend, back: back + keys, front: front + keys, roFront: [])
    }

    // MARK: Helpers

    static func mmio(_ settings: [String: String], base: inout UInt64, irq: inout UInt32) throws(ParseError) -> (UInt64, UInt32) {
        let deviceBase: UInt64
        if let text = settings["base"] {
            guard let value = parseNumber(text) else { throw .invalid("base \"\(text)\" is not a number") }
            deviceBase = value
        } else {
            deviceBase = base
            base += virtioMMIODeviceSize
        }
        let deviceIRQ: UInt32
        if let text = settings["irq"] {
            guard let value = parseNumber(text), value <= UInt64(UInt32.max) else { throw .invalid("irq \"\(text)\" is not a number") }
            deviceIRQ = UInt32(value)
        } else {
            deviceIRQ = irq
            irq += 1
        }
        return (deviceBase, deviceIRQ)
    }

    /// xl's vif `rate=` (`xlu_vif_parse_rate`, libxlu_vif.c): `<n>[GMK](B|b)/s[@<n>[m|u][s]]`,
    /// G/M/K decimal, `b` bits, default interval 50 ms; stored as bytes per interval and
    /// the interval in microseconds.
    static func parseRate(_ text: String) throws(ParseError) -> (UInt64, UInt32) {
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
        guard let (amount, used) = leadingNumber(rate), amount > 0, amount <= UInt64(UInt32.max) else {
            throw .invalid("rate \"\(text)\": no rate, zero, or over 2^32")
        }
        let unit = String(decoding: rate[used...], as: UTF8.self)
        let units: [String: (UInt64, Bool)] = [
            "B/s": (1, false), "b/s": (1, true), "KB/s": (1000, false), "Kb/s": (1000, true),
            "MB/s": (1_000_000, false), "Mb/s": (1_000_000, true), "GB/s": (1_000_000_000, false), "Gb/s": (1_000_000_000, true),
        ]
        guard let (scale, bits) = units[unit] else { throw .invalid("rate \"\(text)\": unit must be [G|M|K]B/s or [G|M|K]b/s") }
        let bytesPerSecond = amount * scale / (bits ? 8 : 1)
        var interval: UInt64 = 50_000
        if parts.count == 2 {
            let spec = Array(parts[1].utf8)
            guard let (value, count) = leadingNumber(spec), value > 0, value <= UInt64(UInt32.max) else {
                throw .invalid("rate \"\(text)\": bad replenishment interval")
            }
            switch String(decoding: spec[count...], as: UTF8.self) {
            case "", "s": interval = value * 1_000_000
            case "m", "ms": interval = value * 1000
            case "u", "us": interval = value
            default: throw .invalid("rate \"\(text)\": the interval unit must be s, ms or us")
            }
            guard interval <= UInt64(UInt32.max) else { throw .invalid("rate \"\(text)\": interval overflow") }
        }
        let (product, overflow) = bytesPerSecond.multipliedReportingOverflow(by: interval)
        guard !overflow else { throw .invalid("rate \"\(text)\": overflow") }
        return (product / 1_000_000, UInt32(interval))
    }

    static func parseNumber(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
        return UInt64(text)
    }

    static func number(_ text: String?, _ key: String) throws(ParseError) -> UInt32? {
        guard let text else { return nil }
        guard let value = UInt32(text) else { throw .invalid("\(key) \"\(text)\" is not a number") }
        return value
    }

    static func absolute(_ script: String, _ planner: XenstorePlanner) -> String {
        script.hasPrefix("/") ? script : "\(planner.scriptDirectory)/\(script)"
    }

    /// `libxl__parse_mac`: six hex pairs; printed back as `%02hhx:` lower case.
    static func parseMAC(_ text: String) throws(ParseError) -> String {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let dashed = text.split(separator: "-", omittingEmptySubsequences: false)
        let pieces = parts.count == 6 ? parts : dashed
        guard pieces.count == 6, pieces.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else {
            throw .invalid("mac \"\(text)\" is not six hex pairs")
        }
        return pieces.map { $0.lowercased() }.joined(separator: ":")
    }

    /// libxl picks `00:16:3e` plus three random bytes (the fourth below 0x80); domb derives
    /// them from the domain name and devid (FNV-1a) so plans are reproducible.
    static func derivedMAC(domain: String, devid: UInt32) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array("domb-vif:\(domain):\(devid)".utf8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let bytes: [UInt8] = [0x00, 0x16, 0x3e, UInt8((hash >> 16) & 0x7f), UInt8((hash >> 8) & 0xff), UInt8(hash & 0xff)]
        return bytes.map { $0 < 0x10 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
    }
}
