//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// Computes the Xenstore plan of a validated launch: what libxl 4.17 would write for the
/// same domains and devices (`libxl__domain_make`, `store_libxl_entry`,
/// `libxl__build_post`, `libxl__device_generic_add` and each device kind's
/// `set_xenstore_config`, which lives in the kind's file under Devices/).
///
/// The planner replays libxl's operations against a model of the store that follows
/// xenstored's rules (a new node takes its parent's permissions; `mknod` sets them
/// explicitly), so every node of the plan carries the permissions it really ends up with.
public struct XenstorePlanner: Sendable {
    /// libxl's `XEN_SCRIPT_DIR` on Debian (`/etc/xen/scripts`).
    public var scriptDirectory: String
    /// The default bridge of a vif (`xenbr0`).
    public var defaultBridge: String

    /// The video RAM libxl gives an HVM guest (`video_memkb`, 8 MiB for qemu-xen's
    /// default VGA), taken from its memory target.
    public static let hvmVideoKiB: UInt64 = 8192

    public init(scriptDirectory: String = "/etc/xen/scripts", defaultBridge: String = "xenbr0") {
        self.scriptDirectory = scriptDirectory
        self.defaultBridge = defaultBridge
    }

    /// The plan of every domain domb builds, in start order. Domains that already exist
    /// when domb runs (the boot domain) or that run xenstored get no nodes but may serve
    /// backends.
    /// - Throws: `ParseError` only if the plan breaks one of xenstored's limits
    ///   (``XenstorePlan/validate()``), which a validated launch does not.
    public func plan(_ launch: ValidatedLaunch) throws(ParseError) -> XenstorePlan {
        var store = XenstoreModel()
        var domains: [XenstorePlan.Domain] = []
        for domain in launch.domainsInStartOrder where Self.isPlanned(domain) {
            do throws(ParseError) {
                domains.append(try planDomain(domain, in: launch, store: &store))
            } catch {
                throw ParseError(error.code, "domain \"\(domain.name)\": \(error.reason)", offset: error.offset)
            }
        }
        let plan = XenstorePlan(domains: domains)
        try plan.validate()
        return plan
    }

    /// Whether domb writes this domain's nodes: not the boot domain, not the Xenstore
    /// domain (it runs xenstored; `init-xenstore-domain` style setup, not libxl's,
    /// applies), and with Xenstore enabled (`xen,enhanced` not "disabled" or "no-xenstore").
    public static func isPlanned(_ domain: DomainSpec) -> Bool {
        if domain.isBootDomain || domain.capabilities.contains(.xenstore) { return false }
        switch domain.enhanced {
        case .disabled, .noXenstore: return false
        case .enabled, .legacy, nil: return true
        }
    }

    static func domid(of domain: DomainSpec) -> XenstoreTemplate {
        if let fixed = domain.domid { return "\(fixed)" }
        return XenstoreTemplate(XenstorePlaceholder(.domid, domain.name))
    }

    // MARK: One domain

    func planDomain(
        _ domain: DomainSpec, in launch: ValidatedLaunch, store: inout XenstoreModel
    ) throws(ParseError) -> XenstorePlan.Domain {
        let domid = Self.domid(of: domain)
        let uuid: XenstoreTemplate =
            if let given = domain.uuid, let canonical = XenstoreUUID.canonical(given) {
                XenstoreTemplate(literal: canonical)
            } else {
                XenstoreTemplate(XenstorePlaceholder(.uuid, domain.name))
            }
        let maxVcpus = domain.maxVcpus ?? domain.vcpus

        let dom: XenstoreTemplate = "/local/domain/\(domid)"
        let vm: XenstoreTemplate = "/vm/\(uuid)"
        let libxl: XenstoreTemplate = "/libxl/\(domid)"
        let n0 = XenstorePermissionTemplate(.none, "0")
        let roperm = [n0, XenstorePermissionTemplate(.read, domid)]
        let rwperm = [XenstorePermissionTemplate(.none, domid)]
        let noperm = [n0]
        let isHVM = domain.type == .hvm

        store.begin(domain: domain.name, scopes: [dom, vm, libxl])
        var remove: [XenstoreTemplate] = [dom, vm, libxl]

        // libxl__domain_make (libxl_create.c), one transaction.
        store.mknod("\(dom)", roperm)
        store.mknod("\(vm)", roperm)
        store.mknod("\(libxl)", noperm)
        store.mknod("\(libxl)/device", noperm)
        store.write("\(dom)/vm", "\(vm)")
        store.write("\(dom)/name", XenstoreTemplate(literal: domain.name))  // libxl__domain_rename
        for dir in ["cpu", "memory", "device", "control"] { store.mknod("\(dom)/\(dir)", roperm) }
        if isHVM { store.mknod("\(dom)/hvmloader", roperm) }
        var controls = ["shutdown", "feature-poweroff", "feature-reboot", "feature-suspend"]
        if isHVM { controls += ["feature-s3", "feature-s4"] }
        controls.append("sysrq")
        for control in controls { store.mknod("\(dom)/control/\(control)", rwperm) }
        store.mknod("\(dom)/device/suspend/event-channel", rwperm)
        for dir in ["data", "drivers", "feature", "attr", "error"] { store.mknod("\(dom)/\(dir)", rwperm) }
        // libxl__domain_make with c_info.driver_domain: `xl devd` in the domain keeps its
        // state there.
        // libxl__domain_make with c_info.driver_domain: `xl devd` in the domain keeps its
        // state there (the flag decides, not whether the domain serves backends).
        if domain.isDriverDomain {
            store.mknod("\(dom)/libxl", rwperm)
            store.mknod("\(dom)/device-model", rwperm)
        }
        store.write("\(vm)/uuid", uuid)
        store.write("\(vm)/name", XenstoreTemplate(literal: domain.name))
        store.write("\(dom)/control/platform-feature-multiprocessor-suspend", "1")
        store.write("\(dom)/control/platform-feature-xs_reset_watches", "1")
        store.write("\(libxl)/type", XenstoreTemplate(literal: domain.type.rawValue))

        // store_libxl_entry: the device model version (the default, qemu-xen, for every type).
        store.write("\(libxl)/dm-version", "qemu_xen")

        // libxl__build_post (libxl_dom.c).
        let videoKiB: UInt64 = isHVM ? Self.hvmVideoKiB : 0
        let maxKiB = domain.maxMemoryKiB ?? domain.memoryKiB
        let fudge = videoKiB + (isHVM && maxKiB > domain.memoryKiB ? 1024 : 0)
        guard domain.memoryKiB > fudge else { throw .invalid("memory \(domain.memoryKiB) KiB is too small (video RAM \(videoKiB) KiB)") }
        store.write("\(dom)/memory/static-max", "\(maxKiB)")
        store.write("\(dom)/memory/target", "\(domain.memoryKiB - fudge)")
        store.write("\(dom)/memory/videoram", "\(videoKiB)")
        store.write("\(dom)/domid", domid)
        store.write("\(dom)/store/port", XenstoreTemplate(XenstorePlaceholder(.storePort, domain.name)))
        store.write("\(dom)/store/ring-ref", XenstoreTemplate(XenstorePlaceholder(.storeRingRef, domain.name)))
        for cpu in 0..<maxVcpus {
            store.write("\(dom)/cpu/\(cpu)/availability", cpu < domain.vcpus ? "online" : "offline")
        }
        let startTime = XenstoreTemplate(XenstorePlaceholder(.startTime, domain.name))
        switch domain.type {
        case .hvm:
            for (key, value) in [("acpi", "1"), ("acpi_s3", "1"), ("acpi_s4", "1"), ("acpi_laptop_slate", "0"), ("device-model", "qemu_xen")] {
                store.write("\(dom)/platform/\(key)", XenstoreTemplate(literal: value))
            }
            store.write("\(vm)/rtc/timeoffset", "")
            store.write("\(vm)/image/ostype", "hvm")
            store.write("\(vm)/start_time", startTime)
        case .pv:
            guard let kernel = domain.module(.kernel) else { throw .invalid("a PV domain needs a kernel module") }
            store.write("\(vm)/image/ostype", "linux")
            store.write("\(vm)/image/kernel", XenstoreTemplate(literal: kernel.path))
            store.write("\(vm)/start_time", startTime)
            if let ramdisk = domain.module(.ramdisk) { store.write("\(vm)/image/ramdisk", XenstoreTemplate(literal: ramdisk.path)) }
            if let cmdline = kernel.bootargs { store.write("\(vm)/image/cmdline", XenstoreTemplate(literal: cmdline)) }
        case .pvh:
            store.write("\(vm)/start_time", startTime)
        }

        // Devices, in libxl's order: disks, the console, vkbs, then nics, vtpms, 9pfs, virtio.
        for device in try devices(of: domain, in: launch, domid: domid) {
            let backendDir: XenstoreTemplate = "/local/domain/\(device.backendDomid)/backend/\(device.backendKind)/\(domid)"
            store.addScope(backendDir)
            remove.append("\(backendDir)/\(device.devid)")
            addDevice(device, domid: domid, dom: dom, libxl: libxl, store: &store)
        }

        return XenstorePlan.Domain(
            name: domain.name, domid: domid, remove: remove, nodes: store.end(),
            introduce: .init(
                domid: domid,
                ringRef: XenstoreTemplate(XenstorePlaceholder(.storeRingRef, domain.name)),
                port: XenstoreTemplate(XenstorePlaceholder(.storePort, domain.name))))
    }

    /// The domain's devices laid out by their kinds, in libxl's order, with the devices
    /// libxl adds by itself (console 0, an HVM guest's vkb) where the domain has none.
    func devices(of domain: DomainSpec, in launch: ValidatedLaunch, domid: XenstoreTemplate) throws(ParseError) -> [XenstoreDevice] {
        let resolved = launch.devices[domain.name] ?? []
        var virtioMMIO = VirtioMMIOAllocator()
        var result: [XenstoreDevice] = []
        for kind in DeviceKinds.xenstoreOrder {
            var ofKind = resolved.filter { $0.device.kind == kind.kind }
            if ofKind.isEmpty, let implicit = kind.libxlDefault(for: domain) {
                ofKind = [ResolvedDevice(device: implicit, devid: implicit.settings.fixedDevid ?? 0, backendDomid: 0)]
            }
            for (index, item) in ofKind.enumerated() {
                let backendDomid: XenstoreTemplate
                if let fixed = item.backendDomid {
                    backendDomid = "\(fixed)"
                } else {
                    backendDomid = XenstoreTemplate(XenstorePlaceholder(.domid, item.device.backend.name))
                }
                var context = XenstoreDeviceContext(
                    domain: domain, domid: domid, backend: item.device.backend, backendDomid: backendDomid, devid: item.devid,
                    scriptDirectory: scriptDirectory, defaultBridge: defaultBridge, virtioMMIO: virtioMMIO)
                do throws(ParseError) {
                    result.append(try item.device.settings.xenstoreDevice(in: &context))
                } catch {
                    throw ParseError(error.code, "\(kind.kind) \(index): \(error.reason)")
                }
                virtioMMIO = context.virtioMMIO
            }
        }
        return result
    }

    /// `libxl__device_generic_add` (libxl_device.c).
    func addDevice(_ device: XenstoreDevice, domid: XenstoreTemplate, dom: XenstoreTemplate, libxl: XenstoreTemplate, store: inout XenstoreModel) {
        let frontend: XenstoreTemplate =
            device.kind == "console" && device.devid == 0
            ? "\(dom)/console" : "\(dom)/device/\(device.kind)/\(device.devid)"
        let backend: XenstoreTemplate = "/local/domain/\(device.backendDomid)/backend/\(device.backendKind)/\(domid)/\(device.devid)"
        let copy: XenstoreTemplate = "\(libxl)/device/\(device.kind)/\(device.devid)"
        let frontendPerms = [XenstorePermissionTemplate(.none, domid), XenstorePermissionTemplate(.read, device.backendDomid)]
        let backendPerms = [XenstorePermissionTemplate(.none, device.backendDomid), XenstorePermissionTemplate(.read, domid)]

        store.write("\(copy)/frontend", frontend)
        store.write("\(copy)/backend", backend)
        // Frontend: mkdir, the directory's perms (read-only to the guest for console 0),
        // `backend`, then fents and ro_fents each with their own explicit perms.
        store.mkdir(frontend)
        store.setPerms(frontend, device.readOnlyFrontend ? backendPerms : frontendPerms)
        store.write("\(frontend)/backend", backend)
        for (key, value) in device.front { store.write("\(frontend)/\(key)", value, perms: frontendPerms) }
        for (key, value) in device.roFront {
            store.write("\(frontend)/\(key)", value, perms: backendPerms, keep: device.backendOwned.contains(key))
        }
        // Backend: mkdir, perms, `frontend`, bents (inheriting), then the libxl copy of bents.
        store.mkdir(backend)
        store.setPerms(backend, backendPerms)
        store.write("\(backend)/frontend", frontend)
        for (key, value) in device.back { store.write("\(backend)/\(key)", value) }
        for (key, value) in device.back { store.write("\(copy)/\(key)", value) }
    }
}

/// A model of the part of the store a plan touches, with xenstored's permission rules.
struct XenstoreModel {
    struct Entry {
        var value: XenstoreTemplate
        var perms: [XenstorePermissionTemplate]
        var keep = false
    }

    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    /// The subtrees plans may write (a set: looked up per ancestor of a path, so the cost
    /// of a node does not grow with the number of domains planned before it).
    private var scopes: Set<String> = []
    private var current: [String] = []

    /// Nodes outside every plan (dom0's tree, `/vm`, `/libxl`, `/local/domain`) have the
    /// default permissions of the root, `n0`.
    static let outsidePerms = [XenstorePermissionTemplate(.none, "0")]

    mutating func begin(domain: String, scopes newScopes: [XenstoreTemplate]) {
        current = []
        scopes.formUnion(newScopes.map(\.text))
    }

    mutating func addScope(_ scope: XenstoreTemplate) { scopes.insert(scope.text) }

    mutating func end() -> [XenstorePlan.Node] {
        defer { current = [] }
        return current.compactMap { path in
            entries[path].map { XenstorePlan.Node(path: Self.template(path), value: $0.value, perms: $0.perms, keep: $0.keep) }
        }
    }

    private static func template(_ text: String) -> XenstoreTemplate {
        // Every key was made from a valid template.
        (try? XenstoreTemplate(parsing: text)) ?? XenstoreTemplate(literal: text)
    }

    /// Whether `path` is a scope or below one (``XenstorePath/isWithin(_:_:)`` for some
    /// scope), by looking up `path` and each of its ancestors.
    private func inScope(_ path: String) -> Bool {
        if scopes.contains("/") { return true }
        var candidate = Substring(path)
        while true {
            if scopes.contains(String(candidate)) { return true }
            guard let slash = candidate.lastIndex(of: "/"), slash != candidate.startIndex else { return false }
            candidate = candidate[..<slash]
        }
    }

    private func perms(of path: String) -> [XenstorePermissionTemplate] {
        entries[path]?.perms ?? Self.outsidePerms
    }

    /// Creates `path` and missing ancestors as xenstored does: each new node gets its
    /// parent's permissions and an empty value.
    private mutating func create(_ path: String) {
        guard entries[path] == nil else { return }
        let parent = XenstorePath.parent(of: path) ?? "/"
        if parent != "/" && inScope(parent) { create(parent) }
        guard inScope(path) else { return }
        entries[path] = Entry(value: "", perms: perms(of: parent))
        order.append(path)
        current.append(path)
    }

    mutating func write(_ path: XenstoreTemplate, _ value: XenstoreTemplate, perms: [XenstorePermissionTemplate]? = nil, keep: Bool = false) {
        create(path.text)
        entries[path.text]?.value = value
        if let perms { entries[path.text]?.perms = perms }
        if keep { entries[path.text]?.keep = true }
    }

    mutating func mkdir(_ path: XenstoreTemplate) { create(path.text) }

    mutating func setPerms(_ path: XenstoreTemplate, _ perms: [XenstorePermissionTemplate]) {
        create(path.text)
        entries[path.text]?.perms = perms
    }

    /// `libxl__xs_mknod`: an empty node with explicit permissions.
    mutating func mknod(_ path: XenstoreTemplate, _ perms: [XenstorePermissionTemplate]) {
        write(path, "", perms: perms)
    }
}
