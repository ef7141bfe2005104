//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A domain imported from an xl.cfg file, with what the import left out.
public struct XLImport: Hashable, Sendable {
    /// A key the import did not turn into the model, reported so nothing is dropped silently.
    public struct Note: Hashable, Sendable, CustomStringConvertible {
        public enum Kind: String, Hashable, Sendable {
            /// xl knows the key, but it has no place in a launch description (display, emulated hardware...).
            case ignored
            /// Neither xl 4.17 nor domb knows the key.
            case unknown
            /// Accepted, with a remark (e.g. a default was filled in).
            case remark
        }

        public var kind: Kind
        public var key: String
        public var line: Int
        public var message: String

        public var description: String {
            (line > 0 ? "line \(line): " : "") + "\(kind.rawValue) key \"\(key)\": \(message)"
        }
    }

    public var domain: DomainSpec
    public var notes: [Note]

    /// xl's default HVM firmware loader in Debian's Xen 4.17 packages.
    public static let defaultHVMLoader = "/usr/lib/xen-4.17/boot/hvmloader"

    /// Keys xl understands that a launch description does not carry.
    public static let ignoredKeys: Set<String> = [
        "sdl", "vnc", "vncdisplay", "vnclisten", "vncpasswd", "vncunused", "keymap", "serial", "acpi", "apic",
        "pae", "hap", "nestedhvm", "viridian", "boot", "usb", "usbdevice", "usbctrl", "localtime",
        "rtc_timeoffset", "stdvga", "videoram", "vga", "xen_platform_pci", "device_model_version",
        "device_model_override", "device_model_stubdomain_override", "on_watchdog", "on_soft_reset",
        "max_grant_frames", "max_maptrack_frames", "max_grant_version", "shadow_memory",
        "cpus_soft", "cpu_weight", "cap", "soundhw", "nographic", "vfb", "tsc_mode", "nomigrate", "e820_host",
        "gfx_passthru", "claim_mode", "autoballoon", "opengl", "spice", "timer_mode", "hpet", "vpt_align",
        "mmio_hole", "altp2m", "vuart", "dm_restrict", "msitranslate", "rdm", "xend_suspend_evtchn_compat",
        "bios", "vkb_device", "init_seclabel",
    ]

    /// Imports one xl.cfg file into a domain.
    /// - Throws: `ParseError` naming the line and key, for syntax errors, bad values and
    ///   features domb refuses (bootloader, pvshim, per-vCPU affinity lists...).
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        let config = try XLConfig(parsing: bytes)
        try self.init(config)
    }

    public init(_ config: XLConfig) throws(ParseError) {
        var notes: [Note] = []
        var consumed: Set<String> = []

        func setting(_ key: String) -> XLConfig.Setting? {
            consumed.insert(key)
            return config[key]
        }
        func scalar(_ key: String) throws(ParseError) -> (String, Int)? {
            guard let found = setting(key) else { return nil }
            guard let text = found.value.scalar else {
                throw .invalid("line \(found.line): \"\(key)\" must be a string or number, not a list")
            }
            return (text, found.line)
        }
        func list(_ key: String) throws(ParseError) -> ([String], Int)? {
            guard let found = setting(key) else { return nil }
            switch found.value {
            case .list(let items): return (items, found.line)
            case .string(let text): return ([text], found.line)
            case .number: throw .invalid("line \(found.line): \"\(key)\" must be a list of strings")
            }
        }
        func number(_ key: String, max: UInt64) throws(ParseError) -> UInt64? {
            guard let (text, line) = try scalar(key) else { return nil }
            let parsed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
            guard let value = parsed, value <= max else {
                throw .invalid("line \(line): \"\(key)\" = \(text) is not a number from 0 to \(max)")
            }
            return value
        }

        guard let (name, nameLine) = try scalar("name") else {
            throw .invalid("xl.cfg has no \"name\"")
        }
        guard isValidLaunchName(name) else {
            throw .invalid(
                "line \(nameLine): name \"\(name)\" must be 1 to \(LaunchLimits.maxNameLength) characters of A-Z a-z 0-9 , . _ + -")
        }

        // Guest type: `type`, or the legacy `builder`.
        var type = GuestType.pv
        if let (text, line) = try scalar("type") {
            guard let parsed = GuestType(rawValue: text) else {
                throw .invalid("line \(line): type \"\(text)\" is not pv, pvh or hvm")
            }
            type = parsed
            if setting("builder") != nil {
                notes.append(Note(kind: .remark, key: "builder", line: line, message: "ignored because type is set"))
            }
        } else if let (text, line) = try scalar("builder") {
            switch text {
            case "hvm": type = .hvm
            case "generic", "linux": type = .pv
            default: throw .invalid("line \(line): builder \"\(text)\" is not generic or hvm")
            }
        }

        guard let memoryMB = try number("memory", max: LaunchLimits.maxMemoryKiB / 1024) else {
            throw .invalid("xl.cfg has no \"memory\" (MiB)")
        }
        let maxMemoryMB = try number("maxmem", max: LaunchLimits.maxMemoryKiB / 1024)
        let vcpus = try number("vcpus", max: UInt64(LaunchLimits.maxVcpus)) ?? 1
        let maxVcpus = try number("maxvcpus", max: UInt64(LaunchLimits.maxVcpus))

        var domain = DomainSpec(name: name, type: type, memoryKiB: memoryMB * 1024, vcpus: UInt32(vcpus))
        if let maxMemoryMB, maxMemoryMB != memoryMB { domain.maxMemoryKiB = maxMemoryMB * 1024 }
        if let maxVcpus, maxVcpus != vcpus { domain.maxVcpus = UInt32(maxVcpus) }

        if let found = setting("cpus") {
            guard case .string(let text) = found.value else {
                throw .unsupported("line \(found.line): per-vCPU \"cpus\" lists are not supported; give one CPU list string")
            }
            domain.cpuAffinity = try parseCPUList(text, line: found.line)
        }
        if let (pool, _) = try scalar("pool"), pool != pool0Name { domain.cpupool = pool }
        if let (uuid, line) = try scalar("uuid") {
            guard isValidUUID(uuid) else { throw .invalid("line \(line): uuid \"\(uuid)\" is not 8-4-4-4-12 hex digits") }
            domain.uuid = uuid.lowercased()
        }
        if let (label, _) = try scalar("seclabel") { domain.securityID = label }
        // xlu_cfg_get_defbool: any number, non-zero is true.
        if let flag = try number("driver_domain", max: UInt64(Int64.max)) { domain.driverDomain = flag != 0 }

        for key in ["bootloader", "bootloader_args", "pvshim", "pvshim_path", "pvshim_cmdline", "pvshim_extra"] {
            if let found = setting(key) {
                throw .unsupported(
                    "line \(found.line): \"\(key)\" is not supported: domb loads and measures the kernel itself")
            }
        }

        // Modules.
        let cmdline = try scalar("cmdline")
        let root = try scalar("root")
        let extra = try scalar("extra")
        var bootargs: String?
        if let (text, line) = cmdline {
            bootargs = text
            if root != nil || extra != nil {
                notes.append(Note(kind: .remark, key: "cmdline", line: line, message: "root and extra are ignored because cmdline is set (as xl does)"))
            }
        } else if root != nil || extra != nil {
            bootargs = [root.map { "root=\($0.0)" }, extra?.0].compactMap { $0 }.joined(separator: " ")
        }
        if let (kernel, _) = try scalar("kernel") {
            domain.modules.append(ModuleSpec(kind: .kernel, path: kernel, bootargs: bootargs))
        } else if let bootargs, let line = cmdline?.1 ?? root?.1 ?? extra?.1 {
            if type != .hvm || !bootargs.isEmpty {
                throw .invalid("line \(line): a command line is given but there is no \"kernel\"")
            }
        }
        if let (ramdisk, _) = try scalar("ramdisk") {
            domain.modules.append(ModuleSpec(kind: .ramdisk, path: ramdisk))
        }
        if let (deviceTree, _) = try scalar("device_tree") {
            domain.modules.append(ModuleSpec(kind: .deviceTree, path: deviceTree))
        }
        let firmware = try scalar("firmware")
        if type == .hvm {
            switch firmware?.0 {
            case nil, "bios", "seabios", "rombios":
                domain.modules.append(ModuleSpec(kind: .firmware, path: Self.defaultHVMLoader))
                notes.append(
                    Note(kind: .remark, key: "firmware", line: firmware?.1 ?? 0,
                         message: "HVM firmware is hvmloader (with its built-in BIOS): \(Self.defaultHVMLoader)"))
            case let path? where path.contains("/"):
                domain.modules.append(ModuleSpec(kind: .firmware, path: path))
            case let other?:
                throw .unsupported("line \(firmware?.1 ?? 0): HVM firmware \"\(other)\" is not supported; give hvmloader's path")
            }
        } else if let (value, line) = firmware {
            throw .unsupported("line \(line): firmware \"\(value)\" for \(type.rawValue) is not supported: give kernel instead")
        }

        // Lifecycle.
        for (key, path) in [("on_poweroff", \DomainSpec.onPoweroff), ("on_reboot", \.onReboot), ("on_crash", \.onCrash)] {
            if let (text, line) = try scalar(key) {
                guard let action = LifecycleAction(rawValue: text) else {
                    throw .invalid(
                        "line \(line): \(key) \"\(text)\" is not one of \(LifecycleAction.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                domain[keyPath: path] = action
            }
        }

        // Devices: the console libxl always creates, then the lists.
        domain.devices.append(DeviceSpec(kind: .console))
        if let (items, line) = try list("vif") {
            for item in items { domain.devices.append(try parseVif(item, line: line)) }
        }
        if let (items, line) = try list("disk") {
            for item in items { domain.devices.append(try parseDisk(item, line: line)) }
        }
        if let (items, line) = try list("vtpm") {
            for item in items {
                domain.devices.append(try parseKeyValueDevice(.vtpm, item, line: line, keys: ["uuid"], what: "vtpm"))
            }
        }
        if let (items, line) = try list("p9") {
            for item in items {
                domain.devices.append(
                    try parseKeyValueDevice(.p9, item, line: line, keys: ["tag", "path", "security_model"], what: "p9"))
            }
        }
        if let (items, line) = try list("vkb") {
            for item in items {
                domain.devices.append(
                    try parseKeyValueDevice(.vkbd, item, line: line, keys: ["backend-type", "unique-id"], what: "vkb"))
            }
        }

        for entry in config.settings where !consumed.contains(entry.key) {
            if Self.ignoredKeys.contains(entry.key) {
                notes.append(Note(kind: .ignored, key: entry.key, line: entry.line, message: "not part of a launch description"))
            } else {
                notes.append(Note(kind: .unknown, key: entry.key, line: entry.line, message: "not an xl.cfg key domb knows; dropped"))
            }
        }
        self.domain = domain
        self.notes = notes
    }
}

/// Parses an xl CPU list: "all", "0-3,6", "0-7,^5" (exclusions after inclusions).
/// Returns nil for "all".
func parseCPUList(_ text: String, line: Int) throws(ParseError) -> [UInt32]? {
    let trimmed = text.trimmingSpaces
    if trimmed == "all" { return nil }
    var included: Set<UInt32> = []
    var excluded: Set<UInt32> = []
    for rawPart in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
        var part = Substring(String(rawPart).trimmingSpaces)
        let exclude = part.hasPrefix("^")
        if exclude { part = part.dropFirst() }
        if part.hasPrefix("node:") || part.hasPrefix("nodes:") {
            throw .unsupported("line \(line): NUMA node CPU lists (\"\(text)\") are not supported; list CPUs")
        }
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count), let low = UInt32(bounds[0]), let high = UInt32(bounds[bounds.count - 1]),
            low <= high, high <= LaunchLimits.maxCPU
        else {
            throw .invalid("line \(line): \"\(text)\" is not a CPU list such as 0-3,6 (CPUs 0 to \(LaunchLimits.maxCPU))")
        }
        for cpu in low...high {
            if exclude { excluded.insert(cpu) } else { included.insert(cpu) }
        }
    }
    return included.subtracting(excluded).sorted()
}

/// Splits "a=b, c=d" device specs; values may not contain commas (as in xl).
private func splitSpec(_ item: String) -> [String] {
    item.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
}

private func applyCommon(
    _ device: inout DeviceSpec, key: String, value: String, line: Int, what: String
) throws(ParseError) -> Bool {
    switch key {
    case "backend":
        guard !value.isEmpty else { throw .invalid("line \(line): \(what) backend is empty") }
        device.backend = value == "0" ? dom0Name : value
        return true
    case "devid":
        guard let devid = UInt32(value), devid <= 0xFFFF_FFF else {
            throw .invalid("line \(line): \(what) devid \"\(value)\" is not a number")
        }
        device.devid = devid
        return true
    default:
        return false
    }
}

private func parseVif(_ item: String, line: Int) throws(ParseError) -> DeviceSpec {
    var device = DeviceSpec(kind: .vif)
    let keys = DeviceSpec.knownSettings[.vif] ?? []
    for part in splitSpec(item) where !part.isEmpty {
        guard let eq = part.firstIndex(of: "=") else {
            throw .invalid("line \(line): vif \"\(item)\": \"\(part)\" is not key=value")
        }
        let key = String(part[..<eq]).trimmingSpaces
        let value = String(part[part.index(after: eq)...]).trimmingSpaces
        // As in xl, an empty value means the default.
        if value.isEmpty { continue }
        if try applyCommon(&device, key: key, value: value, line: line, what: "vif") { continue }
        guard keys.contains(key) else {
            throw .invalid("line \(line): vif \"\(item)\": unknown key \"\(key)\" (known: backend devid \(keys.sorted().joined(separator: " ")))")
        }
        device.settings[key] = key == "mac" ? value.lowercased() : value
    }
    return device
}

private func parseKeyValueDevice(
    _ kind: DeviceSpec.Kind, _ item: String, line: Int, keys: Set<String>, what: String
) throws(ParseError) -> DeviceSpec {
    var device = DeviceSpec(kind: kind)
    for part in splitSpec(item) where !part.isEmpty {
        guard let eq = part.firstIndex(of: "=") else {
            throw .invalid("line \(line): \(what) \"\(item)\": \"\(part)\" is not key=value")
        }
        let key = String(part[..<eq]).trimmingSpaces
        let value = String(part[part.index(after: eq)...]).trimmingSpaces
        if value.isEmpty { continue }
        if try applyCommon(&device, key: key, value: value, line: line, what: what) { continue }
        guard keys.contains(key) else {
            throw .invalid("line \(line): \(what) \"\(item)\": unknown key \"\(key)\" (known: backend devid \(keys.sorted().joined(separator: " ")))")
        }
        device.settings[key] = kind == .vtpm && key == "uuid" ? value.lowercased() : value
    }
    return device
}

/// Parses a DISKSPEC (xl-disk-configuration(5)): key=value pairs, flags, and the
/// positional parameters target, format, vdev, access; `target=` takes the rest.
private func parseDisk(_ item: String, line: Int) throws(ParseError) -> DeviceSpec {
    var device = DeviceSpec(kind: .vbd)
    var settings: [String: String] = [:]
    let positional = ["target", "format", "vdev", "access"]
    var nextPositional = 0
    var specification = "xen"
    var rest = Substring(item)

    func set(_ key: String, _ value: String) throws(ParseError) {
        guard settings[key] == nil else { throw .invalid("line \(line): disk \"\(item)\": \(key) is given twice") }
        if !value.isEmpty { settings[key] = value }
    }

    while !rest.isEmpty || nextPositional == 0 {
        var part: Substring
        let trimmedRest = Substring(String(rest).trimmingLeadingSpaces)
        if trimmedRest.hasPrefix("target=") {
            // Consumes the rest, commas included.
            try set("target", String(trimmedRest.dropFirst("target=".count)))
            break
        }
        if let comma = rest.firstIndex(of: ",") {
            part = rest[..<comma]
            rest = rest[rest.index(after: comma)...]
        } else {
            part = rest
            rest = ""
        }
        let token = String(part).trimmingSpaces
        if let eq = token.firstIndex(of: "=") {
            let key = String(token[..<eq])
            let value = String(token[token.index(after: eq)...])
            switch key {
            case "backend", "devid":
                _ = try applyCommon(&device, key: key, value: value, line: line, what: "disk")
            case "specification":
                guard ["xen", "virtio"].contains(value) else {
                    throw .invalid("line \(line): disk \"\(item)\": specification \"\(value)\" is not xen or virtio")
                }
                specification = value
            case "vdev", "access", "format", "backendtype", "devtype", "script", "transport":
                try set(key, value)
            case "discard", "direct-io-safe":
                try set(key, value)
            default:
                throw .invalid("line \(line): disk \"\(item)\": unknown key \"\(key)\"")
            }
        } else {
            switch token {
            case "cdrom": try set("devtype", "cdrom")
            case "discard": try set("discard", "1")
            case "no-discard": try set("discard", "0")
            case "direct-io-safe": try set("direct-io-safe", "1")
            default:
                guard nextPositional < positional.count else {
                    throw .invalid("line \(line): disk \"\(item)\": too many positional parameters at \"\(token)\"")
                }
                var value = token
                let key = positional[nextPositional]
                nextPositional += 1
                if key == "target" {
                    value = try stripDeprecatedPrefix(value, settings: &settings, line: line, item: item)
                    // Deprecated "target,vdev,access" form after a prefix: no format slot.
                    if settings["format"] != nil || settings["backendtype"] != nil { nextPositional += 1 }
                }
                if key == "vdev", value.hasSuffix(":cdrom") {
                    value = String(value.dropLast(":cdrom".count))
                    try set("devtype", "cdrom")
                } else if key == "vdev", value.hasSuffix(":disk") {
                    value = String(value.dropLast(":disk".count))
                }
                if key == "target", settings["target"] != nil {
                    throw .invalid("line \(line): disk \"\(item)\": target is given twice")
                }
                if !value.isEmpty { settings[key] = value }
            }
        }
        if rest.isEmpty { break }
    }
    if specification == "virtio" {
        device.kind = .virtioDisk
        settings["devtype"] = nil
    }
    if let access = settings["access"], !["r", "ro", "w", "rw"].contains(access) {
        throw .invalid("line \(line): disk \"\(item)\": access \"\(access)\" is not ro or rw")
    }
    device.settings = settings
    return device.normalized()
}

/// Handles the deprecated `phy:`, `file:`, `tap:aio:`, `raw:`… prefixes of a disk target.
private func stripDeprecatedPrefix(
    _ target: String, settings: inout [String: String], line: Int, item: String
) throws(ParseError) -> String {
    var value = Substring(target)
    let formats = ["raw", "qcow", "qcow2", "vhd", "qed"]
    for _ in 0..<3 {
        guard let colon = value.firstIndex(of: ":") else { break }
        let prefix = String(value[..<colon])
        if prefix == "phy" {
            settings["backendtype"] = "phy"
        } else if prefix == "file" || prefix == "aio" || prefix == "tap" || prefix == "tap2" {
            settings["backendtype"] = "qdisk"
        } else if formats.contains(prefix) {
            settings["format"] = prefix
        } else {
            break
        }
        value = value[value.index(after: colon)...]
    }
    return String(value)
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
        return String(scalars)
    }

    var trimmingLeadingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" })
    }
}

extension ParseError {
    static func unsupported(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.unsupported, reason, file: file, line: line)
    }
}
