//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

/// The importer's view of a parsed xl.cfg: typed reads that name the line and the key,
/// a record of the keys read, and at the end the verdict on every other key (refused,
/// or ignored as xl ignores it).
struct XLReader {
    let config: XLUtilConfig
    private(set) var notes: [LaunchNote] = []
    private var consumed: Set<String> = []

    init(_ config: XLUtilConfig) {
        self.config = config
        for setting in config.settings where !setting.overriddenLines.isEmpty {
            let lines = setting.overriddenLines.map(String.init).joined(separator: ", ")
            note(.remark, setting.name, line: setting.line, "also set on line \(lines): the last value counts, as in xl")
        }
    }

    func has(_ key: String) -> Bool { config.setting(key) != nil }

    /// The setting, now counted as read.
    mutating func take(_ key: String) -> XLSetting? {
        consumed.insert(key)
        return config.setting(key)
    }

    /// A string key. xl reads a list there as absent (after a warning); domb refuses it.
    mutating func string(_ key: String) throws(ParseError) -> (String, Int)? {
        guard let setting = take(key) else { return nil }
        guard case .string(let text) = setting.value else {
            throw .invalid("line \(setting.line): \(key): a list where xl reads one value (xl would ignore it)")
        }
        return (text, setting.line)
    }

    /// A number key, as `xlu_cfg_get_long` reads it (libxlutil's message when it is not one).
    mutating func number(_ key: String) throws(ParseError) -> (Int, Int)? {
        guard let setting = take(key) else { return nil }
        guard let value = try config.number(key) else { return nil }
        return (value, setting.line)
    }

    /// A size in MiB, as KiB (xl: `l * 1024`).
    mutating func mebibytes(_ key: String) throws(ParseError) -> (kib: UInt64, line: Int)? {
        guard let (value, line) = try number(key) else { return nil }
        let maximum = LaunchLimits.maxMemoryKiB / 1024
        guard value > 0, UInt64(value) <= maximum else {
            throw .invalid("line \(line): \(key): \(value) MiB is not from 1 to \(maximum)")
        }
        return (UInt64(value) * 1024, line)
    }

    /// A vCPU count.
    mutating func count(_ key: String, allowZero: Bool) throws(ParseError) -> (value: UInt32, line: Int)? {
        guard let (value, line) = try number(key) else { return nil }
        guard value >= (allowZero ? 0 : 1), value <= Int(LaunchLimits.maxVcpus) else {
            throw .invalid("line \(line): \(key): \(value) is not from \(allowZero ? 0 : 1) to \(LaunchLimits.maxVcpus)")
        }
        return (UInt32(value), line)
    }

    /// A list of strings, as xl walks it with `xlu_cfg_get_listitem` (which stops at the
    /// first item that is itself a list; domb refuses such an item). A single string is
    /// absent to xl (after a warning); domb refuses it.
    mutating func strings(_ key: String) throws(ParseError) -> (items: [String], line: Int)? {
        guard let setting = take(key) else { return nil }
        guard case .list(let values) = setting.value else {
            throw .invalid("line \(setting.line): \(key): one value where xl reads a list [ ... ] (xl would ignore it)")
        }
        var items: [String] = []
        for value in values {
            guard case .string(let item) = value else {
                throw .invalid("line \(setting.line): \(key): a nested list at item \(items.count + 1); xl stops reading there")
            }
            items.append(item)
        }
        return (items, setting.line)
    }

    mutating func note(_ kind: LaunchNote.Kind, _ key: String, line: Int, _ message: String) {
        notes.append(LaunchNote(kind: kind, key: key, line: line, message: message))
    }

    mutating func remark(_ key: String, line: Int, _ message: String) { note(.remark, key, line: line, message) }

    /// The error for a key xl reads that the launch model cannot carry.
    func refusal(_ key: String) -> ParseError {
        let line = config.setting(key)?.line ?? 0
        return .unsupported(
            "line \(line): \(key): xl 4.17 reads this key, and domb's launch model has no place for it; "
                + "remove it (or describe the domain as a device tree) rather than launch without it")
    }

    /// Every key not read: refused if xl 4.17 reads it for a guest of `type`, else noted
    /// as ignored (xl does not read it).
    mutating func finish(type: GuestType) throws(ParseError) {
        for setting in config.settings where !consumed.contains(setting.name) {
            let key = setting.name
            if setting.value == .list([]) {
                note(.ignoredKey, key, line: setting.line, "an empty list: xl sets nothing from it")
                continue
            }
            switch XLKeys.reading(key, type: type, config: config) {
            case .read where key == "vnc" && type == .pv && (try? config.number(key)) == 0:
                note(.remark, key, line: setting.line, "0: no framebuffer, which is what the launch has")
            case .read:
                guard let fixed = XLDefault.entry(key, type: type), let value = try config.number(key),
                    (value != 0) == fixed.value
                else { throw refusal(key) }
                note(.remark, key, line: setting.line, "\(value): libxl's default, which the launch has")
            case .ignoredWithWarning(let what):
                note(.ignoredKey, key, line: setting.line, what)
            case .notRead(let why):
                // xl reads it for other guest types, or not at all.
                note(XLKeys.isKnown(key) ? .ignoredKey : .unknownKey, key, line: setting.line, why)
            }
        }
    }
}

/// Which keys xl 4.17's `parse_config_data` (tools/xl/xl_parse.c) reads, for which guest
/// types, and which it reads only to warn and ignore.
enum XLKeys {
    enum Reading: Equatable {
        case read
        case ignoredWithWarning(String)
        case notRead(String)
    }

    /// Keys read for every guest type (those domb imports are read before this is asked).
    static let common: Set<String> = [
        "name", "type", "builder", "uuid", "pool", "seclabel", "init_seclabel", "hap", "oos", "cpu_weight", "cap",
        "period", "slice", "latency", "extratime", "memory", "maxmem", "vcpus", "maxvcpus", "vuart", "vnuma", "cpus",
        "cpus_soft", "max_grant_frames", "max_maptrack_frames", "max_grant_version", "on_poweroff", "on_reboot",
        "on_watchdog", "on_crash", "on_soft_reset", "pci_msitranslate", "pci_power_mgmt", "pci_permissive", "pci_seize",
        "rdm", "pci", "dtdev", "passthrough", "shadow_memory", "nomigrate", "tsc_mode", "rtc_timeoffset", "localtime",
        "videoram", "max_event_channels", "kernel", "ramdisk", "device_tree", "cmdline", "root", "extra",
        "driver_domain", "acpi", "bootloader", "bootloader_args", "timer_mode", "nestedhvm", "firmware", "altp2m",
        "vmtrace_buf_kb", "ioports", "irqs", "iomem", "disk", "p9", "vtpm", "vdispl", "pvcalls", "vsnd", "channel",
        "vif", "vfb", "usbctrl", "usbdev", "cpuid", "device_model_override", "device_model_version",
        "device_model_stubdomain_override", "device_model_stubdomain_seclabel", "device_model_user",
        "stubdomain_kernel", "stubdomain_cmdline", "stubdomain_ramdisk", "stubdomain_memory", "device_model_args",
        "device_model_args_pv", "device_model_args_hvm", "dm_restrict", "gic_version", "tee", "vkb",
        "xend_suspend_evtchn_compat", "msr_relaxed", "vpmu",
    ]

    /// Read only for HVM guests (xl_parse.c's `LIBXL_DOMAIN_TYPE_HVM` branches).
    static let hvmOnly: Set<String> = [
        "firmware_override", "bios_path_override", "bios", "pae", "acpi_s3", "acpi_s4", "acpi_laptop_slate", "nx", "hpet",
        "vpt_align", "apic", "viridian", "mmio_hole", "altp2mhvm", "smbios_firmware", "acpi_firmware", "ms_vm_genid",
        "rdm_mem_boundary", "mca_caps", "vga", "stdvga", "hdtype", "spice", "spiceport", "spicetls_port", "spicehost",
        "spicedisable_ticketing", "spicepasswd", "spiceagent_mouse", "spicevdagent", "spice_clipboard_sharing",
        "spiceusbredirection", "spice_image_compression", "spice_streaming_video", "nographic", "gfx_passthru", "serial",
        "boot", "usb", "usbversion", "usbdevice", "vkb_device", "soundhw", "xen_platform_pci", "vendor_device",
    ]
    static let pvOnly: Set<String> = ["e820_host"]
    static let pvhOnly: Set<String> = ["pvshim", "pvshim_path", "pvshim_cmdline", "pvshim_extra"]
    /// The top-level display keys: read for PVH and HVM guests; for PV only `vnc`, and the
    /// others (with `keymap`) when `vnc` is not 0 and there is no `vfb` list.
    static let display: Set<String> = ["vnc", "vnclisten", "vncpasswd", "vncdisplay", "vncunused", "sdl", "opengl", "display", "xauthority"]
    /// Read, then ignored with a warning.
    static let warned: [String: String] = [
        "vncviewer": "xl ignores it (use xl create -V)",
        "device_model": "xl ignores it (device_model_override replaces it)",
        "vif2": "xl ignores it (netchannel2 is deprecated and not supported by xl)",
    ]

    /// Whether xl 4.17 reads `key` for some guest type.
    static func isKnown(_ key: String) -> Bool {
        warned[key] != nil || common.contains(key) || hvmOnly.contains(key) || pvOnly.contains(key) || pvhOnly.contains(key)
            || display.contains(key) || key == "keymap"
    }

    static func reading(_ key: String, type: GuestType, config: XLUtilConfig) -> Reading {
        if let warning = warned[key] { return .ignoredWithWarning(warning) }
        if common.contains(key) { return .read }
        let typeName = type.rawValue
        if hvmOnly.contains(key) { return type == .hvm ? .read : .notRead("xl 4.17 reads it only for hvm guests, not \(typeName)") }
        if pvOnly.contains(key) { return type == .pv ? .read : .notRead("xl 4.17 reads it only for pv guests, not \(typeName)") }
        if pvhOnly.contains(key) { return type == .pvh ? .read : .notRead("xl 4.17 reads it only for pvh guests, not \(typeName)") }
        if display.contains(key) || key == "keymap" {
            if type == .hvm { return .read }
            if type == .pvh { return key == "keymap" ? .notRead("xl 4.17 reads it only for hvm guests and PV framebuffers") : .read }
            if key == "vnc" { return .read }
            let vncOn = ((try? config.number("vnc")) ?? nil).map { $0 != 0 } ?? false
            return vncOn && config.setting("vfb") == nil
                ? .read : .notRead("xl 4.17 reads it for a pv guest only when vnc is on and there is no vfb list")
        }
        return .notRead("xl 4.17 does not read this key")
    }
}
