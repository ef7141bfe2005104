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

/// A failure reported by libxenlight, or the absence of Xen.
public struct LibxlError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The libxl return code (`ERROR_*`, negative), or 0 for domb's own checks.
    public var code: Int32
    public var operation: String
    public var message: String

    public init(code: Int32, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    public var description: String {
        code == 0 ? "\(operation): \(message)" : "\(operation) failed with libxl error \(code): \(message)"
    }
}

/// What domb asks libxl to build: one domain, with its images already verified and
/// measured and handed over as paths that refer to exactly those bytes.
public struct LibxlDomainRequest: Sendable {
    public var name: String
    public var uuid: String?
    public var domid: UInt32?
    public var type: GuestType
    public var vcpus: UInt32
    public var maxVcpus: UInt32
    public var cpuAffinity: VCPUAffinity?
    public var softCPUAffinity: VCPUAffinity?
    public var isDriverDomain: Bool
    public var cpupool: String?
    public var securityLabel: String?
    public var targetMemoryKiB: UInt64
    public var maxMemoryKiB: UInt64
    /// The kernel (PV, PVH) or hvmloader (HVM) path.
    public var kernelPath: String?
    public var ramdiskPath: String?
    public var deviceTreePath: String?
    public var commandLine: String?
    public var onPoweroff: LifecycleAction
    public var onReboot: LifecycleAction
    public var onCrash: LifecycleAction
    /// The domain's PV devices (the console is libxl's own).
    public var devices: [DeviceSpec]
    /// Whether the configuration carries ``devices`` (see ``LibxlDomainConfig``).
    public var includeDevices: Bool

    /// The request for `domain`, with its images at `paths` (by module kind).
    public init(domain: DomainSpec, paths: [ModuleKind: String], includeDevices: Bool) {
        name = domain.name
        uuid = domain.uuid
        domid = domain.domid.flatMap { $0 == 0 ? nil : $0 }
        type = domain.type
        vcpus = domain.vcpus
        maxVcpus = max(domain.vcpus, domain.maxVcpus ?? 0)
        cpuAffinity = domain.cpuAffinity
        softCPUAffinity = domain.softCPUAffinity
        isDriverDomain = domain.isDriverDomain
        cpupool = domain.cpupool
        securityLabel = domain.securityID
        targetMemoryKiB = domain.memoryKiB
        maxMemoryKiB = max(domain.memoryKiB, domain.maxMemoryKiB ?? 0)
        kernelPath = domain.type == .hvm ? paths[.firmware] ?? paths[.kernel] : paths[.kernel]
        ramdiskPath = paths[.ramdisk]
        deviceTreePath = paths[.deviceTree]
        commandLine = domain.module(.kernel)?.bootargs
        onPoweroff = domain.onPoweroff ?? .destroy
        onReboot = domain.onReboot ?? .restart
        onCrash = domain.onCrash ?? .destroy
        devices = domain.devices
        self.includeDevices = includeDevices
    }
}

/// Why a domain shut down (`libxl_shutdown_reason`, from `SHUTDOWN_*` in sched.h).
public enum ShutdownReason: Hashable, Sendable, CustomStringConvertible {
    case poweroff
    case reboot
    case suspend
    case crash
    case watchdog
    case softReset
    case unknown(Int)

    public init(rawValue: Int) {
        switch rawValue {
        case 0: self = .poweroff
        case 1: self = .reboot
        case 2: self = .suspend
        case 3: self = .crash
        case 4: self = .watchdog
        case 5: self = .softReset
        default: self = .unknown(rawValue)
        }
    }

    public var description: String {
        switch self {
        case .poweroff: "poweroff"
        case .reboot: "reboot"
        case .suspend: "suspend"
        case .crash: "crash"
        case .watchdog: "watchdog"
        case .softReset: "soft-reset"
        case .unknown(let value): "reason \(value)"
        }
    }
}

/// A shutdown or death libxl reported for a watched domain.
public enum LibxlDomainEvent: Hashable, Sendable {
    /// The domain shut down (it still exists until destroyed).
    case shutdown(domid: UInt32, reason: ShutdownReason)
    /// The domain is gone (destroyed, by domb or by someone else such as `xl destroy`).
    case death(domid: UInt32)
}

/// An enabled death-event generator (`libxl_evgen_domain_death`).
public struct DeathWatch: @unchecked Sendable {
    public let domid: UInt32
    fileprivate let generator: OpaquePointer
}

/// A libxenlight context: builds domains paused, unpauses and destroys them.
///
/// Off Xen (no `/dev/xen/privcmd`) `libxl_ctx_alloc` fails; ``init()`` turns that into an
/// error that says so, and the caller falls back to the plan backend.
public final class Libxl: @unchecked Sendable {
    private var context: OpaquePointer?
    private var logger: OpaquePointer?

    /// The corresponding C function is `libxl_ctx_alloc`.
    public init() throws(LibxlError) {
        // libxl's own diagnostics (which hypercall failed and why) go to stderr.
        logger = xtl_createlogger_stdiostream(fdopen(2, "w"), XTL_ERROR, 0)
        var ctx: OpaquePointer?
        // The stdio logger starts with a `xentoollog_logger`, so it is one (xentoollog.h).
        let rc = logger.map { libxl_ctx_alloc(&ctx, CXenlight_version(), 0, UnsafeMutablePointer<xentoollog_logger>($0)) } ?? -1
        guard rc == 0, let ctx else {
            destroyLogger()
            let privcmd = access("/dev/xen/privcmd", F_OK) == 0
            throw LibxlError(
                code: rc, operation: "libxl_ctx_alloc",
                message: privcmd
                    ? "cannot open a libxl context (is domb running as root in the control domain?)"
                    : "/dev/xen/privcmd is missing: not running in a Xen control domain (use --backend plan off Xen)")
        }
        context = ctx
    }

    deinit {
        if let context { libxl_ctx_free(context) }
        destroyLogger()
    }

    private func destroyLogger() {
        if let logger { xtl_logger_destroy(UnsafeMutablePointer<xentoollog_logger>(logger)) }
        logger = nil
    }

    /// The host's CPU count when running in a Xen control domain (nil elsewhere, without
    /// trying libxl there, which would log its failure).
    public static func hostCPUsOnXen() -> Int? {
        guard access("/dev/xen/privcmd", F_OK) == 0 else { return nil }
        return (try? Libxl())?.hostCPUs
    }

    /// The host's CPU count as libxl sizes CPU bitmaps (`libxl_get_max_cpus`), or nil.
    public var hostCPUs: Int? {
        guard let context else { return nil }
        let count = libxl_get_max_cpus(context)
        return count > 0 ? Int(count) : nil
    }

    /// The host's NUMA nodes (0 ..< `libxl_get_max_nodes`) and the CPUs of each as
    /// `libxl_node_to_cpumap` gives them, what xl's `nodes:` CPULIST terms resolve through.
    /// - Throws: `LibxlError` when libxl cannot say.
    public func numaNodes() throws(LibxlError) -> NUMANodeMap {
        guard let context else { throw LibxlError(code: 0, operation: "NUMA nodes", message: "libxl context is closed") }
        let count = libxl_get_max_nodes(context)
        guard count > 0 else { throw LibxlError(code: count, operation: "libxl_get_max_nodes", message: "") }
        var nodes: [UInt32: [UInt32]] = [:]
        for node in 0..<count {
            var map = libxl_bitmap()
            libxl_bitmap_init(&map)
            defer { libxl_bitmap_dispose(&map) }
            var rc = libxl_cpu_bitmap_alloc(context, &map, 0)
            if rc == 0 { rc = libxl_node_to_cpumap(context, node, &map) }
            guard rc == 0 else { throw LibxlError(code: rc, operation: "libxl_node_to_cpumap(\(node))", message: "") }
            let bits = UInt32(map.size) * 8
            nodes[UInt32(node)] = (0..<bits).filter { libxl_bitmap_test(&map, Int32(clamping: $0)) != 0 }
        }
        return NUMANodeMap(nodes)
    }

    /// ``numaNodes()`` when running in a Xen control domain (nil elsewhere).
    public static func numaNodesOnXen() -> NUMANodeMap? {
        guard access("/dev/xen/privcmd", F_OK) == 0 else { return nil }
        return try? Libxl().numaNodes()
    }

    /// Builds `request` and leaves it paused; returns its domid. CPULIST terms that name
    /// NUMA nodes resolve through ``numaNodes()``.
    ///
    /// The corresponding C function is `libxl_domain_create_new` (synchronous: no ao_how).
    public func createPaused(_ request: LibxlDomainRequest) throws(LibxlError) -> UInt32 {
        guard let context else { throw LibxlError(code: 0, operation: "create", message: "libxl context is closed") }
        let namesNodes = [request.cpuAffinity, request.softCPUAffinity].contains { $0?.namesNodes == true }
        let config = try LibxlDomainConfig(request, hostCPUs: hostCPUs, nodes: namesNodes ? try numaNodes() : nil)
        var domid: UInt32 = 0
        let rc = config.withUnsafeMutableConfig { pointer in libxl_domain_create_new(context, pointer, &domid, nil, nil) }
        guard rc == 0 else {
            throw LibxlError(code: rc, operation: "libxl_domain_create_new(\(request.name))", message: "see libxl's messages above")
        }
        return domid
    }

    /// The corresponding C function is `libxl_domain_unpause`.
    public func unpause(domid: UInt32) throws(LibxlError) {
        guard let context else { throw LibxlError(code: 0, operation: "unpause", message: "libxl context is closed") }
        let rc = libxl_domain_unpause(context, domid, nil)
        guard rc == 0 else { throw LibxlError(code: rc, operation: "libxl_domain_unpause(\(domid))", message: "") }
    }

    /// The corresponding C function is `libxl_domain_destroy`.
    public func destroy(domid: UInt32) throws(LibxlError) {
        guard let context else { throw LibxlError(code: 0, operation: "destroy", message: "libxl context is closed") }
        let rc = libxl_domain_destroy(context, domid, nil)
        guard rc == 0 else { throw LibxlError(code: rc, operation: "libxl_domain_destroy(\(domid))", message: "") }
    }

    /// Asks libxl to report the shutdown and the death of `domid` (`libxl_evenable_domain_death`).
    public func watchDeath(domid: UInt32) throws(LibxlError) -> DeathWatch {
        guard let context else { throw LibxlError(code: 0, operation: "watch", message: "libxl context is closed") }
        var generator: OpaquePointer?
        let rc = libxl_evenable_domain_death(context, domid, libxl_ev_user(domid), &generator)
        guard rc == 0, let generator else {
            throw LibxlError(code: rc, operation: "libxl_evenable_domain_death(\(domid))", message: "")
        }
        return DeathWatch(domid: domid, generator: generator)
    }

    /// `libxl_evdisable_domain_death`.
    public func unwatch(_ watch: DeathWatch) {
        guard let context else { return }
        libxl_evdisable_domain_death(context, watch.generator)
    }

    /// Waits for the next shutdown or death of a watched domain (`libxl_event_wait`).
    public func nextDomainEvent() throws(LibxlError) -> LibxlDomainEvent {
        guard let context else { throw LibxlError(code: 0, operation: "wait", message: "libxl context is closed") }
        while true {
            var event: UnsafeMutablePointer<libxl_event>?
            let rc = libxl_event_wait(context, &event, UInt64.max, nil, nil)
            guard rc == 0, let event else { throw LibxlError(code: rc, operation: "libxl_event_wait", message: "") }
            defer { libxl_event_free(context, event) }
            let domid = event.pointee.domid
            switch event.pointee.type {
            case LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN:
                return .shutdown(domid: domid, reason: ShutdownReason(rawValue: Int(event.pointee.u.domain_shutdown.shutdown_reason)))
            case LIBXL_EVENT_TYPE_DOMAIN_DEATH:
                return .death(domid: domid)
            default:
                continue
            }
        }
    }

    /// Writes the domain's memory to `path` (`libxl_domain_core_dump`).
    public func coreDump(domid: UInt32, to path: String) throws(LibxlError) {
        guard let context else { throw LibxlError(code: 0, operation: "core dump", message: "libxl context is closed") }
        let rc = libxl_domain_core_dump(context, domid, path, nil)
        guard rc == 0 else { throw LibxlError(code: rc, operation: "libxl_domain_core_dump(\(domid), \(path))", message: "") }
    }

    /// `libxl_domain_rename`.
    public func rename(domid: UInt32, from old: String, to new: String) throws(LibxlError) {
        guard let context else { throw LibxlError(code: 0, operation: "rename", message: "libxl context is closed") }
        let rc = libxl_domain_rename(context, domid, old, new)
        guard rc == 0 else { throw LibxlError(code: rc, operation: "libxl_domain_rename(\(domid), \(new))", message: "") }
    }
}
