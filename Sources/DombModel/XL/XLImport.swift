//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

/// A domain imported from an xl.cfg file as `xl` 4.17 reads it: the syntax by libxlutil
/// (`XLUtilConfig`), every key by the rules of `parse_config_data`
/// (tools/xl/xl_parse.c). A key xl reads that the launch model cannot carry is refused
/// with its line; a key xl does not read (or reads and ignores) is reported in ``notes``
/// and left out, as xl leaves it out.
///
/// Where xl only warns and goes on (a number that is not one, a string key given a list,
/// a vif term it does not recognise), domb refuses the file: what xl would launch then
/// differs from what the file says.
public struct XLImport: Hashable, Sendable {
    public var domain: DomainSpec
    /// What xl ignores too (left out), and remarks (defaults filled in, libxl defaults taken).
    public var notes: [LaunchNote]

    /// Xen 4.17's XENFIRMWAREDIR in Debian's packages: hvmloader and `pvgrub*.bin`.
    public static let firmwareDirectory = "/usr/lib/xen-4.17/boot"
    /// The HVM firmware loader libxl uses by default.
    public static let defaultHVMLoader = firmwareDirectory + "/hvmloader"
    /// libxl's memory when xl.cfg gives none (`libxl__domain_build_info_setdefault`).
    public static let libxlDefaultMemoryKiB: UInt64 = 32 * 1024

    /// Imports one parsed xl.cfg file.
    /// - Throws: `ParseError` naming the line and the key: values xl refuses, values xl
    ///   would ignore with a warning, and keys the launch model cannot carry.
    public init(_ config: XLUtilConfig) throws(ParseError) {
        var reader = XLReader(config)
        let domain = try Self.importDomain(&reader)
        try reader.finish(type: domain.type)
        self.domain = domain
        self.notes = reader.notes
    }

    private static func importDomain(_ reader: inout XLReader) throws(ParseError) -> DomainSpec {
        let type = try guestType(&reader)
        guard let (name, nameLine) = try reader.string("name") else {
            throw .invalid("name: Domain name must be specified.")
        }
        guard LaunchLimits.isValidName(name) else {
            throw .invalid("line \(nameLine): name: \"\(TerminalText.escape(name))\" must be \(LaunchLimits.nameRule)")
        }
        let (memoryKiB, maxMemoryKiB) = try memory(&reader)
        let (vcpus, maxVcpus) = try vcpus(&reader)
        var domain = DomainSpec(name: name, type: type, memoryKiB: memoryKiB, vcpus: vcpus)
        domain.maxMemoryKiB = maxMemoryKiB
        domain.maxVcpus = maxVcpus
        if let (uuid, line) = try reader.string("uuid") {
            guard let canonical = XenstoreUUID.canonical(uuid) else {
                throw .invalid("line \(line): uuid: Failed to parse UUID: \(TerminalText.escape(uuid))")
            }
            domain.uuid = canonical
        }
        if let (pool, _) = try reader.string("pool"), pool != CPUPoolSpec.pool0Name { domain.cpupool = pool }
        if let (label, line) = try reader.string("seclabel") {
            if reader.has("init_seclabel") {
                throw .unsupported("line \(line): init_seclabel: a separate label for the build (xl's exec_ssid_label) has no place in the launch model")
            }
            domain.securityID = label
        }
        // xl reads cpus and cpus_soft against max_vcpus, which is still 0 when neither vcpus
        // nor maxvcpus is given: then it pins nothing.
        let maxvcpus = try reader.config.number("maxvcpus")
        let vcpuCountGiven = reader.has("vcpus") || maxvcpus.map { $0 != 0 } ?? false
        domain.cpuAffinity = try affinity(&reader, key: "cpus", vcpuCountGiven: vcpuCountGiven, maxVcpus: domain.maxVcpus ?? domain.vcpus)
        domain.softCPUAffinity = try affinity(
            &reader, key: "cpus_soft", vcpuCountGiven: vcpuCountGiven, maxVcpus: domain.maxVcpus ?? domain.vcpus)
        if let (flag, _) = try reader.number("driver_domain") { domain.isDriverDomain = flag != 0 }
        try lifecycle(&reader, into: &domain)
        domain.modules = try modules(&reader, type: type)
        domain.devices = try XLDevices.import(&reader)
        return domain
    }

    // MARK: Guest type

    /// `type` and the deprecated `builder`, each compared as xl compares them:
    /// `strncmp(value, "hvm", strlen(value))`, so any prefix of a name selects it.
    private static func guestType(_ reader: inout XLReader) throws(ParseError) -> GuestType {
        func matches(_ value: String, _ name: String) -> Bool { name.hasPrefix(value) }
        var type: GuestType?
        if let (text, line) = try reader.string("type") {
            if matches(text, "hvm") {
                type = .hvm
            } else if matches(text, "pv") {
                type = .pv
            } else if matches(text, "pvh") {
                type = .pvh
            } else {
                throw .invalid("line \(line): type: Invalid domain type \(TerminalText.escape(text)) (pv, pvh or hvm).")
            }
        }
        if let (text, line) = try reader.string("builder") {
            let builderType: GuestType
            if matches(text, "hvm") {
                builderType = .hvm
            } else if matches(text, "generic") {
                builderType = .pv
            } else {
                throw .invalid("line \(line): builder: Invalid domain type \(TerminalText.escape(text)) (generic or hvm).")
            }
            if let type, type != builderType {
                throw .invalid("line \(line): builder: Contradicting \"builder\" and \"type\" options specified.")
            }
            type = builderType
        }
        return type ?? .pv
    }

    // MARK: Memory and vCPUs

    /// `memory` and `maxmem` in MiB. xl sets `target_memkb` and `max_memkb` from them (max
    /// to the target when not given); libxl gives 32 MiB when neither is.
    private static func memory(_ reader: inout XLReader) throws(ParseError) -> (UInt64, UInt64?) {
        let memory = try reader.mebibytes("memory")
        let maximum = try reader.mebibytes("maxmem")
        var target: UInt64
        if let memory {
            target = memory.kib
        } else {
            // libxl: max defaults to 32 MiB, the target to the max.
            target = maximum?.kib ?? libxlDefaultMemoryKiB
            reader.remark(
                "memory", line: 0,
                maximum == nil ? "not given: libxl's default, 32 MiB" : "not given: libxl makes it maxmem, \(target / 1024) MiB")
        }
        guard let maximum else { return (target, nil) }
        guard maximum.kib >= target else {
            throw .invalid(
                "line \(maximum.line): maxmem: \(maximum.kib / 1024) MiB is below memory (\(target / 1024) MiB); "
                    + "a launch needs maxmem ≥ memory")
        }
        return (target, maximum.kib == target ? nil : maximum.kib)
    }

    /// `vcpus` (online at start) and `maxvcpus`: xl makes `max_vcpus` maxvcpus, else vcpus,
    /// and refuses maxvcpus below vcpus; libxl starts 1 vCPU when vcpus is not given.
    private static func vcpus(_ reader: inout XLReader) throws(ParseError) -> (UInt32, UInt32?) {
        let online = try reader.count("vcpus", allowZero: false)
        let maximum = try reader.count("maxvcpus", allowZero: true)
        let vcpus = online?.value ?? 1
        // maxvcpus = 0 leaves max_vcpus to vcpus, as when it is absent.
        guard let maximum, maximum.value != 0 else { return (vcpus, nil) }
        guard maximum.value >= (online?.value ?? 0) else {
            throw .invalid("line \(maximum.line): maxvcpus: xl: maxvcpus < vcpus")
        }
        if online == nil && maximum.value > 1 {
            reader.remark("vcpus", line: 0, "not given: libxl starts vCPU 0 alone of the \(maximum.value)")
        }
        return (vcpus, maximum.value == vcpus ? nil : maximum.value)
    }

    // MARK: Affinity

    /// `cpus` or `cpus_soft` as xl's `parse_vcpu_affinity` reads it: a CPULIST string for
    /// every vCPU, or a list of them, one per vCPU from vCPU 0.
    private static func affinity(
        _ reader: inout XLReader, key: String, vcpuCountGiven: Bool, maxVcpus: UInt32
    ) throws(ParseError) -> VCPUAffinity? {
        guard let setting = reader.take(key) else { return nil }
        let line = setting.line
        guard vcpuCountGiven else {
            throw .invalid("line \(line): \(key): xl 4.17 pins no vCPU when vcpus is not given (it reads \(key) against 0 vCPUs); give vcpus")
        }
        let lists: [String]
        switch setting.value {
        case .string(let text): lists = [text]
        case .list(let items):
            lists = try items.enumerated().map { (index, item) throws(ParseError) -> String in
                guard case .string(let text) = item else {
                    throw .invalid("line \(line): \(key): a nested list at item \(index + 1); xl stops reading there")
                }
                return text
            }
            guard lists.count <= Int(maxVcpus) else {
                throw .invalid(
                    "line \(line): \(key): \(lists.count) CPU lists for \(maxVcpus) vCPUs; xl 4.17 ignores the ones past the last vCPU")
            }
        }
        do throws(ParseError) {
            let affinity = try VCPUAffinity(cpuLists: lists, perVCPU: setting.value.string == nil)
            for set in affinity.sets where set == .cpus([]) {
                throw ParseError.invalid("\"\(TerminalText.escape(lists.joined(separator: "\", \"")))\" leaves a vCPU no CPU")
            }
            return affinity
        } catch {
            throw ParseError(error.code, "line \(line): \(key): \(error.reason)")
        }
    }

    // MARK: Lifecycle

    /// `on_poweroff`, `on_reboot`, `on_crash` into the model; `on_watchdog` and
    /// `on_soft_reset` only at the value xl always sets (destroy, soft-reset), which is the
    /// value domb hands libxl.
    private static func lifecycle(_ reader: inout XLReader, into domain: inout DomainSpec) throws(ParseError) {
        func action(_ key: String) throws(ParseError) -> (LifecycleAction, Int)? {
            guard let (text, line) = try reader.string(key) else { return nil }
            guard let action = LifecycleAction(rawValue: text) else {
                throw .invalid(
                    "line \(line): \(key): Unknown \(key) action \"\(TerminalText.escape(text))\" specified "
                        + "(\(LifecycleAction.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return (action, line)
        }
        domain.onPoweroff = try action("on_poweroff")?.0
        domain.onReboot = try action("on_reboot")?.0
        domain.onCrash = try action("on_crash")?.0
        for (key, fixed) in [("on_watchdog", LifecycleAction.destroy), ("on_soft_reset", .softReset)] {
            if let (value, line) = try action(key), value != fixed {
                throw .unsupported(
                    "line \(line): \(key): the launch model carries only xl's default, \(fixed.rawValue), not \(value.rawValue)")
            }
        }
    }

    // MARK: Kernel, ramdisk, firmware

    private static func modules(_ reader: inout XLReader, type: GuestType) throws(ParseError) -> [ModuleSpec] {
        var kernel = try reader.string("kernel")
        let ramdisk = try reader.string("ramdisk")
        let deviceTree = try reader.string("device_tree")
        let bootargs = try commandLine(&reader)
        let firmware = try reader.string("firmware")
        var modules: [ModuleSpec] = []
        switch type {
        case .hvm:
            if let (path, line) = kernel {
                guard path.split(separator: "/").last == "hvmloader" else {
                    throw .unsupported("line \(line): kernel: direct kernel boot of an HVM guest (through QEMU) is not supported")
                }
                // xl: "you seem to be using kernel directive to override HVM guest firmware. Ignore that."
                reader.note(.ignoredKey, "kernel", line: line, "xl ignores an hvmloader given as kernel (use firmware_override)")
                kernel = nil
            }
            if let (_, line) = ramdisk ?? bootargs {
                throw .invalid("line \(line): direct boot parameters (ramdisk, cmdline, root, extra) specified but kernel missing")
            }
            var loader = try reader.string("firmware_override")
            if let (value, line) = firmware {
                // xl: libxl_bios_type_from_string (no case), then "uefi" and "bios" by prefix.
                if ["rombios", "seabios", "ovmf"].contains(value.lowercased()) || "uefi".hasPrefix(value) {
                    throw .unsupported(
                        "line \(line): firmware: \"\(TerminalText.escape(value))\" selects libxl's BIOS type; the launch model "
                            + "loads hvmloader and its default BIOS (firmware = \"bios\" or the path of an hvmloader)")
                } else if !"bios".hasPrefix(value) {
                    loader = (value, line)
                }
            }
            if let (path, line) = loader, !path.hasPrefix("/") {
                // libxl looks a relative firmware up in its firmware directory; a launch
                // description resolves relative paths against its own directory.
                throw .unsupported(
                    "line \(line): firmware: \"\(TerminalText.escape(path))\" is relative (libxl reads it from \(firmwareDirectory)); write the absolute path")
            }
            if let (path, _) = loader {
                modules.append(ModuleSpec(kind: .firmware, path: path))
            } else {
                modules.append(ModuleSpec(kind: .firmware, path: defaultHVMLoader))
                reader.remark("firmware", line: firmware?.1 ?? 0, "HVM firmware is libxl's default hvmloader: \(defaultHVMLoader)")
            }
        case .pv, .pvh:
            if let (value, line) = firmware {
                if let (_, kernelLine) = kernel {
                    throw .invalid("line \(kernelLine): kernel: ERROR: both kernel and firmware specified")
                }
                guard "pvgrub32".hasPrefix(value) || "pvgrub64".hasPrefix(value) else {
                    throw .invalid("line \(line): firmware: ERROR: only pvgrub{32|64} supported as firmware options")
                }
                kernel = ("\(firmwareDirectory)/\(value).bin", line)
            }
            guard let (path, _) = kernel else {
                if reader.has("bootloader") { throw reader.refusal("bootloader") }
                throw .invalid("kernel: Neither kernel nor bootloader specified")
            }
            modules.append(ModuleSpec(kind: .kernel, path: path, bootargs: bootargs?.0))
            if let (path, _) = ramdisk { modules.append(ModuleSpec(kind: .ramdisk, path: path)) }
        }
        if let (path, _) = deviceTree { modules.append(ModuleSpec(kind: .deviceTree, path: path)) }
        return modules
    }

    /// `parse_cmdline`: `cmdline`, else `root=ROOT EXTRA` from `root` and `extra`.
    private static func commandLine(_ reader: inout XLReader) throws(ParseError) -> (String, Int)? {
        let cmdline = try reader.string("cmdline")
        let root = try reader.string("root")
        let extra = try reader.string("extra")
        if let cmdline {
            if root != nil || extra != nil {
                reader.note(.ignoredKey, root != nil ? "root" : "extra", line: (root ?? extra)?.1 ?? 0,
                            "ignoring root= and extra= in favour of cmdline= (as xl does)")
            }
            return cmdline
        }
        switch (root, extra) {
        case let ((root, line)?, (extra, _)?): return ("root=\(root) \(extra)", line)
        case let ((root, line)?, nil): return ("root=\(root)", line)
        case let (nil, (extra, line)?): return (extra, line)
        case (nil, nil): return nil
        }
    }
}
