//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

extension LaunchSpec {
    /// Checks every rule of the model (and, with `images`, every module file) and returns
    /// every problem found; empty when the description is valid.
    ///
    /// - Parameter images: checks each module against its domain's mode (PVH needs
    ///   `PHYS32_ENTRY`…); nil skips the files.
    public func validate(images: (any ImageCapabilityChecking)? = nil) -> [LaunchProblem] {
        var validator = LaunchValidator(spec: self)
        validator.run()
        if let images {
            for domain in domains {
                for module in domain.modules { validator.problems += images.problems(domain: domain, module: module) }
            }
        }
        return validator.problems
    }

    /// The gate every later stage goes through: the description with its rules checked
    /// (and its images, when `images` is given), backends and devids resolved and the start
    /// order computed.
    /// - Throws: ``LaunchValidationError`` listing every problem.
    public func validated(images: (any ImageCapabilityChecking)? = nil) throws(LaunchValidationError) -> ValidatedLaunch {
        let problems = validate(images: images)
        guard problems.isEmpty, let order = DependencyGraph(self).order else {
            throw LaunchValidationError(problems: problems)
        }
        return ValidatedLaunch(spec: self, startOrder: order, imagesChecked: images != nil)
    }
}

struct LaunchValidator {
    let spec: LaunchSpec
    var problems: [LaunchProblem] = []
    var domainsByName: [String: DomainSpec] = [:]

    init(spec: LaunchSpec) { self.spec = spec }

    mutating func add(_ subject: String, domain: String? = nil, _ rule: LaunchProblem.Rule, _ message: String) {
        problems.append(LaunchProblem(subject, domain: domain, rule, message))
    }

    mutating func run() {
        domainsByName = Dictionary(spec.domains.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        if spec.domains.isEmpty {
            add("launch description", .noDomains, "describes no domain; at least one is needed")
        }
        checkCounts()
        checkNamesAndIDs()
        for domain in spec.domains { checkDomain(domain) }
        checkRoles()
        checkCPUPools()
        checkDevices()
        checkDependencyCycles()
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
            (spec.domains.reduce(0) { $0 + $1.devices.count }, LaunchLimits.maxDevices, "devices in all domains together"),
            (spec.domains.reduce(0) { $0 + $1.modules.count }, LaunchLimits.maxModules, "modules in all domains together"),
        ]
        for (count, cap, what) in caps where count > cap {
            add("launch description", .tooMany, "has \(count) \(what); at most \(cap) are allowed")
        }
        // Each domain at its maximum, as the Xenstore planner writes them (UInt64: no overflow).
        let vcpus = spec.domains.reduce(UInt64(0)) { $0 + UInt64(max($1.vcpus, $1.maxVcpus ?? 0)) }
        if vcpus > LaunchLimits.maxVcpusPerLaunch {
            add(
                "launch description", .tooMany,
                "has \(vcpus) vCPUs in all domains together (each at its maximum); at most \(LaunchLimits.maxVcpusPerLaunch)")
        }
        let text = spec.textBytes
        if text > LaunchLimits.maxDescriptionTextBytes {
            add(
                "launch description", .tooMany,
                "holds \(text) bytes of text (names, paths, command lines, settings); at most \(LaunchLimits.maxDescriptionTextBytes)")
        }
    }

    // MARK: - Names, domids, UUIDs

    mutating func checkNamesAndIDs() {
        var names: [String: Int] = [:]
        var domids: [UInt32: String] = [:]
        var uuids: [String: String] = [:]
        for domain in spec.domains {
            let subject = "domain \"\(domain.name)\""
            if !LaunchLimits.isValidName(domain.name) {
                add(subject, domain: domain.name, .invalidName, "name must be \(LaunchLimits.nameRule)")
            }
            if domain.name == BackendDomain.dom0Name {
                add(subject, domain: domain.name, .invalidName, "\"\(BackendDomain.dom0Name)\" is dom0 and cannot be described")
            }
            names[domain.name, default: 0] += 1
            if names[domain.name] == 2 {
                add(subject, domain: domain.name, .duplicateName, "more than one domain has this name")
            }
            if let domid = domain.domid {
                if domid == 0 {
                    add(subject, domain: domain.name, .reservedDomid, "domid 0 is dom0; leave domid out for the next free one")
                } else if domid > LaunchLimits.maxGuestDomid {
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
                if let canonical = XenstoreUUID.canonical(uuid) {
                    if let other = uuids[canonical] {
                        add(subject, domain: domain.name, .duplicateUUID, "uuid \(uuid) is also used by domain \"\(other)\"")
                    } else {
                        uuids[canonical] = domain.name
                    }
                } else {
                    add(subject, domain: domain.name, .invalidUUID, "uuid \"\(uuid)\" is not of the form 8-4-4-4-12 hex digits")
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
                let cap = domain.type == .pv ? LaunchLimits.maxPVBootargsLength : LaunchLimits.maxBootargsLength
                if module.kind != .kernel {
                    add(moduleSubject, domain: name, .modeModuleMismatch, "bootargs belong on the kernel module")
                } else if bootargs.utf8.count > cap || bootargs.utf8.contains(0) {
                    add(
                        moduleSubject, domain: name, .modeModuleMismatch,
                        "bootargs are longer than \(cap) bytes (\(domain.type == .pv ? "Xen's MAX_GUEST_CMDLINE" : "Linux's COMMAND_LINE_SIZE")) or hold a NUL")
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
        if domain.type == .hvm {
            // libxl takes the video RAM (and 1 MiB of slack when ballooning) from the target.
            let reserved = XenstorePlanner.hvmVideoKiB + ((domain.maxMemoryKiB ?? domain.memoryKiB) > domain.memoryKiB ? 1024 : 0)
            if domain.memoryKiB <= reserved {
                add(subject, domain: name, .memory, "memory \(domain.memoryKiB) KiB leaves nothing after the \(reserved) KiB libxl reserves for an HVM guest's video RAM")
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
        let maxVcpus = max(domain.vcpus, domain.maxVcpus ?? 0)
        let pool = domain.cpupool.flatMap { poolName in spec.cpupools.first { $0.name == poolName } }
        for (what, affinity) in [("CPU affinity", domain.cpuAffinity), ("soft CPU affinity", domain.softCPUAffinity)] {
            guard let affinity else { continue }
            if case .perVCPU(let sets) = affinity, sets.count > Int(maxVcpus) {
                add(subject, domain: name, .cpuAffinity, "\(what) lists \(sets.count) vCPUs; the domain has at most \(maxVcpus)")
            }
            for set in affinity.sets {
                let cpus: [UInt32]
                switch set {
                case .cpus(let listed):
                    if listed.isEmpty {
                        add(subject, domain: name, .cpuAffinity, "\(what) is an empty set: the vCPU could never run")
                    }
                    cpus = listed
                case .allBut(let excluded): cpus = excluded
                // The parser bounds every CPU and node; which CPUs the nodes hold is the host's.
                case .withNodes(_, let terms): cpus = terms.filter { !$0.isNodes }.map(\.last)
                }
                if let bad = cpus.first(where: { $0 > LaunchLimits.maxCPU }) {
                    add(subject, domain: name, .cpuAffinity, "\(what) names CPU \(bad), above \(LaunchLimits.maxCPU)")
                }
                if let pool, case .cpus(let listed) = set {
                    let outside = listed.filter { !pool.cpus.contains($0) }
                    if !outside.isEmpty {
                        add(
                            subject, domain: name, .cpuAffinity,
                            "\(what) \(outside.map(String.init).joined(separator: ",")) lies outside cpupool \"\(pool.name)\"")
                    }
                }
            }
        }
        if let pool = domain.cpupool {
            if pool == CPUPoolSpec.pool0Name {
                add(subject, domain: name, .unknownCPUPool, "\(pool) is the default cpupool; leave cpupool out to run in it")
            } else if !spec.cpupools.contains(where: { $0.name == pool }) {
                add(subject, domain: name, .unknownCPUPool, "cpupool \"\(pool)\" is not defined")
            }
        }
        if let label = domain.securityID, label.isEmpty || label.utf8.count > LaunchLimits.maxSettingLength || label.utf8.contains(0) {
            add(subject, domain: name, .invalidName, "security-id is empty, longer than \(LaunchLimits.maxSettingLength) bytes or holds a NUL")
        }
        let secrets = domain.secrets ?? []
        if secrets.count > LaunchLimits.maxSecretsPerDomain {
            add(subject, domain: name, .tooMany, "has \(secrets.count) secrets; at most \(LaunchLimits.maxSecretsPerDomain)")
        }
        if secrets.isEmpty && domain.secrets != nil {
            add(subject, domain: name, .secret, "domb,secrets is empty (leave it out)")
        }
        var secretNames = Set<String>()
        for secret in secrets {
            // The bundle serves a fleet and is built elsewhere: only a host path means the
            // same file on every host; sealed files are never bundle members.
            if !secret.sealedPath.hasPrefix("/") || secret.sealedPath.utf8.count > LaunchLimits.maxPathLength
                || secret.sealedPath.utf8.contains(0)
            {
                add(
                    subject, domain: name, .secret,
                    "domb,secrets: the sealed file \"\(secret.sealedPath)\" must be an absolute path on the host of at most \(LaunchLimits.maxPathLength) bytes")
            }
            if !secretNames.insert(secret.name).inserted {
                add(subject, domain: name, .secret, "domb,secrets: two secrets named \"\(secret.name)\"")
            }
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
            if !LaunchLimits.isValidName(pool.name) || pool.name == CPUPoolSpec.pool0Name || pool.name == "hypervisor" {
                add(subject, .invalidName, "name must be \(LaunchLimits.nameRule), and not Pool-0 or hypervisor")
            }
            if !names.insert(pool.name).inserted {
                add(subject, .duplicateName, "more than one cpupool has this name")
            }
            if pool.cpus.isEmpty {
                add(subject, .cpupool, "has no CPUs")
            }
            if let scheduler = pool.scheduler, !CPUPoolSpec.knownSchedulers.contains(scheduler) {
                add(subject, .cpupool, "unknown scheduler \"\(scheduler)\" (known: \(CPUPoolSpec.knownSchedulers.sorted().joined(separator: ", ")))")
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

    // MARK: - Static event channels and shared memory

    mutating func checkEventChannels() {
        var used: [String: Int] = [:]
        for (index, channel) in spec.eventChannels.enumerated() {
            let subject = "evtchn \(index) (\(channel.local.domain):\(channel.local.port) ↔ \(channel.remote.domain):\(channel.remote.port))"
            for endpoint in [channel.local, channel.remote] {
                guard let domain = domainsByName[endpoint.domain] else {
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
            if region.id.isEmpty || region.id.utf8.count > LaunchLimits.maxSharedMemoryIDLength || region.id.utf8.contains(0) {
                add(subject, .sharedMemory, "xen,shm-id must be 1 to \(LaunchLimits.maxSharedMemoryIDLength) bytes")
            }
            if domainsByName[region.domain] == nil {
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

extension LaunchSpec {
    /// The bytes of every string of the description (``LaunchLimits/maxDescriptionTextBytes``).
    public var textBytes: Int {
        var total = 0
        for domain in domains {
            total += domain.name.utf8.count + (domain.uuid?.utf8.count ?? 0) + (domain.securityID?.utf8.count ?? 0)
                + (domain.cpupool?.utf8.count ?? 0)
            for module in domain.modules { total += module.path.utf8.count + (module.bootargs?.utf8.count ?? 0) }
            for secret in domain.secrets ?? [] { total += secret.text.utf8.count }
            for device in domain.devices {
                total += device.backend.name.utf8.count
                for (name, value) in device.settings.namedSettings { total += name.utf8.count + value.utf8.count }
            }
        }
        for pool in cpupools { total += pool.name.utf8.count + (pool.scheduler?.utf8.count ?? 0) }
        for channel in eventChannels { total += channel.local.domain.utf8.count + channel.remote.domain.utf8.count }
        for region in sharedMemory { total += region.id.utf8.count + region.domain.utf8.count }
        return total
    }
}
