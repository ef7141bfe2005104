//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// A whole Xen system that boots at once: the model every front end (Hyperlaunch device
/// tree, xl.cfg import, the JSON form) produces. Values only: `validated()`
/// (Validation/) turns it into the ``ValidatedLaunch`` every later stage (Xenstore plan,
/// launch DTB, bundle, boot) requires.
public struct LaunchSpec: Hashable, Sendable, Codable {
    public var domains: [DomainSpec]
    /// Boot-time cpupools (`xen,cpupool`).
    public var cpupools: [CPUPoolSpec]
    /// Static event channels (`xen,evtchn-v1`), as pairs of endpoints.
    public var eventChannels: [EventChannelSpec]
    /// Static shared memory regions (`xen,domain-shared-memory-v1`).
    public var sharedMemory: [SharedMemorySpec]
    /// Hyperlaunch Static: no domain keeps the control capability after boot.
    public var staticMode: Bool

    public init(
        domains: [DomainSpec] = [], cpupools: [CPUPoolSpec] = [], eventChannels: [EventChannelSpec] = [],
        sharedMemory: [SharedMemorySpec] = [], staticMode: Bool = false
    ) {
        self.domains = domains
        self.cpupools = cpupools
        self.eventChannels = eventChannels
        self.sharedMemory = sharedMemory
        self.staticMode = staticMode
    }

    public func domain(named name: String) -> DomainSpec? { domains.first { $0.name == name } }

    /// The `format` and `formatVersion` of the model as JSON (`domb config show --json`).
    public static let jsonFormat = JSONFormat.launchSpec

    private enum CodingKeys: String, CodingKey {
        case domains, cpupools, eventChannels, sharedMemory, staticMode
    }

    /// Reads the model as JSON: with ``jsonFormat``'s `format` and `formatVersion` (what
    /// `config show --json` prints), or without them (a hand-written description).
    /// - Throws: ``ParseError`` (`unsupported`) for another format or version.
    public init(from decoder: any Decoder) throws {
        try Self.jsonFormat.check(decoder, optional: true)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        domains = try container.decode([DomainSpec].self, forKey: .domains)
        cpupools = try container.decode([CPUPoolSpec].self, forKey: .cpupools)
        eventChannels = try container.decode([EventChannelSpec].self, forKey: .eventChannels)
        sharedMemory = try container.decode([SharedMemorySpec].self, forKey: .sharedMemory)
        staticMode = try container.decode(Bool.self, forKey: .staticMode)
    }
}

/// Domain capabilities: the union of the Hyperlaunch `permissions`/`functions`, the 2023
/// `role`/`capability` revision and the dom0less `capabilities` spellings.
public struct DomainCapabilities: OptionSet, Hashable, Sendable, Codable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// May create and control other domains (`DOMAIN_CAPS_CONTROL`).
    public static let control = DomainCapabilities(rawValue: 1 << 0)
    /// Owns the hardware (`DOMAIN_CAPS_HARDWARE`).
    public static let hardware = DomainCapabilities(rawValue: 1 << 1)
    /// Runs xenstored (`DOMAIN_CAPS_XENSTORE`).
    public static let xenstore = DomainCapabilities(rawValue: 1 << 2)
    /// Owns the Xen console I/O (`CAP_CONSOLE_IO`).
    public static let console = DomainCapabilities(rawValue: 1 << 3)

    public static let names: [(String, DomainCapabilities)] = [
        ("control", .control), ("hardware", .hardware), ("xenstore", .xenstore), ("console", .console),
    ]
}

/// One boot module of a domain.
public struct ModuleSpec: Hashable, Sendable, Codable {
    public var kind: ModuleKind
    /// Where the image comes from, relative to the launch description's directory.
    public var path: String
    /// The kernel command line (`bootargs`), on kernel modules.
    public var bootargs: String?

    public init(kind: ModuleKind, path: String, bootargs: String? = nil) {
        self.kind = kind
        self.path = path
        self.bootargs = bootargs
    }
}

/// `xen,enhanced`: whether and how PV interfaces are offered.
public enum XenEnhanced: String, Hashable, Sendable, Codable {
    case enabled
    /// Arm dom0less (Xen 4.20+): as `enabled`, with the Xenstore page set up after the
    /// domain starts (`init-dom0less`), for kernels older than Linux 5.x's late Xenstore
    /// init. domb builds every domain through libxl, which sets the page up before the
    /// domain runs, so for a domb launch it is `enabled`; kept to write back what was read.
    case legacy
    case disabled
    case noXenstore = "no-xenstore"
}

/// One domain of the system.
public struct DomainSpec: Hashable, Sendable, Codable {
    public var name: String
    /// The requested domid; nil means "next free" (Hyperlaunch `domid = <0>`).
    public var domid: UInt32?
    /// RFC 4122 text form; nil means derived at build time.
    public var uuid: String?
    public var type: GuestType
    /// 64-bit guest (`MODE_LONG`); 32-bit PV guests exist, 32-bit PVH/HVM boot in 32-bit mode.
    public var is64Bit: Bool
    /// Target memory in KiB.
    public var memoryKiB: UInt64
    /// Minimum memory in KiB (`mem-min`), if different from the target.
    public var minMemoryKiB: UInt64?
    /// Maximum memory in KiB (`mem-max`, xl `maxmem`), if above the target.
    public var maxMemoryKiB: UInt64?
    public var vcpus: UInt32
    /// Maximum vCPUs (xl `maxvcpus`), if above `vcpus`.
    public var maxVcpus: UInt32?
    /// Physical CPUs the vCPUs may run on (xl `cpus`, hard affinity); nil means any.
    public var cpuAffinity: VCPUAffinity?
    /// Physical CPUs the vCPUs prefer (xl `cpus_soft`); nil leaves it to libxl's NUMA placement.
    public var softCPUAffinity: VCPUAffinity?
    /// A driver domain (xl `driver_domain`, `domb,driver-domain`): libxl__domain_make gives
    /// it the rw `libxl` and `device-model` directories `xl devd` in it keeps its state in.
    /// A domain serving vif or vbd backends must be one (validation).
    public var isDriverDomain: Bool
    /// Name of the cpupool (`domain-cpupool`, xl `pool`); nil means Pool-0.
    public var cpupool: String?
    public var capabilities: DomainCapabilities
    /// The boot domain (`FUNCTION_BOOT`): the one domain Xen unpauses to launch the rest.
    public var isBootDomain: Bool
    /// Started at boot (`START_ON_BOOT`); false leaves it built and paused.
    public var startOnBoot: Bool
    public var modules: [ModuleSpec]
    public var enhanced: XenEnhanced?
    /// `xen,domain-p2m-mem-mb`.
    public var p2mMemoryMB: UInt32?
    /// XSM label (`security-id`, xl `seclabel`).
    public var securityID: String?
    public var devices: [DeviceSpec]
    public var onPoweroff: LifecycleAction?
    public var onReboot: LifecycleAction?
    public var onCrash: LifecycleAction?
    /// Secrets released to this domain at launch (`domb,secrets`, docs/secrets.md): part of
    /// the launch DTB, so measured with it (PCR 12). Nil when there are none, never empty,
    /// so the JSON forms of domains without secrets (Xenstore plans) keep their bytes.
    public var secrets: [SecretSpec]?

    public init(
        name: String, domid: UInt32? = nil, uuid: String? = nil, type: GuestType, is64Bit: Bool = true,
        memoryKiB: UInt64, minMemoryKiB: UInt64? = nil, maxMemoryKiB: UInt64? = nil, vcpus: UInt32 = 1,
        maxVcpus: UInt32? = nil, cpuAffinity: VCPUAffinity? = nil, softCPUAffinity: VCPUAffinity? = nil,
        isDriverDomain: Bool = false, cpupool: String? = nil,
        capabilities: DomainCapabilities = [], isBootDomain: Bool = false, startOnBoot: Bool = true,
        modules: [ModuleSpec] = [], enhanced: XenEnhanced? = nil, p2mMemoryMB: UInt32? = nil,
        securityID: String? = nil, devices: [DeviceSpec] = [], onPoweroff: LifecycleAction? = nil,
        onReboot: LifecycleAction? = nil, onCrash: LifecycleAction? = nil, secrets: [SecretSpec]? = nil
    ) {
        self.secrets = secrets?.isEmpty == true ? nil : secrets
        self.name = name
        self.domid = domid
        self.uuid = uuid
        self.type = type
        self.is64Bit = is64Bit
        self.memoryKiB = memoryKiB
        self.minMemoryKiB = minMemoryKiB
        self.maxMemoryKiB = maxMemoryKiB
        self.vcpus = vcpus
        self.maxVcpus = maxVcpus
        self.cpuAffinity = cpuAffinity
        self.softCPUAffinity = softCPUAffinity
        self.isDriverDomain = isDriverDomain
        self.cpupool = cpupool
        self.capabilities = capabilities
        self.isBootDomain = isBootDomain
        self.startOnBoot = startOnBoot
        self.modules = modules
        self.enhanced = enhanced
        self.p2mMemoryMB = p2mMemoryMB
        self.securityID = securityID
        self.devices = devices
        self.onPoweroff = onPoweroff
        self.onReboot = onReboot
        self.onCrash = onCrash
    }

    public func module(_ kind: ModuleKind) -> ModuleSpec? { modules.first { $0.kind == kind } }
}

/// A boot-time cpupool.
public struct CPUPoolSpec: Hashable, Sendable, Codable {
    public var name: String
    public var cpus: [UInt32]
    /// Scheduler (`cpupool-sched`): one of ``knownSchedulers``.
    public var scheduler: String?

    /// Schedulers Xen 4.17 offers for cpupools.
    public static let knownSchedulers: Set<String> = ["credit", "credit2", "rtds", "arinc653", "null"]
    /// The cpupool a domain without `cpupool` runs in.
    public static let pool0Name = "Pool-0"

    public init(name: String, cpus: [UInt32], scheduler: String? = nil) {
        self.name = name
        self.cpus = cpus
        self.scheduler = scheduler
    }
}

/// One end of a static event channel.
public struct EventChannelEndpoint: Hashable, Sendable, Codable {
    public var domain: String
    public var port: UInt32

    public init(domain: String, port: UInt32) {
        self.domain = domain
        self.port = port
    }
}

/// A static event channel between two domains.
public struct EventChannelSpec: Hashable, Sendable, Codable {
    public var local: EventChannelEndpoint
    public var remote: EventChannelEndpoint

    public init(local: EventChannelEndpoint, remote: EventChannelEndpoint) {
        self.local = local
        self.remote = remote
    }
}

/// A static shared-memory region mapped into a domain.
public struct SharedMemorySpec: Hashable, Sendable, Codable {
    public enum Role: String, Hashable, Sendable, Codable {
        case owner
        case borrower
    }

    public var id: String
    public var domain: String
    public var hostAddress: UInt64?
    public var guestAddress: UInt64
    public var size: UInt64
    public var role: Role

    public init(id: String, domain: String, hostAddress: UInt64?, guestAddress: UInt64, size: UInt64, role: Role) {
        self.id = id
        self.domain = domain
        self.hostAddress = hostAddress
        self.guestAddress = guestAddress
        self.size = size
        self.role = role
    }
}
