//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// A domain imported from an xl.cfg file, with what the import left out.
public struct XLImport: Hashable, Sendable {
    public var domain: DomainSpec
    /// Keys the import did not turn into the model, reported so nothing is dropped silently.
    public var notes: [LaunchNote]

    /// xl's default HVM firmware loader in Debian's Xen 4.17 packages.
    public static let defaultHVMLoader = "/usr/lib/xen-4.17/boot/hvmloader"

    /// Keys xl understands that a launch description does not carry.
    public static let ignoredKeys: Set<String> = [
        "sdl", "vnc", "vncdisplay", "vnclisten", "vncpasswd", "vncunused", "keymap", "serial", "acpi", "apic",
        "pae", "hap", "nestedhvm", "viridian", "boot", "usb", "usbdevice", "usbctrl", "localtime",
        "rtc_timeoffset", "stdvga", "videoram", "vga", "xen_platform_pci", "device_model_version",
        "device_model_override", "device_model_stubdomain_override", "on_watchdog", "on_soft_reset",
        "driver_domain", "max_grant_frames", "max_maptrack_frames", "max_grant_version", "shadow_memory",
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
        var notes: [LaunchNote] = []
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
        guard LaunchLimits.isValidName(name) else {
            throw .invalid("line \(nameLine): name \"\(name)\" must be \(LaunchLimits.nameRule)")
        }

        // Guest type: `type`, or the legacy `builder`.
        var type = GuestType.pv
        if let (text, line) = try scalar("type") {
            guard let parsed = GuestType(rawValue: text) else {
                throw .invalid("line \(line): type \"\(text)\" is not pv, pvh or hvm")
            }
            type = parsed
            if setting("builder") != nil {
                notes.append(LaunchNote(kind: .remark, key: "builder", line: line, message: "ignored because type is set"))
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
        if let (pool, _) = try scalar("pool"), pool != CPUPoolSpec.pool0Name { domain.cpupool = pool }
        if let (uuid, line) = try scalar("uuid") {
            guard let canonical = XenstoreUUID.canonical(uuid) else {
                throw .invalid("line \(line): uuid \"\(uuid)\" is not 8-4-4-4-12 hex digits")
            }
            domain.uuid = canonical
        }
        if let (label, _) = try scalar("seclabel") { domain.securityID = label }

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
                notes.append(LaunchNote(kind: .remark, key: "cmdline", line: line, message: "root and extra are ignored because cmdline is set (as xl does)"))
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
                    LaunchNote(kind: .remark, key: "firmware", line: firmware?.1 ?? 0,
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

        // Devices: the console libxl always creates, then each kind's list.
        domain.devices.append(DeviceSpec(ConsoleSettings()))
        for kind in DeviceKinds.all {
            guard let key = kind.xlListKey, let (items, line) = try list(key) else { continue }
            for item in items { domain.devices.append(try kind.parseXL(item, line: line)) }
        }

        for entry in config.settings where !consumed.contains(entry.key) {
            if Self.ignoredKeys.contains(entry.key) {
                notes.append(LaunchNote(kind: .ignoredKey, key: entry.key, line: entry.line, message: "not part of a launch description"))
            } else {
                notes.append(LaunchNote(kind: .unknownKey, key: entry.key, line: entry.line, message: "not an xl.cfg key domb knows; dropped"))
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

extension ParseError {
    static func unsupported(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.unsupported, reason, file: file, line: line)
    }
}
