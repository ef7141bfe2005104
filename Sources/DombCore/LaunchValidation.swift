//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One thing wrong with a launch description: what it is about, which rule it breaks,
/// and a sentence saying why. Validation returns one problem per fault; it never stops at
/// the first.
public struct LaunchProblem: Hashable, Sendable, CustomStringConvertible {
    /// A rule of the launch description. The raw value is a stable kebab-case name shown
    /// in messages and documented in `docs/binding.md` ("Validation rules").
    public struct Rule: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let noDomains = Rule("no-domains")
        public static let tooMany = Rule("limit")
        public static let invalidName = Rule("invalid-name")
        public static let duplicateName = Rule("duplicate-name")
        public static let duplicateDomid = Rule("duplicate-domid")
        public static let reservedDomid = Rule("reserved-domid")
        public static let invalidUUID = Rule("invalid-uuid")
        public static let duplicateUUID = Rule("duplicate-uuid")
        public static let missingKernel = Rule("missing-kernel")
        public static let modeModuleMismatch = Rule("mode-module-mismatch")
        public static let duplicateModule = Rule("duplicate-module")
        public static let modulePath = Rule("module-path")
        public static let memory = Rule("memory")
        public static let vcpus = Rule("vcpus")
        public static let cpuAffinity = Rule("cpu-affinity")
        public static let unknownCPUPool = Rule("unknown-cpupool")
        public static let cpupool = Rule("cpupool")
        public static let cpupoolOverlap = Rule("cpupool-overlap")
        public static let capabilities = Rule("capabilities")
        public static let xenstoreDomains = Rule("single-xenstore-domain")
        public static let bootDomains = Rule("single-boot-domain")
        public static let staticControl = Rule("static-mode-control")
        public static let unknownBackend = Rule("unknown-backend")
        public static let backendCycle = Rule("backend-cycle")
        public static let backendCapability = Rule("backend-capability")
        public static let deviceSetting = Rule("device-setting")
        public static let duplicateDevice = Rule("duplicate-device")
        public static let eventChannel = Rule("evtchn")
        public static let sharedMemory = Rule("shared-memory")
        public static let image = Rule("image")
    }

    /// What the problem is about, e.g. `domain "web"` or `domain "web" vif 0`.
    public var subject: String
    /// The domain involved, if any (callers use it to name the node or file).
    public var domain: String?
    public var rule: Rule
    public var message: String

    public init(_ subject: String, domain: String? = nil, _ rule: Rule, _ message: String) {
        self.subject = subject
        self.domain = domain
        self.rule = rule
        self.message = message
    }

    public var description: String { "\(subject): \(message) [\(rule)]" }
}

/// A check of a domain's images against its mode, supplied by the image inspector (an
/// ELF/bzImage reader lives outside the pure model rules). Return one problem per fault,
/// using rule ``LaunchProblem/Rule/image``.
public protocol ImageCapabilityChecking {
    func problems(domain: DomainSpec, module: ModuleSpec) -> [LaunchProblem]
}

/// Limits of the launch description. Named so that messages and docs can cite them.
public enum LaunchLimits {
    public static let maxDomains = 256
    public static let maxDevicesPerDomain = 64
    public static let maxModulesPerDomain = 8
    public static let maxCPUPools = 64
    public static let maxEventChannels = 1024
    public static let maxSharedMemoryRegions = 256
    /// Domain and cpupool names must be device-tree node names: at most 31 characters.
    public static let maxNameLength = 31
    public static let maxPathLength = 4096
    public static let maxSettingLength = 1024
    public static let maxBootargsLength = 4096
    /// `DOMID_FIRST_RESERVED`: domids from here up are Xen's own.
    public static let firstReservedDomid: UInt32 = 0x7FF0
    /// Xen's smallest useful guest, and a generous ceiling (16 TiB).
    public static let minMemoryKiB: UInt64 = 1024
    public static let maxMemoryKiB: UInt64 = 16 << 30
    /// `HVM_MAX_VCPUS` is 128; PV allows more, but a boot description this large is an error.
    public static let maxVcpus: UInt32 = 512
    public static let maxHVMVcpus: UInt32 = 128
    /// Physical CPU numbers accepted in cpupools and affinities.
    public static let maxCPU: UInt32 = 4095
    /// FIFO event channels: ports 1 ..< 2^17.
    public static let maxEventChannelPort: UInt32 = (1 << 17) - 1
    /// `xen,shm-id` holds at most 16 bytes including the NUL.
    public static let maxSharedMemoryIDLength = 15
    public static let pageSize: UInt64 = 4096
}

/// The name of dom0 as a backend, as xl spells it.
public let dom0Name = "Domain-0"

/// The cpupool a domain without `cpupool` runs in.
public let pool0Name = "Pool-0"

/// Schedulers Xen 4.17 offers for cpupools.
public let knownSchedulers: Set<String> = ["credit", "credit2", "rtds", "arinc653", "null"]

extension LaunchSpec {
    /// Checks the model-level rules and returns every problem found (empty when valid).
    ///
    /// - Parameter imageChecker: checks each module against its domain's mode (image
    ///   capabilities: PVH needs `PHYS32_ENTRY`...); nil skips image checks.
    public func validate(imageChecker: (any ImageCapabilityChecking)? = nil) -> [LaunchProblem] {
        var validator = LaunchValidator(spec: self)
        validator.run()
        if let imageChecker {
            for domain in domains {
                for module in domain.modules {
                    validator.problems += imageChecker.problems(domain: domain, module: module)
                }
            }
        }
        return validator.problems
    }
}

/// Is `name` usable as a device-tree node name (and so as a domain or cpupool name)?
public func isValidLaunchName(_ name: String) -> Bool {
    guard !name.isEmpty, name.utf8.count <= LaunchLimits.maxNameLength else { return false }
    return name.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "+"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// Is `text` an RFC 4122 UUID in its 8-4-4-4-12 hexadecimal text form?
public func isValidUUID(_ text: String) -> Bool {
    let groups = text.split(separator: "-", omittingEmptySubsequences: false)
    guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
    return groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
}

/// Is `text` a unicast MAC address `xx:xx:xx:xx:xx:xx`?
func isValidUnicastMAC(_ text: String) -> Bool {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }),
        let first = UInt8(parts[0], radix: 16)
    else { return false }
    return first & 1 == 0
}

private struct LaunchValidator {
    let spec: LaunchSpec
    var problems: [LaunchProblem] = []

    init(spec: LaunchSpec) { self.spec = spec }

    mutating func add(_ subject: String, domain: String? = nil, _ rule: LaunchProblem.Rule, _ message: String) {
        problems.append(LaunchProblem(subject, domain: domain, rule, message))
    }

    mutating func run() {
        if spec.domains.isEmpty {
            add("launch description", .noDomains, "describes no domain; at least one is needed")
        }
        checkCounts()
        checkNamesAndIDs()
        for domain in spec.domains { checkDomain(domain) }
        checkRoles()
        checkCPUPools()
        checkDevices()
        checkBackendCycles()
        checkEventChannels()
        checkSharedMemory()
    }

    // MARK: - System-wide counts

    mutating func checkCounts() {
        let caps: [(Int, Int, String)] = [
            (spec.domains.count, LaunchLimits.maxDomains, "domains"),
            (spec.cpupools.count, LaunchLimits.maxCPUPools, "cpupools"),
            (spec.eventChannels.count, LaunchLimits.maxEventChannels, "static event channels"),
            (spec.sharedMemory.count, LaunchLimits.maxSharedMemoryRegions, "shared-memory regions"),
        ]
        for (count, cap, what) in caps where count > cap {
            add("launch description", .tooMany, "has \(count) \(what); at most \(cap) are allowed")
        }
    }

    // MARK: - Names, domids, UUIDs

    mutating func checkNamesAndIDs() {
        var names: [String: Int] = [:]
        var domids: [UInt32: String] = [:]
        var uuids: [String: String] = [:]
        for domain in spec.domains {
            let subject = "domain \"\(domain.name)\""
            if !isValidLaunchName(domain.name) {
                add(
                    subject, domain: domain.name, .invalidName,
                    "name must be 1 to \(LaunchLimits.maxNameLength) characters of A-Z a-z 0-9 , . _ + -")
            }
            if domain.name == dom0Name {
                add(subject, domain: domain.name, .invalidName, "\"\(dom0Name)\" is dom0 and cannot be described")
            }
            names[domain.name, default: 0] += 1
            if names[domain.name] == 2 {
                add(subject, domain: domain.name, .duplicateName, "more than one domain has this name")
            }
            if let domid = domain.domid {
                if domid == 0 {
                    add(subject, domain: domain.name, .reservedDomid, "domid 0 is dom0; leave domid out for the next free one")
                } else if domid >= LaunchLimits.firstReservedDomid {
                    add(
                        subject, domain: domain.name, .reservedDomid,
                        "domid \(domid) (0x\(String(domid, radix: 16))) is reserved (DOMID_FIRST_RESERVED is 0x7ff0)")
                } else if let other = domids[domid] {
                    add(subject, domain: domain.name, .duplicateDomid, "domid \(domid) is also used by domain \"\(other)\"")
                } else {
                    domids[domid] = domain.name
                }
            }
            if let uuid = domain.uuid {
                if !isValidUUID(uuid) {
                    add(subject, domain: domain.name, .invalidUUID, "uuid \"\(uuid)\" is not of the form 8-4-4-4-12 hex digits")
                } else if let other = uuids[uuid.lowercased()] {
                    add(subject, domain: domain.name, .duplicateUUID, "uuid \(uuid) is also used by domain \"\(other)\"")
                } else {
                    uuids[uuid.lowercased()] = domain.name
                }
            }
        }
    }

    // MARK: - One domain

    mutating func checkDomain(_ domain: DomainSpec) {
        let subject = "domain \"\(domain.name)\""
        let name = domain.name
        // Modules: what the mode needs, at most one of each kind.
        var seen: Set<ModuleKind> = []
        for module in domain.modules {
            let moduleSubject = "\(subject) module \(module.kind.rawValue)"
            if seen.contains(module.kind) {
                add(moduleSubject, domain: name, .duplicateModule, "more than one \(module.kind.rawValue) module")
            }
            seen.insert(module.kind)
            if module.path.isEmpty {
                add(moduleSubject, domain: name, .modulePath, "path is empty")
            } else if module.path.utf8.count > LaunchLimits.maxPathLength || module.path.utf8.contains(0) {
                add(moduleSubject, domain: name, .modulePath, "path is longer than \(LaunchLimits.maxPathLength) bytes or holds a NUL")
            }
            if let bootargs = module.bootargs {
                if module.kind != .kernel {
                    add(moduleSubject, domain: name, .modeModuleMismatch, "bootargs belong on the kernel module")
                } else if bootargs.utf8.count > LaunchLimits.maxBootargsLength || bootargs.utf8.contains(0) {
                    add(moduleSubject, domain: name, .modeModuleMismatch, "bootargs are longer than \(LaunchLimits.maxBootargsLength) bytes or hold a NUL")
                }
            }
        }
        if domain.modules.count > LaunchLimits.maxModulesPerDomain {
            add(subject, domain: name, .tooMany, "has \(domain.modules.count) modules; at most \(LaunchLimits.maxModulesPerDomain)")
        }
        switch domain.type {
        case .pv, .pvh:
            if !seen.contains(.kernel) {
                add(subject, domain: name, .missingKernel, "a \(domain.type.rawValue.uppercased()) domain needs a kernel module")
            }
            if seen.contains(.firmware) {
                add(subject, domain: name, .modeModuleMismatch, "a firmware module is for HVM domains, not \(domain.type.rawValue.uppercased())")
            }
        case .hvm:
            if !seen.contains(.firmware) {
                add(subject, domain: name, .modeModuleMismatch, "an HVM domain needs a firmware module (hvmloader)")
            }
        }
        if seen.contains(.ramdisk) && !seen.contains(.kernel) {
            add(subject, domain: name, .modeModuleMismatch, "a ramdisk module needs a kernel module")
        }
        if domain.type == .pv && domain.enhanced == .disabled {
            add(subject, domain: name, .modeModuleMismatch, "a PV domain cannot run with xen,enhanced \"disabled\"")
        }

        // Memory, KiB.
        if domain.memoryKiB < LaunchLimits.minMemoryKiB || domain.memoryKiB > LaunchLimits.maxMemoryKiB {
            add(
                subject, domain: name, .memory,
                "memory \(domain.memoryKiB) KiB is outside \(LaunchLimits.minMemoryKiB) KiB to \(LaunchLimits.maxMemoryKiB) KiB")
        }
        if domain.memoryKiB % 4 != 0 {
            add(subject, domain: name, .memory, "memory \(domain.memoryKiB) KiB is not a whole number of 4 KiB pages")
        }
        if let minimum = domain.minMemoryKiB, minimum > domain.memoryKiB {
            add(subject, domain: name, .memory, "minimum memory \(minimum) KiB is above the target \(domain.memoryKiB) KiB")
        }
        if let maximum = domain.maxMemoryKiB {
            if maximum < domain.memoryKiB {
                add(subject, domain: name, .memory, "maximum memory \(maximum) KiB is below the target \(domain.memoryKiB) KiB")
            } else if maximum > LaunchLimits.maxMemoryKiB {
                add(subject, domain: name, .memory, "maximum memory \(maximum) KiB is above \(LaunchLimits.maxMemoryKiB) KiB")
            }
        }
        if let p2m = domain.p2mMemoryMB, p2m == 0 {
            add(subject, domain: name, .memory, "xen,domain-p2m-mem-mb must be at least 1")
        }

        // vCPUs.
        let vcpuCap = domain.type == .hvm ? LaunchLimits.maxHVMVcpus : LaunchLimits.maxVcpus
        if domain.vcpus == 0 || domain.vcpus > vcpuCap {
            add(subject, domain: name, .vcpus, "vcpus \(domain.vcpus) is outside 1 to \(vcpuCap) for \(domain.type.rawValue.uppercased())")
        }
        if let maxVcpus = domain.maxVcpus {
            if maxVcpus < domain.vcpus {
                add(subject, domain: name, .vcpus, "maximum vcpus \(maxVcpus) is below vcpus \(domain.vcpus)")
            } else if maxVcpus > vcpuCap {
                add(subject, domain: name, .vcpus, "maximum vcpus \(maxVcpus) is above \(vcpuCap)")
            }
        }
        if let affinity = domain.cpuAffinity {
            if affinity.isEmpty {
                add(subject, domain: name, .cpuAffinity, "CPU affinity is an empty set: the domain could never run")
            }
            if let bad = affinity.first(where: { $0 > LaunchLimits.maxCPU }) {
                add(subject, domain: name, .cpuAffinity, "CPU affinity names CPU \(bad), above \(LaunchLimits.maxCPU)")
            }
            if let poolName = domain.cpupool, let pool = spec.cpupools.first(where: { $0.name == poolName }) {
                let outside = affinity.filter { !pool.cpus.contains($0) }
                if !outside.isEmpty {
                    add(
                        subject, domain: name, .cpuAffinity,
                        "CPU affinity \(outside.map(String.init).joined(separator: ",")) lies outside cpupool \"\(poolName)\"")
                }
            }
        }
        if let pool = domain.cpupool, pool != pool0Name, !spec.cpupools.contains(where: { $0.name == pool }) {
            add(subject, domain: name, .unknownCPUPool, "cpupool \"\(pool)\" is not defined")
        }
        if let label = domain.securityID, label.isEmpty || label.utf8.count > LaunchLimits.maxSettingLength {
            add(subject, domain: name, .invalidName, "security-id is empty or longer than \(LaunchLimits.maxSettingLength) bytes")
        }
        if domain.devices.count > LaunchLimits.maxDevicesPerDomain {
            add(subject, domain: name, .tooMany, "has \(domain.devices.count) devices; at most \(LaunchLimits.maxDevicesPerDomain)")
        }
        if domain.capabilities.contains(.xenstore) && (domain.enhanced == .noXenstore || domain.enhanced == .disabled) {
            add(subject, domain: name, .capabilities, "the xenstore domain cannot have xen,enhanced \"\(domain.enhanced?.rawValue ?? "")\"")
        }
        let known = DomainCapabilities.names.reduce(DomainCapabilities()) { $0.union($1.1) }
        if !domain.capabilities.isSubset(of: known) {
            add(subject, domain: name, .capabilities, "unknown capability bits 0x\(String(domain.capabilities.subtracting(known).rawValue, radix: 16))")
        }
    }

    // MARK: - Roles across domains

    mutating func checkRoles() {
        let xenstore = spec.domains.filter { $0.capabilities.contains(.xenstore) }
        if xenstore.count > 1 {
            add(
                "launch description", .xenstoreDomains,
                "more than one xenstore domain: \(xenstore.map { "\"\($0.name)\"" }.joined(separator: ", "))")
        }
        let boot = spec.domains.filter(\.isBootDomain)
        if boot.count > 1 {
            add("launch description", .bootDomains, "more than one boot domain: \(boot.map { "\"\($0.name)\"" }.joined(separator: ", "))")
        }
        let hardware = spec.domains.filter { $0.capabilities.contains(.hardware) }
        if hardware.count > 1 {
            add(
                "launch description", .capabilities,
                "more than one hardware domain: \(hardware.map { "\"\($0.name)\"" }.joined(separator: ", "))")
        }
        if spec.staticMode {
            for domain in spec.domains where domain.capabilities.contains(.control) {
                add(
                    "domain \"\(domain.name)\"", domain: domain.name, .staticControl,
                    "static mode forbids the control capability (no domain may create domains after boot)")
            }
        }
        for domain in boot where !domain.startOnBoot {
            add("domain \"\(domain.name)\"", domain: domain.name, .bootDomains, "the boot domain is the one Xen unpauses; it cannot be paused")
        }
        for domain in xenstore where !domain.startOnBoot {
            add("domain \"\(domain.name)\"", domain: domain.name, .capabilities, "the xenstore domain must start on boot")
        }
    }

    // MARK: - Cpupools

    mutating func checkCPUPools() {
        var names: Set<String> = []
        var owner: [UInt32: String] = [:]
        for pool in spec.cpupools {
            let subject = "cpupool \"\(pool.name)\""
            if !isValidLaunchName(pool.name) {
                add(subject, .invalidName, "name must be 1 to \(LaunchLimits.maxNameLength) characters of A-Z a-z 0-9 , . _ + -")
            }
            if !names.insert(pool.name).inserted {
                add(subject, .duplicateName, "more than one cpupool has this name")
            }
            if pool.cpus.isEmpty {
                add(subject, .cpupool, "has no CPUs")
            }
            if let scheduler = pool.scheduler, !knownSchedulers.contains(scheduler) {
                add(subject, .cpupool, "unknown scheduler \"\(scheduler)\" (known: \(knownSchedulers.sorted().joined(separator: ", ")))")
            }
            var inPool: Set<UInt32> = []
            for cpu in pool.cpus {
                if cpu > LaunchLimits.maxCPU {
                    add(subject, .cpupool, "CPU \(cpu) is above \(LaunchLimits.maxCPU)")
                    continue
                }
                guard inPool.insert(cpu).inserted else {
                    add(subject, .cpupoolOverlap, "lists CPU \(cpu) twice")
                    continue
                }
                if let other = owner[cpu] {
                    add(subject, .cpupoolOverlap, "CPU \(cpu) is also in cpupool \"\(other)\"")
                } else {
                    owner[cpu] = pool.name
                }
            }
        }
    }

    // MARK: - Devices

    func domainNamed(_ name: String) -> DomainSpec? { spec.domains.first { $0.name == name } }

    mutating func checkDevices() {
        var macs: [String: String] = [:]
        for domain in spec.domains {
            var devids: Set<String> = []
            var vdevs: Set<String> = []
            var indexByKind: [DeviceSpec.Kind: Int] = [:]
            for device in domain.devices {
                let index = indexByKind[device.kind, default: 0]
                indexByKind[device.kind] = index + 1
                let subject = "domain \"\(domain.name)\" \(device.kind.rawValue) \(index)"
                checkDevice(device, of: domain, subject: subject)
                if let devid = device.devid, !devids.insert("\(device.kind.rawValue)/\(devid)").inserted {
                    add(subject, domain: domain.name, .duplicateDevice, "devid \(devid) is used twice for \(device.kind.rawValue)")
                }
                if let vdev = device.settings["vdev"], !vdevs.insert(vdev).inserted {
                    add(subject, domain: domain.name, .duplicateDevice, "vdev \(vdev) is used twice in this domain")
                }
                if let mac = device.settings["mac"]?.lowercased(), isValidUnicastMAC(mac) {
                    if let other = macs[mac] {
                        add(subject, domain: domain.name, .duplicateDevice, "mac \(mac) is also used by \(other)")
                    } else {
                        macs[mac] = subject
                    }
                }
            }
            if indexByKind[.console, default: 0] > 1 {
                add("domain \"\(domain.name)\"", domain: domain.name, .duplicateDevice, "more than one console")
            }
        }
    }

    mutating func checkDevice(_ device: DeviceSpec, of domain: DomainSpec, subject: String) {
        let name = domain.name
        // Settings: known keys, sane values.
        let allowed = DeviceSpec.knownSettings[device.kind] ?? []
        for (key, value) in device.settings.sorted(by: { $0.key < $1.key }) {
            if !allowed.contains(key) {
                add(
                    subject, domain: name, .deviceSetting,
                    "unknown setting \"\(key)\" (known for \(device.kind.rawValue): \(allowed.sorted().joined(separator: " ")))")
            } else if value.utf8.count > LaunchLimits.maxSettingLength || value.utf8.contains(0) {
                add(subject, domain: name, .deviceSetting, "setting \"\(key)\" is longer than \(LaunchLimits.maxSettingLength) bytes or holds a NUL")
            }
        }
        if let devid = device.devid, devid > 0xFFFF_FFF {
            add(subject, domain: name, .deviceSetting, "devid \(devid) is out of range")
        }
        let settings = device.settings
        switch device.kind {
        case .vif, .virtioNet:
            if let mac = settings["mac"], !isValidUnicastMAC(mac) {
                add(subject, domain: name, .deviceSetting, "mac \"\(mac)\" is not a unicast xx:xx:xx:xx:xx:xx address")
            }
            if let mtu = settings["mtu"], !(UInt32(mtu).map { (68...65535).contains($0) } ?? false) {
                add(subject, domain: name, .deviceSetting, "mtu \"\(mtu)\" is not a number from 68 to 65535")
            }
        case .vbd, .virtioDisk:
            if (settings["target"] ?? "").isEmpty && settings["devtype"] != "cdrom" {
                add(subject, domain: name, .deviceSetting, "a disk needs a target (block device or image path)")
            }
            if let vdev = settings["vdev"] {
                if virtualDiskNumber(vdev) == nil {
                    add(subject, domain: name, .deviceSetting, "vdev \"\(vdev)\" is not a disk name such as xvda, hdb, sdc or xvda1")
                }
            } else {
                add(subject, domain: name, .deviceSetting, "a disk needs a vdev (e.g. xvda)")
            }
            if let access = settings["access"], !["r", "ro", "w", "rw"].contains(access) {
                add(subject, domain: name, .deviceSetting, "access \"\(access)\" is not ro or rw")
            }
            if let type = settings["backendtype"], !["phy", "qdisk", "standalone"].contains(type) {
                add(subject, domain: name, .deviceSetting, "backendtype \"\(type)\" is not phy, qdisk or standalone")
            }
            if let format = settings["format"], !["raw", "qcow", "qcow2", "vhd", "qed"].contains(format) {
                add(subject, domain: name, .deviceSetting, "format \"\(format)\" is not raw, qcow, qcow2, vhd or qed")
            }
            if let devtype = settings["devtype"], !["disk", "cdrom"].contains(devtype) {
                add(subject, domain: name, .deviceSetting, "devtype \"\(devtype)\" is not disk or cdrom")
            }
        case .p9:
            for key in ["tag", "path"] where (settings[key] ?? "").isEmpty {
                add(subject, domain: name, .deviceSetting, "a 9pfs share needs \(key)")
            }
            if let model = settings["security_model"], !["none", "mapped", "passthrough"].contains(model) {
                add(subject, domain: name, .deviceSetting, "security_model \"\(model)\" is not none, mapped or passthrough")
            }
        case .vtpm:
            if let uuid = settings["uuid"], !isValidUUID(uuid) {
                add(subject, domain: name, .deviceSetting, "uuid \"\(uuid)\" is not of the form 8-4-4-4-12 hex digits")
            }
        case .console, .vkbd:
            break
        }

        // The backend: known, not the domain itself, and able to serve.
        if device.backend == domain.name {
            add(subject, domain: name, .unknownBackend, "a domain cannot be its own backend")
            return
        }
        if domain.enhanced == .disabled || domain.enhanced == .noXenstore {
            add(
                subject, domain: name, .backendCapability,
                "PV devices need Xenstore, but the domain has xen,enhanced \"\(domain.enhanced?.rawValue ?? "")\"")
        }
        guard device.backend != dom0Name else {
            if spec.staticMode && device.kind != .console {
                add(subject, domain: name, .backendCapability, "static mode has no dom0 to run this backend; name a driver domain")
            }
            return
        }
        guard let backend = domainNamed(device.backend) else {
            add(subject, domain: name, .unknownBackend, "backend domain \"\(device.backend)\" is not described (nor is it \(dom0Name))")
            return
        }
        if backend.enhanced == .disabled || backend.enhanced == .noXenstore {
            add(
                subject, domain: name, .backendCapability,
                "backend domain \"\(backend.name)\" has xen,enhanced \"\(backend.enhanced?.rawValue ?? "")\" and cannot reach Xenstore")
        }
        if !backend.startOnBoot {
            add(subject, domain: name, .backendCapability, "backend domain \"\(backend.name)\" does not start on boot")
        }
        // vif and vbd backends in a domain other than dom0 are set up by `xl devd` there
        // (hotplug scripts, QEMU for qdisk), which keeps its state in the directories libxl
        // makes only for driver domains.
        if device.kind == .vif || device.kind == .vbd, !backend.driverDomain {
            add(
                subject, domain: name, .backendCapability,
                "backend domain \"\(backend.name)\" is not a driver domain: set domb,driver-domain (xl.cfg driver_domain=1) so that xl devd in it can keep its state under /local/domain/<id>/libxl")
        }
        if device.kind == .console && !backend.capabilities.contains(.console) {
            add(subject, domain: name, .backendCapability, "console backend domain \"\(backend.name)\" lacks the console capability")
        }
        if device.kind == .vbd && device.settings["backendtype"] == "qdisk" && backend.type == .hvm {
            add(subject, domain: name, .backendCapability, "qdisk backend domain \"\(backend.name)\" is HVM; qemu backends run in PV or PVH domains")
        }
    }

    /// Backend dependencies must form a DAG: a domain's backends start before it.
    mutating func checkBackendCycles() {
        var edges: [String: [String]] = [:]
        let names = Set(spec.domains.map(\.name))
        for domain in spec.domains {
            let targets = domain.devices.map(\.backend).filter { names.contains($0) && $0 != domain.name }
            var unique: [String] = []
            for target in targets where !unique.contains(target) { unique.append(target) }
            edges[domain.name] = unique
        }
        // Iterative DFS; report each cycle once, starting from its first domain in order.
        var state: [String: Int] = [:]  // 0 new, 1 on stack, 2 done
        var reported: Set<Set<String>> = []
        for start in spec.domains.map(\.name) where state[start, default: 0] == 0 {
            var stack: [(String, Int)] = [(start, 0)]
            var path: [String] = [start]
            state[start] = 1
            while let (node, next) = stack.last {
                let targets = edges[node] ?? []
                if next < targets.count {
                    stack[stack.count - 1].1 = next + 1
                    let target = targets[next]
                    switch state[target, default: 0] {
                    case 0:
                        state[target] = 1
                        stack.append((target, 0))
                        path.append(target)
                    case 1:
                        if let at = path.firstIndex(of: target) {
                            let cycle = Array(path[at...])
                            if reported.insert(Set(cycle)).inserted {
                                add(
                                    "domain \"\(target)\"", domain: target, .backendCycle,
                                    "backend dependencies form a cycle: \((cycle + [target]).map { "\"\($0)\"" }.joined(separator: " → "))")
                            }
                        }
                    default:
                        break
                    }
                } else {
                    state[node] = 2
                    stack.removeLast()
                    path.removeLast()
                }
            }
        }
    }

    // MARK: - Static event channels and shared memory

    mutating func checkEventChannels() {
        var used: [String: Int] = [:]
        for (index, channel) in spec.eventChannels.enumerated() {
            let subject = "evtchn \(index) (\(channel.local.domain):\(channel.local.port) ↔ \(channel.remote.domain):\(channel.remote.port))"
            for endpoint in [channel.local, channel.remote] {
                guard let domain = domainNamed(endpoint.domain) else {
                    add(subject, .eventChannel, "endpoint domain \"\(endpoint.domain)\" is not described")
                    continue
                }
                if endpoint.port == 0 || endpoint.port > LaunchLimits.maxEventChannelPort {
                    add(subject, domain: domain.name, .eventChannel, "port \(endpoint.port) is outside 1 to \(LaunchLimits.maxEventChannelPort)")
                }
                let key = "\(endpoint.domain):\(endpoint.port)"
                used[key, default: 0] += 1
                if used[key] == 2 {
                    add(subject, domain: domain.name, .eventChannel, "port \(endpoint.port) of \"\(endpoint.domain)\" is bound twice")
                }
            }
            if channel.local == channel.remote {
                add(subject, .eventChannel, "both ends are the same port; endpoints must pair two distinct ports")
            }
        }
    }

    mutating func checkSharedMemory() {
        var byID: [String: [SharedMemorySpec]] = [:]
        for region in spec.sharedMemory {
            let subject = "shared memory \"\(region.id)\" in \"\(region.domain)\""
            byID[region.id, default: []].append(region)
            if region.id.isEmpty || region.id.utf8.count > LaunchLimits.maxSharedMemoryIDLength {
                add(subject, .sharedMemory, "xen,shm-id must be 1 to \(LaunchLimits.maxSharedMemoryIDLength) bytes")
            }
            if domainNamed(region.domain) == nil {
                add(subject, .sharedMemory, "domain \"\(region.domain)\" is not described")
            }
            let page = LaunchLimits.pageSize
            if region.size == 0 || region.size % page != 0 {
                add(subject, domain: region.domain, .sharedMemory, "size 0x\(String(region.size, radix: 16)) is not a non-zero multiple of 4 KiB")
            }
            if region.guestAddress % page != 0 || (region.hostAddress ?? 0) % page != 0 {
                add(subject, domain: region.domain, .sharedMemory, "addresses must be 4 KiB aligned")
            }
            if region.guestAddress.addingReportingOverflow(region.size).overflow
                || (region.hostAddress ?? 0).addingReportingOverflow(region.size).overflow
            {
                add(subject, domain: region.domain, .sharedMemory, "address + size overflows 64 bits")
            }
        }
        for (id, regions) in byID.sorted(by: { $0.key < $1.key }) {
            let subject = "shared memory \"\(id)\""
            if regions.filter({ $0.role == .owner }).count > 1 {
                add(subject, .sharedMemory, "has more than one owner")
            }
            if Set(regions.map(\.size)).count > 1 || Set(regions.compactMap(\.hostAddress)).count > 1 {
                add(subject, .sharedMemory, "its domains disagree on the host address or size")
            }
            var domains: Set<String> = []
            for region in regions where !domains.insert(region.domain).inserted {
                add(subject, domain: region.domain, .sharedMemory, "is mapped twice into \"\(region.domain)\"")
            }
        }
        // Guest ranges of one domain must not overlap.
        for domain in spec.domains {
            let ranges = spec.sharedMemory.filter { $0.domain == domain.name }.sorted { $0.guestAddress < $1.guestAddress }
            for (a, b) in zip(ranges, ranges.dropFirst()) {
                let (end, overflow) = a.guestAddress.addingReportingOverflow(a.size)
                if !overflow && end > b.guestAddress {
                    add(
                        "domain \"\(domain.name)\"", domain: domain.name, .sharedMemory,
                        "shared memory \"\(a.id)\" and \"\(b.id)\" overlap in guest memory")
                }
            }
        }
    }
}

/// The Xen virtual block device number of a disk name (xen-vbd-interface(7)):
/// `xvdX[N]` → 202<<8 | disk<<4 | part (or the extended 1<<28 form beyond 16 disks),
/// `hdX[N]` → IDE majors, `sdX[N]` → 8<<8 | disk<<4 | part. Nil if not a disk name.
public func virtualDiskNumber(_ vdev: String) -> UInt32? {
    let prefixes: [(String, Int)] = [("xvd", 0), ("hd", 1), ("sd", 2)]
    guard let (prefix, family) = prefixes.first(where: { vdev.hasPrefix($0.0) }) else { return nil }
    let rest = vdev.dropFirst(prefix.count)
    let letters = rest.prefix { $0 >= "a" && $0 <= "z" }
    let digits = rest.dropFirst(letters.count)
    guard !letters.isEmpty, letters.count <= 3, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
        return nil
    }
    // Bijective base-26: a=0 ... z=25, aa=26 ...
    var disk = 0
    for letter in letters.unicodeScalars {
        disk = disk * 26 + Int(letter.value - UnicodeScalar("a").value) + 1
    }
    disk -= 1
    var partition = 0
    if !digits.isEmpty {
        guard digits.count <= 3, let value = Int(digits) else { return nil }
        partition = value
    }
    switch family {
    case 0:
        if disk < 16 && partition < 16 { return UInt32(202 << 8 | disk << 4 | partition) }
        guard disk < (1 << 20), partition < 256 else { return nil }
        return UInt32(1 << 28 | disk << 8 | partition)
    case 1:
        let majors = [3, 22, 33, 34, 56, 57, 88, 89, 90, 91]
        guard disk < 2 * majors.count, partition < 64 else { return nil }
        return UInt32(majors[disk / 2] << 8 | (disk % 2) << 6 | partition)
    default:
        guard disk < 16, partition < 16 else { return nil }
        return UInt32(8 << 8 | disk << 4 | partition)
    }
}

extension DeviceSpec {
    /// The settings each device kind takes (xl.cfg names). Anything else is refused.
    public static let knownSettings: [Kind: Set<String>] = [
        .console: ["type"],
        .vif: ["mac", "bridge", "script", "ip", "mtu", "rate", "vifname", "type", "model", "gatewaydev", "trusted"],
        .vbd: ["target", "vdev", "access", "backendtype", "format", "devtype", "script", "discard", "direct-io-safe"],
        .vkbd: ["backend-type", "unique-id"],
        .p9: ["tag", "path", "security_model"],
        .vtpm: ["uuid"],
        .virtioDisk: ["target", "vdev", "access", "backendtype", "format", "transport"],
        .virtioNet: ["mac", "bridge", "script", "ip", "mtu", "transport"],
    ]

    /// The same device with xl's defaults made explicit, so that every front end yields
    /// the same model: disks get `format` raw and `access` rw (ro for a cdrom).
    public func normalized() -> DeviceSpec {
        var copy = self
        if kind == .vbd || kind == .virtioDisk {
            if copy.settings["format"] == nil { copy.settings["format"] = "raw" }
            switch copy.settings["access"] {
            case nil: copy.settings["access"] = copy.settings["devtype"] == "cdrom" ? "ro" : "rw"
            case "r": copy.settings["access"] = "ro"
            case "w": copy.settings["access"] = "rw"
            default: break
            }
        }
        return copy
    }
}
