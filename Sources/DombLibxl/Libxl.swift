//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CXenlight
import DombCore

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
    public var cpuAffinity: [UInt32]?
    public var cpupool: String?
    public var targetMemoryKiB: UInt64
    public var maxMemoryKiB: UInt64
    /// The kernel (PV, PVH) or hvmloader (HVM) path.
    public var kernelPath: String?
    public var ramdiskPath: String?
    public var commandLine: String?
    public var onPoweroff: LifecycleAction
    public var onReboot: LifecycleAction
    public var onCrash: LifecycleAction

    public init(
        name: String, uuid: String?, domid: UInt32?, type: GuestType, vcpus: UInt32, maxVcpus: UInt32,
        cpuAffinity: [UInt32]?, cpupool: String?, targetMemoryKiB: UInt64, maxMemoryKiB: UInt64,
        kernelPath: String?, ramdiskPath: String?, commandLine: String?, onPoweroff: LifecycleAction,
        onReboot: LifecycleAction, onCrash: LifecycleAction
    ) {
        self.name = name
        self.uuid = uuid
        self.domid = domid
        self.type = type
        self.vcpus = vcpus
        self.maxVcpus = maxVcpus
        self.cpuAffinity = cpuAffinity
        self.cpupool = cpupool
        self.targetMemoryKiB = targetMemoryKiB
        self.maxMemoryKiB = maxMemoryKiB
        self.kernelPath = kernelPath
        self.ramdiskPath = ramdiskPath
        self.commandLine = commandLine
        self.onPoweroff = onPoweroff
        self.onReboot = onReboot
        self.onCrash = onCrash
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

    /// Builds `request` and leaves it paused; returns its domid.
    ///
    /// The corresponding C function is `libxl_domain_create_new` (synchronous: no ao_how).
    public func createPaused(_ request: LibxlDomainRequest) throws(LibxlError) -> UInt32 {
        guard let context else { throw LibxlError(code: 0, operation: "create", message: "libxl context is closed") }
        var config = libxl_domain_config()
        libxl_domain_config_init(&config)
        defer { libxl_domain_config_dispose(&config) }

        let type: libxl_domain_type =
            switch request.type {
            case .pv: LIBXL_DOMAIN_TYPE_PV
            case .pvh: LIBXL_DOMAIN_TYPE_PVH
            case .hvm: LIBXL_DOMAIN_TYPE_HVM
            }
        config.c_info.type = type
        config.c_info.name = strdup(request.name)
        if let uuid = request.uuid {
            if libxl_uuid_from_string(&config.c_info.uuid, uuid) != 0 {
                throw LibxlError(code: 0, operation: "create \(request.name)", message: "invalid uuid \"\(uuid)\"")
            }
        } else {
            // libxl takes c_info.uuid as given; xl generates one (xl_parse.c). Left zero,
            // every domain would get /vm/00000000-…, as seen on Xen 4.17.
            libxl_uuid_generate(&config.c_info.uuid)
        }
        if let domid = request.domid { config.c_info.domid = domid }
        if let pool = request.cpupool {
            var poolid: UInt32 = 0
            guard libxl_name_to_cpupoolid(context, pool, &poolid) == 0 else {
                throw LibxlError(code: 0, operation: "create \(request.name)", message: "cpupool \"\(pool)\" does not exist")
            }
            config.c_info.poolid = poolid
        }

        libxl_domain_build_info_init_type(&config.b_info, type)
        config.b_info.max_vcpus = Int32(clamping: request.maxVcpus)
        guard libxl_cpu_bitmap_alloc(context, &config.b_info.avail_vcpus, Int32(clamping: request.maxVcpus)) == 0
        else { throw LibxlError(code: 0, operation: "create \(request.name)", message: "cannot allocate vCPU bitmap") }
        for vcpu in 0..<Int32(clamping: request.vcpus) { libxl_bitmap_set(&config.b_info.avail_vcpus, vcpu) }
        if let affinity = request.cpuAffinity {
            guard libxl_cpu_bitmap_alloc(context, &config.b_info.cpumap, 0) == 0 else {
                throw LibxlError(code: 0, operation: "create \(request.name)", message: "cannot allocate CPU map")
            }
            for cpu in affinity { libxl_bitmap_set(&config.b_info.cpumap, Int32(clamping: cpu)) }
        }
        config.b_info.max_memkb = request.maxMemoryKiB
        config.b_info.target_memkb = request.targetMemoryKiB
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

        var domid: UInt32 = 0
        let rc = libxl_domain_create_new(context, &config, &domid, nil, nil)
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

    private static func action(_ action: LifecycleAction) -> libxl_action_on_shutdown {
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
