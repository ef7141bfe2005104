//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CXenlight
import DombCore
import DombModel

#if canImport(Glibc)
import Glibc
#endif

/// The `libxl_domain_config` domb hands libxl for one domain, built from the launch model
/// the way xl builds it from xl.cfg (tools/xl/xl_parse.c, Xen 4.17), so that `xl -N
/// create` of an xl.cfg file and ``json`` of its import can be compared field by field.
///
/// The libxl backend creates domains from it without the PV devices (domb's signed
/// Xenstore plan writes those); with `includeDevices` it also carries them as the libxl
/// device structures xl would fill (`disks`, `nics`, `vtpms`, `p9s`, `vkbs`).
public final class LibxlDomainConfig {
    private var config = libxl_domain_config()

    /// - Parameters:
    ///   - hostCPUs: the host's CPU count (`libxl_get_max_cpus`), the size of CPU bitmaps
    ///     as xl allocates them; nil sizes them to the CPUs named (off Xen).
    ///   - nodes: the host's NUMA nodes (`libxl_node_to_cpumap` on Xen, ``Libxl/numaNodes()``),
    ///     for CPULIST terms that name nodes (`nodes:0`); nil refuses such terms.
    /// - Throws: `LibxlError` for a value libxl refuses (a uuid it cannot parse).
    public init(_ request: LibxlDomainRequest, hostCPUs: Int?, nodes: NUMANodeMap? = nil) throws(LibxlError) {
        libxl_domain_config_init(&config)
        do {
            try fill(request, hostCPUs: hostCPUs, nodes: nodes)
        } catch {
            libxl_domain_config_dispose(&config)
            throw error
        }
    }

    /// The configuration of a described domain with its devices, its images named by the
    /// paths the description gives (what `xl -N` shows for an xl.cfg file).
    public convenience init(describing domain: DomainSpec, hostCPUs: Int?, nodes: NUMANodeMap? = nil) throws(LibxlError) {
        var paths: [ModuleKind: String] = [:]
        for module in domain.modules { paths[module.kind] = module.path }
        try self.init(LibxlDomainRequest(domain: domain, paths: paths, includeDevices: true), hostCPUs: hostCPUs, nodes: nodes)
    }

    deinit { libxl_domain_config_dispose(&config) }

    /// libxl's own JSON of the configuration: `libxl_domain_config_to_json`, what `xl -N`
    /// prints. The generator needs no context (libxl uses it only to log a yajl failure,
    /// which cannot happen for a well-formed structure), so this works off Xen.
    public func json() throws(LibxlError) -> String {
        guard let text = libxl_domain_config_to_json(nil, &config) else {
            throw LibxlError(code: 0, operation: "libxl_domain_config_to_json", message: "libxl produced no JSON")
        }
        defer { free(text) }
        return String(cString: text)
    }

    /// Runs `body` with the C structure (for `libxl_domain_create_new`).
    func withUnsafeMutableConfig<T>(_ body: (UnsafeMutablePointer<libxl_domain_config>) -> T) -> T {
        body(&config)
    }

    // MARK: Building

    private func fill(_ request: LibxlDomainRequest, hostCPUs: Int?, nodes: NUMANodeMap?) throws(LibxlError) {
        let type: libxl_domain_type =
            switch request.type {
            case .pv: LIBXL_DOMAIN_TYPE_PV
            case .pvh: LIBXL_DOMAIN_TYPE_PVH
            case .hvm: LIBXL_DOMAIN_TYPE_HVM
            }
        config.c_info.type = type
        config.c_info.name = strdup(request.name)
        if let uuid = request.uuid {
            guard libxl_uuid_from_string(&config.c_info.uuid, uuid) == 0 else {
                throw LibxlError(code: 0, operation: "configure \(request.name)", message: "invalid uuid \"\(uuid)\"")
            }
        } else {
            // libxl takes c_info.uuid as given; xl generates one (xl_parse.c). Left zero,
            // every domain would get /vm/00000000-…, as seen on Xen 4.17.
            libxl_uuid_generate(&config.c_info.uuid)
        }
        if let domid = request.domid { config.c_info.domid = domid }
        // libxl resolves the name to a pool id (libxl_create.c), as for xl's `pool`.
        config.c_info.pool_name = request.cpupool.map { strdup($0) } ?? nil
        config.c_info.ssid_label = request.securityLabel.map { strdup($0) } ?? nil
        // Both are xl's values (xl.conf defaults run_hotplug_scripts=1, claim_mode=1): the
        // hotplug scripts are libxl's default too; claiming the memory up front makes a
        // build that cannot get it fail before anything runs.
        libxl_defbool_set(&config.c_info.run_hotplug_scripts, true)

        libxl_domain_build_info_init_type(&config.b_info, type)
        libxl_defbool_set(&config.b_info.claim_mode, true)
        config.b_info.max_vcpus = Int32(clamping: request.maxVcpus)
        // xl: libxl_cpu_bitmap_alloc(ctx, &avail_vcpus, vcpus), bits 0 … vcpus-1.
        try Self.allocate(&config.b_info.avail_vcpus, bits: Int(request.vcpus))
        for vcpu in 0..<Int32(clamping: request.vcpus) { libxl_bitmap_set(&config.b_info.avail_vcpus, vcpu) }
        // xl's parse_vcpu_affinity: a CPULIST string gives every vCPU the same host-sized map,
        // a list one map per vCPU; a list, or any soft affinity, turns NUMA placement off.
        if let affinity = request.cpuAffinity {
            let (maps, count) = try Self.affinity(affinity, maxVcpus: Int(request.maxVcpus), hostCPUs: hostCPUs, nodes: nodes)
            config.b_info.vcpu_hard_affinity = maps
            config.b_info.num_vcpu_hard_affinity = count
            if case .perVCPU = affinity { libxl_defbool_set(&config.b_info.numa_placement, false) }
        }
        if let affinity = request.softCPUAffinity {
            let (maps, count) = try Self.affinity(affinity, maxVcpus: Int(request.maxVcpus), hostCPUs: hostCPUs, nodes: nodes)
            config.b_info.vcpu_soft_affinity = maps
            config.b_info.num_vcpu_soft_affinity = count
            libxl_defbool_set(&config.b_info.numa_placement, false)
        }
        if request.isDriverDomain { libxl_defbool_set(&config.c_info.driver_domain, true) }
        config.b_info.max_memkb = request.maxMemoryKiB
        config.b_info.target_memkb = request.targetMemoryKiB
        config.b_info.device_tree = request.deviceTreePath.map { strdup($0) } ?? nil
        switch request.type {
        case .pv, .pvh:
            config.b_info.kernel = request.kernelPath.map { strdup($0) } ?? nil
            config.b_info.ramdisk = request.ramdiskPath.map { strdup($0) } ?? nil
            config.b_info.cmdline = request.commandLine.map { strdup($0) } ?? nil
        case .hvm:
            // xl.cfg `firmware_override`: the hvmloader image libxl loads.
            config.b_info.u.hvm.firmware = request.kernelPath.map { strdup($0) } ?? nil
        }
        config.on_poweroff = Self.action(request.onPoweroff)
        config.on_reboot = Self.action(request.onReboot)
        config.on_crash = Self.action(request.onCrash)
        // xl always sets these two to libxl's defaults; the launch model has no other value.
        config.on_watchdog = LIBXL_ACTION_ON_SHUTDOWN_DESTROY
        config.on_soft_reset = LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET
        if request.includeDevices { try LibxlDevices.fill(&config, request.devices, domain: request.name) }
    }

    /// The per-vCPU bitmaps of `affinity`, each sized to the host (xl allocates them with
    /// `libxl_cpu_bitmap_alloc(ctx, map, 0)`): every vCPU's for one set, the listed vCPUs'
    /// for a list. Without the host's CPU count, a set that names CPUs is sized to fit them
    /// (and the CPUs of the nodes it names); `all` needs the count, node terms the node map.
    static func affinity(
        _ affinity: VCPUAffinity, maxVcpus: Int, hostCPUs: Int?, nodes: NUMANodeMap?
    ) throws(LibxlError) -> (UnsafeMutablePointer<libxl_bitmap>, Int32) {
        let sets: [CPUSet]
        switch affinity {
        case .allVCPUs(let set): sets = Array(repeating: set, count: maxVcpus)
        case .perVCPU(let list): sets = Array(list.prefix(maxVcpus))
        }
        var resolved: [[UInt32]] = []
        var sizes: [Int] = []
        for set in sets {
            let size: Int
            switch (hostCPUs, set) {
            case (let cpus?, _): size = cpus
            case (nil, .allBut), (nil, .withNodes(fromAll: true, _)):
                throw LibxlError(
                    code: 0, operation: "CPU affinity \(set.cpuList)",
                    message: "\"all\" is every CPU of the host: give the host's CPU count (--host-cpus), or run on Xen")
            case (nil, _):
                let nodeCPUs = set.namesNodes ? nodes?.nodes.values.joined().max() : nil
                size = Int(max(set.highestNamedCPU ?? 0, nodeCPUs ?? 0)) + 1
            }
            // xl's `all` (libxl_bitmap_set_any) sets every bit of the map's whole bytes.
            let bits = UInt32(clamping: (size + 7) / 8 * 8)
            do {
                resolved.append(try set.resolved(hostCPUs: bits, nodes: nodes))
            } catch {
                let hint = nodes == nil ? ": give the host's NUMA nodes (--host-numa NODE=CPULIST), or run on Xen" : ""
                throw LibxlError(code: 0, operation: "CPU affinity \(set.cpuList)", message: error.reason + hint)
            }
            sizes.append(size)
        }
        // libxl_domain_config_dispose frees the array with free(): calloc it.
        guard let array = calloc(max(sets.count, 1), MemoryLayout<libxl_bitmap>.stride)?.assumingMemoryBound(to: libxl_bitmap.self)
        else { throw LibxlError(code: 0, operation: "libxl bitmap", message: "out of memory") }
        for index in sets.indices { libxl_bitmap_init(&array[index]) }
        do {
            for index in sets.indices {
                try allocate(&array[index], bits: sizes[index])
                for cpu in resolved[index] { libxl_bitmap_set(&array[index], Int32(clamping: cpu)) }
            }
        } catch {
            for index in sets.indices { libxl_bitmap_dispose(&array[index]) }
            free(array)
            throw error
        }
        return (array, Int32(sets.count))
    }

    /// `libxl_bitmap_alloc`'s result without a context (libxl's own needs one): (bits + 7) / 8
    /// zeroed bytes, calloc'ed for libxl's dispose to free.
    static func allocate(_ bitmap: inout libxl_bitmap, bits: Int) throws(LibxlError) {
        let bytes = (max(bits, 0) + 7) / 8
        guard let map = calloc(max(bytes, 1), 1) else {
            throw LibxlError(code: 0, operation: "libxl bitmap", message: "out of memory")
        }
        bitmap.map = map.assumingMemoryBound(to: UInt8.self)
        bitmap.size = UInt32(bytes)
    }

    static func action(_ action: LifecycleAction) -> libxl_action_on_shutdown {
        switch action {
        case .destroy: LIBXL_ACTION_ON_SHUTDOWN_DESTROY
        case .restart: LIBXL_ACTION_ON_SHUTDOWN_RESTART
        case .preserve: LIBXL_ACTION_ON_SHUTDOWN_PRESERVE
        case .renameRestart: LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME
        case .coredumpDestroy: LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY
        case .coredumpRestart: LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART
        case .softReset: LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET
        }
    }
}
