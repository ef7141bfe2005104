//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFDT

/// Reads a Hyperlaunch launch description from a device tree, accepting every spelling
/// docs/binding.md lists — domb's canonical form, and trees written for upstream Xen (Arm
/// dom0less, the x86 Hyperlaunch series). Unknown properties and nodes are errors (fail
/// closed), each naming the node path; properties that mean nothing to an x86 launch are
/// notes naming them.
public enum LaunchDecoder {
    /// Decodes a DTB.
    /// - Parameters:
    ///   - options: the image files of modules the tree locates in memory (`--module`), with
    ///     paths relative to `baseDirectory` or absolute, and the kernel reader for domains
    ///     without `mode`. Without them such trees are refused, naming the node.
    ///   - baseDirectory: where relative module paths are read from (the kernel reader).
    /// - Throws: `ParseError` for a malformed blob; `ContextError` naming the node for a
    ///   well-formed blob that is not a valid launch description.
    public static func decode(
        dtb bytes: [UInt8], options: LaunchLoadOptions = LaunchLoadOptions(), baseDirectory: String = "."
    ) throws -> LaunchDocument {
        try decode(tree: FDT.parse(bytes), options: options, baseDirectory: baseDirectory)
    }

    /// Decodes a tree read from a DTB (raw-valued properties).
    public static func decode(
        tree root: DTNode, options: LaunchLoadOptions = LaunchLoadOptions(), baseDirectory: String = "."
    ) throws -> LaunchDocument {
        var decoder = Decoder(root: root, options: options, baseDirectory: baseDirectory)
        return try decoder.run()
    }
}

/// A node with its path, and typed property readers over its raw bytes.
private struct NodeView {
    let node: DTNode
    let path: String

    var name: String { node.name }

    func child(_ child: DTNode) -> NodeView {
        NodeView(node: child, path: path == "/" ? "/\(child.name)" : "\(path)/\(child.name)")
    }

    /// The path of the parent node; nil for the root.
    var parentPath: String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    func fail(_ message: String) -> ContextError {
        ContextError("node \(path)", ParseError.invalid(message))
    }

    func raw(_ name: String) -> [UInt8]? {
        guard let property = node.property(name) else { return nil }
        if case .bytes(let bytes) = property.value { return bytes }
        return try? property.value.encoded(phandles: [:])
    }

    func u32(_ name: String) throws -> UInt32? {
        guard let bytes = raw(name) else { return nil }
        guard bytes.count == 4 else { throw fail("\(name) must be one 32-bit cell, not \(bytes.count) bytes") }
        return bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A 64-bit value: two cells (high first), or one cell.
    func u64(_ name: String) throws -> UInt64? {
        guard let bytes = raw(name) else { return nil }
        guard bytes.count == 4 || bytes.count == 8 else {
            throw fail("\(name) must be one or two 32-bit cells, not \(bytes.count) bytes")
        }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    func cells(_ name: String) throws -> [UInt32]? {
        guard let bytes = raw(name) else { return nil }
        guard bytes.count % 4 == 0 else { throw fail("\(name) must be 32-bit cells, not \(bytes.count) bytes") }
        return stride(from: 0, to: bytes.count, by: 4).map { at in
            bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    /// A string list: NUL-terminated, valid UTF-8 (`bootargs = ""` is one empty string).
    func strings(_ name: String) throws -> [String]? {
        guard let bytes = raw(name) else { return nil }
        guard let list = decodeStrings(bytes) else {
            throw fail("\(name) must be NUL-terminated UTF-8 strings")
        }
        return list
    }

    func string(_ name: String) throws -> String? {
        guard let list = try strings(name) else { return nil }
        guard list.count == 1 else { throw fail("\(name) must be one string, not \(list.count)") }
        return list[0]
    }

    func flag(_ name: String) throws -> Bool {
        guard let bytes = raw(name) else { return false }
        guard bytes.isEmpty else { throw fail("\(name) is a flag and takes no value") }
        return true
    }

    var compatible: [String] { (try? strings("compatible")) ?? [] }

    func rejectUnknown(_ allowed: Set<String>) throws {
        for property in node.properties where !allowed.contains(property.name) {
            throw fail("unknown property \"\(property.name)\" (allowed here: \(allowed.sorted().joined(separator: " ")))")
        }
    }

    /// The cells of a property as one number (at most two cells: 64 bits).
    static func number(_ cells: ArraySlice<UInt32>) -> UInt64 { cells.reduce(0) { $0 << 32 | UInt64($1) } }

    /// Cells in DTS notation, `<0x0 0x4a000000>`.
    static func cellText(_ cells: [UInt32]) -> String { "<" + cells.map { "0x" + String($0, radix: 16) }.joined(separator: " ") + ">" }
}

func decodeStrings(_ bytes: [UInt8]) -> [String]? {
    guard let last = bytes.last, last == 0 else { return nil }
    var list: [String] = []
    for part in bytes.dropLast().split(separator: 0, omittingEmptySubsequences: false) {
        guard let text = String(validating: part, as: UTF8.self) else { return nil }
        list.append(text)
    }
    return list
}

/// Where the domains are: under `/chosen/hypervisor` (domb's canonical form, the x86
/// Hyperlaunch series), or directly under `/chosen` (Arm dom0less). The layout decides the
/// rules where the bindings differ (docs/binding.md, "Trees written for upstream Xen").
enum LaunchLayout {
    case hyperlaunch
    case dom0less
}

private struct Decoder {
    let root: DTNode
    let options: LaunchLoadOptions
    let baseDirectory: String
    var phandles: [UInt32: String] = [:]  // phandle → node path
    var nodesByPath: [String: NodeView] = [:]
    var notes: [LaunchNote] = []
    /// `--module` options by index → the module node each named.
    var usedModuleFiles: [Int: String] = [:]
    /// Module nodes seen, for the message about an option that names none.
    var moduleNodes: [String] = []

    init(root: DTNode, options: LaunchLoadOptions, baseDirectory: String) {
        self.root = root
        self.options = options
        self.baseDirectory = baseDirectory
    }

    mutating func index(_ view: NodeView) throws {
        guard nodesByPath[view.path] == nil else { throw view.fail("two sibling nodes have the same name") }
        nodesByPath[view.path] = view
        for key in ["phandle", "linux,phandle"] {
            if let value = try view.u32(key) {
                guard value != 0 && value != 0xFFFF_FFFF else { throw view.fail("\(key) \(value) is reserved") }
                if let other = phandles[value], other != view.path {
                    throw view.fail("phandle \(value) is also used by \(other)")
                }
                phandles[value] = view.path
            }
        }
        for child in view.node.children { try index(view.child(child)) }
    }

    func resolve(_ phandle: UInt32, from view: NodeView, property: String) throws -> NodeView {
        guard let path = phandles[phandle], let target = nodesByPath[path] else {
            throw view.fail("\(property) refers to phandle \(phandle), which no node has")
        }
        return target
    }

    /// `#address-cells` and `#size-cells` for the children of `view`, as Xen's device-tree
    /// walk takes them (`device_tree_for_each_node`, `dt_n_addr_cells`): from `view` itself
    /// or the nearest ancestor that has them, each on its own; 2 and 1 at the root
    /// (`DT_ROOT_NODE_ADDR_CELLS_DEFAULT`, `DT_ROOT_NODE_SIZE_CELLS_DEFAULT`).
    func cellCounts(forChildrenOf view: NodeView) throws -> (address: Int, size: Int) {
        var address: UInt32?
        var size: UInt32?
        var current: NodeView? = view
        while let node = current, address == nil || size == nil {
            if address == nil, let value = try node.u32("#address-cells") { address = value }
            if size == nil, let value = try node.u32("#size-cells") { size = value }
            current = node.parentPath.flatMap { nodesByPath[$0] }
        }
        let cells = (address: Int(address ?? 2), size: Int(size ?? 1))
        guard (1...2).contains(cells.address), (0...2).contains(cells.size) else {
            throw view.fail("#address-cells \(cells.address) and #size-cells \(cells.size) for its children: domb reads 1 or 2 address cells and 0 to 2 size cells")
        }
        return cells
    }

    /// The `reg` of `view` as (address, size), in its parent's cells: one entry.
    func reg(_ view: NodeView) throws -> (address: UInt64, size: UInt64, cells: [UInt32])? {
        guard let cells = try view.cells("reg") else { return nil }
        guard let parentPath = view.parentPath, let parent = nodesByPath[parentPath] else { return nil }
        let counts = try cellCounts(forChildrenOf: parent)
        guard cells.count == counts.address + counts.size else {
            throw view.fail(
                "reg \(NodeView.cellText(cells)) must be one <address size> in \(counts.address) + \(counts.size) cells "
                    + "(#address-cells and #size-cells of \(parentPath) or above)")
        }
        return (NodeView.number(cells[0..<counts.address]), NodeView.number(cells[counts.address...]), cells)
    }

    mutating func run() throws -> LaunchDocument {
        let top = NodeView(node: root, path: "/")
        try index(top)
        guard let chosenNode = root.child("chosen") else {
            throw top.fail("no /chosen node: a launch description lives in /chosen/hypervisor")
        }
        let chosen = top.child(chosenNode)
        let base: NodeView
        let layout: LaunchLayout
        if let hypervisor = chosenNode.child("hypervisor") {
            base = chosen.child(hypervisor)
            guard base.compatible.contains("hypervisor,xen") else {
                throw base.fail("compatible must include \"hypervisor,xen\"")
            }
            try base.rejectUnknown(["compatible", "domb,static-mode", "#address-cells", "#size-cells", "phandle", "linux,phandle", "bootargs"])
            layout = .hyperlaunch
        } else if chosenNode.children.contains(where: { NodeView(node: $0, path: "").compatible.contains(LaunchBinding.domainCompatible) }) {
            // Dom0less: domains directly under /chosen.
            base = chosen
            layout = .dom0less
        } else {
            throw chosen.fail("no hypervisor node (compatible \"hypervisor,xen\") and no \"xen,domain\" nodes")
        }
        var spec = LaunchSpec()
        spec.staticMode = layout == .hyperlaunch ? try base.flag("domb,static-mode") : false

        // Cpupools: under /chosen (dom0less) or the hypervisor node.
        var poolByPath: [String: String] = [:]
        var poolViews = chosenNode.children.map(chosen.child)
        if layout == .hyperlaunch { poolViews += base.node.children.map(base.child) }
        for view in poolViews where view.compatible.contains(LaunchBinding.cpupoolCompatible) {
            spec.cpupools.append(try decodeCPUPool(view))
            poolByPath[view.path] = view.name
        }

        // Domains.
        let domainViews = base.node.children.map(base.child).filter { $0.compatible.contains(LaunchBinding.domainCompatible) }
        var domainByPath: [String: String] = [:]
        for view in domainViews { domainByPath[view.path] = view.name }
        var origins: [String: String] = [:]
        var endpointNodes: [(view: NodeView, domain: String, port: UInt32, peer: String)] = []
        for view in domainViews {
            let domain = try decodeDomain(view, layout: layout, pools: poolByPath, domains: domainByPath)
            origins[domain.name] = view.path
            // Event channels and shared memory live in the domain node.
            for child in view.node.children.map(view.child) {
                if isEventChannel(child) {
                    endpointNodes.append(try decodeEventChannelEnd(child, domain: domain.name))
                } else if child.compatible.contains(LaunchBinding.sharedMemoryCompatible) {
                    spec.sharedMemory.append(try decodeSharedMemory(child, domain: view))
                }
            }
            spec.domains.append(domain)
        }
        for view in base.node.children.map(base.child) where view.compatible.contains(LaunchBinding.configCompatible) {
            notes.append(
                LaunchNote(kind: .ignoredNode, key: view.path, message: "Xen's own modules (xen,config) are not part of the model"))
        }
        // What else a node holding the domains may hold.
        var dom0Endpoints: Set<String> = []
        switch layout {
        case .hyperlaunch:
            for view in base.node.children.map(base.child) {
                let known = [LaunchBinding.domainCompatible, LaunchBinding.cpupoolCompatible, LaunchBinding.configCompatible]
                if !view.compatible.contains(where: known.contains) {
                    throw view.fail("unknown node under the hypervisor node (compatible \(view.compatible))")
                }
            }
        case .dom0less:
            notes.append(LaunchNote(kind: .remark, message: "read as a dom0less /chosen (no /chosen/hypervisor node)"))
            dom0Endpoints = try noteDom0Nodes(chosen)
        }

        // Pair event-channel endpoints: each must name the other.
        let byPath = Dictionary(endpointNodes.map { ($0.view.path, $0) }, uniquingKeysWith: { first, _ in first })
        var paired: Set<String> = []
        for endpoint in endpointNodes where !paired.contains(endpoint.view.path) {
            if dom0Endpoints.contains(endpoint.peer) {
                throw endpoint.view.fail(
                    "xen,evtchn connects to \(endpoint.peer), dom0's end (an event-channel node directly under /chosen): "
                        + "the launch model's static event channels join the domains it describes, and dom0 is not one of them")
            }
            guard let peer = byPath[endpoint.peer] else {
                throw endpoint.view.fail("xen,evtchn refers to \(endpoint.peer), which is not an event-channel node")
            }
            guard peer.peer == endpoint.view.path else {
                throw endpoint.view.fail("event channel does not pair up: \(peer.view.path) refers to \(peer.peer), not back here")
            }
            guard peer.view.path != endpoint.view.path else {
                throw endpoint.view.fail("event channel refers to itself")
            }
            paired.insert(endpoint.view.path)
            paired.insert(peer.view.path)
            spec.eventChannels.append(
                EventChannelSpec(
                    local: EventChannelEndpoint(domain: endpoint.domain, port: endpoint.port),
                    remote: EventChannelEndpoint(domain: peer.domain, port: peer.port)))
        }

        // Every --module option must name a module node of this tree.
        for (index, argument) in options.moduleFiles.enumerated() where usedModuleFiles[index] == nil {
            let known = moduleNodes.isEmpty ? "it has none" : "its module nodes are \(moduleNodes.joined(separator: ", "))"
            throw ContextError(
                argument.description,
                ParseError.invalid("no module node of this tree is \(argument.node) (\(known); name one by its path, DOMAIN/NODE or DOMAIN/KIND)"))
        }
        return LaunchDocument(spec: spec, origins: origins, notes: notes)
    }

    /// One vCPU affinity (docs/binding.md): `PREFIX` (CPUs, every vCPU), `PREFIX-except`
    /// (every host CPU but these, every vCPU), `PREFIX-cpulist` (one xl CPULIST, every vCPU)
    /// or `perVCPU` (an xl CPULIST per vCPU); at most one.
    func decodeAffinity(_ view: NodeView, prefix: String, perVCPU: String) throws -> VCPUAffinity? {
        let cpus = try view.cells(prefix)
        let except = try view.cells("\(prefix)-except")
        let cpuList = try view.strings("\(prefix)-cpulist")
        let lists = try view.strings(perVCPU)
        guard [cpus != nil, except != nil, cpuList != nil, lists != nil].filter({ $0 }).count <= 1 else {
            throw view.fail("give one of \(prefix), \(prefix)-except, \(prefix)-cpulist and \(perVCPU)")
        }
        if let cpus { return .allVCPUs(.cpus(Array(Set(cpus)).sorted())) }
        if let except { return .allVCPUs(.allBut(Array(Set(except)).sorted())) }
        let (property, texts, each) = cpuList.map { ("\(prefix)-cpulist", $0, false) } ?? (perVCPU, lists ?? [], true)
        guard cpuList != nil || lists != nil else { return nil }
        do {
            return try VCPUAffinity(cpuLists: texts, perVCPU: each)
        } catch {
            throw view.fail("\(property): \(error.reason)")
        }
    }

    func isEventChannel(_ view: NodeView) -> Bool {
        view.compatible.contains(LaunchBinding.evtchnCompatible) || view.compatible.contains("xen,evtchn")
    }

    func decodeEventChannelEnd(_ view: NodeView, domain: String) throws -> (view: NodeView, domain: String, port: UInt32, peer: String) {
        try view.rejectUnknown(["compatible", "xen,evtchn", "phandle", "linux,phandle"])
        guard let cells = try view.cells("xen,evtchn"), cells.count == 2 else {
            throw view.fail("xen,evtchn must be <local-port &remote-node>")
        }
        let peer = try resolve(cells[1], from: view, property: "xen,evtchn")
        return (view, domain, cells[0], peer.path)
    }

    /// The other children of a dom0less `/chosen`: what Arm Xen reads there is dom0's
    /// (its boot modules, its ends of static event channels and shared memory) or Xen's.
    /// dom0 is not a domain of the launch: its modules and unreferenced event-channel ends
    /// are notes, shared memory with it is refused (dropping dom0's side would change who
    /// owns the region). Returns the paths of dom0's event-channel ends.
    mutating func noteDom0Nodes(_ chosen: NodeView) throws -> Set<String> {
        var endpoints: Set<String> = []
        for view in chosen.node.children.map(chosen.child) {
            let compatible = view.compatible
            if compatible.contains(LaunchBinding.domainCompatible) || compatible.contains(LaunchBinding.cpupoolCompatible) {
                continue
            }
            if isEventChannel(view) {
                endpoints.insert(view.path)
                notes.append(
                    LaunchNote(kind: .ignoredNode, key: view.path, message: "dom0's end of a static event channel: dom0 is not a domain of the launch"))
            } else if compatible.contains(LaunchBinding.sharedMemoryCompatible) {
                throw view.fail(
                    "static shared memory of dom0 (a xen,domain-shared-memory-v1 node directly under /chosen): the launch "
                        + "model shares memory among the domains it describes, and dom0 is not one of them")
            } else if compatible.contains(where: { UpstreamBinding.genericModuleCompatibles.contains($0) }) {
                let kind = moduleKind(compatible).map { "\($0.rawValue) " } ?? ""
                notes.append(
                    LaunchNote(kind: .ignoredNode, key: view.path, message: "dom0's \(kind)boot module (a module directly under /chosen): domb builds the described domains, not dom0"))
            } else if !compatible.isEmpty {
                notes.append(LaunchNote(kind: .ignoredNode, key: view.path, message: "not part of a launch description (compatible \(compatible))"))
            }
        }
        return endpoints
    }

    /// A `xen,cpupool` node. Each CPU's `reg` is read in its parent's `#address-cells` (2 in
    /// every Arm tree) and taken as Xen's logical CPU number: on Arm it is the MPIDR, which
    /// Xen maps to its own numbering from the firmware tables at boot; x86 CPUs are known by
    /// APIC ID from ACPI, and a tree written before boot cannot know that map, so domb's
    /// numbers are those `xl cpupool-list -c` and `xl vcpu-pin` use (docs/binding.md).
    mutating func decodeCPUPool(_ view: NodeView) throws -> CPUPoolSpec {
        try view.rejectUnknown(["compatible", "cpupool-cpus", "cpupool-sched", "phandle", "linux,phandle"])
        guard let handles = try view.cells("cpupool-cpus") else { throw view.fail("cpupool-cpus is required") }
        var cpus: [UInt32] = []
        var armNodes: [String] = []
        for handle in handles {
            let cpu = try resolve(handle, from: view, property: "cpupool-cpus")
            if let type = try cpu.string("device_type"), type != "cpu" {
                throw cpu.fail("device_type is \"\(type)\", not \"cpu\"")
            }
            guard let parentPath = cpu.parentPath, let parent = nodesByPath[parentPath], let cells = try cpu.cells("reg") else {
                throw cpu.fail("a CPU node referenced by \(view.path) needs reg = <cpu number>")
            }
            // CPU nodes have no size (#size-cells = <0> in /cpus); Xen reads the address cells only,
            // so a reg that also has the size cells a parent without #size-cells implies reads too.
            let counts = try cellCounts(forChildrenOf: parent)
            guard cells.count == counts.address || cells.count == counts.address + counts.size else {
                throw cpu.fail("reg \(NodeView.cellText(cells)) must be one CPU number in \(counts.address) address cell\(counts.address == 1 ? "" : "s") (#address-cells of \(parentPath))")
            }
            let number = NodeView.number(cells[0..<counts.address])
            guard number <= UInt64(LaunchLimits.maxCPU) else {
                throw cpu.fail(
                    "reg \(NodeView.cellText(cells)) is read as Xen's CPU number \(number), above \(LaunchLimits.maxCPU) "
                        + "(an Arm MPIDR with high affinity levels is not a CPU number)")
            }
            cpus.append(UInt32(number))
            if (try? cpu.strings("compatible"))??.contains(where: { $0.hasPrefix("arm,") }) == true { armNodes.append(cpu.path) }
        }
        if !armNodes.isEmpty {
            notes.append(
                LaunchNote(
                    kind: .remark, key: view.path,
                    message: "CPU nodes with Arm compatibles (\(armNodes.joined(separator: ", "))): each reg is read as Xen's CPU "
                        + "number, not as an MPIDR; the pool's CPUs are \(cpus.map(String.init).joined(separator: ", "))"))
        }
        return CPUPoolSpec(name: view.name, cpus: cpus, scheduler: try view.string("cpupool-sched"))
    }

    /// Domain properties the model reads, in either layout.
    static let domainProperties: Set<String> = [
        "compatible", "domid", "domain-uuid", "mode", "permissions", "functions", "role", "capability", "capabilities",
        "memory", "mem-min", "mem-max", "cpus", "domb,max-vcpus", "domb,cpu-affinity", "domb,cpu-affinity-except",
        "domb,cpu-affinity-cpulist", "domb,vcpu-affinity", "domb,cpu-soft-affinity", "domb,cpu-soft-affinity-except",
        "domb,cpu-soft-affinity-cpulist", "domb,vcpu-soft-affinity",
        "domb,driver-domain", "domain-cpupool", "xen,enhanced", "xen,domain-p2m-mem-mb", "security-id", "domb,paused", "domb,on-poweroff", "domb,on-reboot",
        "domb,on-crash", "domb,secrets", "#address-cells", "#size-cells", "phandle", "linux,phandle",
    ]

    mutating func decodeDomain(_ view: NodeView, layout: LaunchLayout, pools: [String: String], domains: [String: String]) throws -> DomainSpec {
        let ignorable = UpstreamBinding.armOnlyDomainProperties.merging(UpstreamBinding.uncarriedDomainProperties) { a, _ in a }
        try view.rejectUnknown(Self.domainProperties.union(ignorable.keys))
        for property in view.node.properties {
            if let what = UpstreamBinding.armOnlyDomainProperties[property.name] {
                notes.append(
                    LaunchNote(kind: .ignoredKey, key: property.name, message: "in \(view.path): Arm only (\(what)): not applicable to an x86 launch"))
            } else if let what = UpstreamBinding.uncarriedDomainProperties[property.name] {
                notes.append(
                    LaunchNote(kind: .ignoredKey, key: property.name, message: "in \(view.path): \(what) is not part of the launch model (libxl's default applies)"))
            }
        }
        let memory = try decodeMemory(view)
        // The type is set once the modules are read (a domain without `mode` takes it from its kernel).
        var domain = DomainSpec(name: view.name, type: .pvh, memoryKiB: memory.target)
        domain.minMemoryKiB = memory.min
        domain.maxMemoryKiB = memory.max
        // domid: honoured in both layouts, as the x86 series reads it (Arm dom0less ignores it and allocates).
        if let domid = try view.u32("domid"), domid != 0 { domain.domid = domid }
        if let bytes = view.raw("domain-uuid") {
            guard bytes.count == 16 else { throw view.fail("domain-uuid must be 16 bytes, not \(bytes.count)") }
            let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
                String(hex.dropFirst(range.lowerBound).prefix(range.count))
            }
            domain.uuid = parts.joined(separator: "-")
        }
        switch (try view.u32("cpus"), layout) {
        case (let cpus?, _): domain.vcpus = cpus
        case (nil, .hyperlaunch): domain.vcpus = 1
        case (nil, .dom0less): throw view.fail("cpus is required in a dom0less domain (Xen stops without it)")
        }
        domain.maxVcpus = try view.u32("domb,max-vcpus")
        domain.cpuAffinity = try decodeAffinity(view, prefix: "domb,cpu-affinity", perVCPU: "domb,vcpu-affinity")
        domain.softCPUAffinity = try decodeAffinity(view, prefix: "domb,cpu-soft-affinity", perVCPU: "domb,vcpu-soft-affinity")
        domain.isDriverDomain = try view.flag("domb,driver-domain")
        if let handle = try view.u32("domain-cpupool") {
            let target = try resolve(handle, from: view, property: "domain-cpupool")
            guard let pool = pools[target.path] else {
                throw view.fail("domain-cpupool refers to \(target.path), which is not a xen,cpupool node")
            }
            domain.cpupool = pool
        }
        try decodeCapabilities(view, into: &domain)
        if let raw = view.raw("xen,enhanced") {
            if raw.isEmpty {
                domain.enhanced = .enabled
            } else {
                let text = try view.string("xen,enhanced") ?? ""
                guard let value = XenEnhanced(rawValue: text) else {
                    throw view.fail("xen,enhanced \"\(text)\" is not enabled, legacy, disabled or no-xenstore")
                }
                domain.enhanced = value
            }
        } else if layout == .dom0less {
            // dom0less-build.c construct_domU: without the property, no PV interfaces.
            domain.enhanced = .disabled
            notes.append(
                LaunchNote(
                    kind: .remark, key: view.path,
                    message: "no xen,enhanced: PV interfaces off, as Xen reads a dom0less domain (give xen,enhanced = \"enabled\" for Xenstore and PV devices)"))
        }
        domain.p2mMemoryMB = try view.u32("xen,domain-p2m-mem-mb")
        domain.securityID = try view.string("security-id")
        domain.startOnBoot = !(try view.flag("domb,paused"))
        for (name, path) in [("domb,on-poweroff", \DomainSpec.onPoweroff), ("domb,on-reboot", \.onReboot), ("domb,on-crash", \.onCrash)] {
            if let text = try view.string(name) {
                guard let action = LifecycleAction(rawValue: text) else {
                    throw view.fail("\(name) \"\(text)\" is not one of \(LifecycleAction.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                domain[keyPath: path] = action
            }
        }
        if let entries = try view.strings("domb,secrets") {
            guard !entries.isEmpty else { throw view.fail("domb,secrets is empty") }
            domain.secrets = try entries.map { entry in
                try ContextError.wrap("node \(view.path)") { try SecretSpec(parsing: entry, context: "domb,secrets \"\(entry)\"") }
            }
        }

        var vcpuNodes: [NodeView] = []
        for child in view.node.children.map(view.child) {
            let compatible = child.compatible
            if compatible.isEmpty { throw child.fail("node has no compatible string") }
            if isEventChannel(child) || compatible.contains(LaunchBinding.sharedMemoryCompatible) {
                continue
            }
            if compatible.contains(LaunchBinding.vcpuCompatible) {
                vcpuNodes.append(child)
            } else if let kind = moduleKind(compatible) {
                domain.modules.append(try decodeModule(child, kind: kind, domain: view.name))
                if !compatible.contains("multiboot,\(kind.rawValue)"), !compatible.contains("module,\(kind.rawValue)") {
                    notes.append(
                        LaunchNote(
                            kind: .remark, key: child.path,
                            message: "\(compatible[0]) read as the \(kind.rawValue); Arm Xen takes the Xen 4.4 names for dom0's modules only and finds a domain's by multiboot,\(kind.rawValue)"))
                }
            } else if let kind = DeviceKinds.all.first(where: { compatible.contains(LaunchBinding.deviceCompatible($0.kind)) }) {
                domain.devices.append(try decodeDevice(child, kind: kind, domains: domains))
            } else if compatible.allSatisfy(UpstreamBinding.genericModuleCompatibles.contains) {
                // kernel.c kernel_probe: a domain's modules are found by kind only.
                notes.append(
                    LaunchNote(kind: .ignoredNode, key: child.path, message: "a boot module of no kind (multiboot,module alone): Xen loads none such into a domain"))
            } else if compatible.contains(where: { $0.hasPrefix("module,") || $0.hasPrefix("multiboot,") }) {
                throw child.fail("module kind \(compatible) is not supported in a domain (kernel, ramdisk, device-tree, config, firmware)")
            } else {
                throw child.fail("unknown node (compatible \(compatible)) in a domain")
            }
        }
        if let affinity = try decodeVcpuAffinity(vcpuNodes, of: domain, in: view) {
            if let given = domain.cpuAffinity, given != affinity {
                throw view.fail("domb,cpu-affinity and the xen,vcpu nodes' hard-affinity name different CPUs")
            }
            domain.cpuAffinity = domain.cpuAffinity ?? affinity
        }
        try decodeMode(view, into: &domain)
        return domain
    }

    /// `mode` (docs/binding.md): bit 0 PV, bit 1 device model (HVM), bit 2 domb's 64-bit
    /// (the x86 series has no bit 2: it takes the width from the kernel), bit 3 the series'
    /// START_ON_BOOT. Without `mode` (Arm dom0less has none) the type is the kernel's: PVH
    /// when it can boot as PVH, else PV (``KernelModeProbing``).
    mutating func decodeMode(_ view: NodeView, into domain: inout DomainSpec) throws {
        guard let mode = try view.u32("mode") else {
            guard let kernel = domain.module(.kernel) else {
                throw view.fail("mode is absent and there is no kernel to take the guest type from (give mode: PV 1, HVM 2, 64-bit 4)")
            }
            let read: GuestMode
            if options.placeholders {
                read = GuestMode(type: .pvh, is64Bit: true)
            } else {
                guard let probe = options.kernelProbe else {
                    throw view.fail("mode is absent (give mode: PV 1, HVM 2, 64-bit 4, or read the tree with domb, which takes it from the kernel)")
                }
                let file = kernel.path.hasPrefix("/") ? kernel.path : "\(baseDirectory)/\(kernel.path)"
                do {
                    read = try probe.mode(ofKernel: file, privileged: !domain.capabilities.isDisjoint(with: [.control, .hardware]))
                } catch {
                    throw view.fail("mode is absent, and the kernel cannot give the guest type: \(error)")
                }
            }
            domain.type = read.type
            domain.is64Bit = read.is64Bit
            notes.append(
                LaunchNote(
                    kind: .remark, key: view.path,
                    message: "no mode: \(read.type.rawValue), \(read.is64Bit ? 64 : 32)-bit, as the kernel \(kernel.path) boots"))
            return
        }
        let knownModeBits = HyperlaunchBits.modeParavirtualized | HyperlaunchBits.modeEnableDeviceModel
            | HyperlaunchBits.modeLong | HyperlaunchBits.modeStartOnBoot
        guard mode & ~knownModeBits == 0 else {
            throw view.fail("mode 0x\(String(mode, radix: 16)) has unknown bits 0x\(String(mode & ~knownModeBits, radix: 16))")
        }
        switch (mode & HyperlaunchBits.modeParavirtualized != 0, mode & HyperlaunchBits.modeEnableDeviceModel != 0) {
        case (true, true): throw view.fail("mode sets both PARAVIRTUALIZED and ENABLE_DEVICE_MODEL")
        case (true, false): domain.type = .pv
        case (false, true): domain.type = .hvm
        case (false, false): domain.type = .pvh
        }
        domain.is64Bit = mode & HyperlaunchBits.modeLong != 0
    }

    /// `xen,vcpu` nodes (`id`, `hard-affinity`; dom0less-build.c `domain_vcpu_affinity`).
    /// The model carries one CPU list for all vCPUs, so the nodes must give every vCPU the
    /// same hard affinity; anything else is refused rather than changed.
    /// Upstream `xen,vcpu` nodes' `hard-affinity`: one CPU set for every vCPU when they all
    /// agree, else one per vCPU from vCPU 0 (a vCPU without a node runs on any CPU, as Xen
    /// leaves it).
    func decodeVcpuAffinity(_ nodes: [NodeView], of domain: DomainSpec, in view: NodeView) throws -> VCPUAffinity? {
        guard !nodes.isEmpty else { return nil }
        var affinities: [UInt32: [UInt32]] = [:]
        var ids: Set<UInt32> = []
        for node in nodes {
            try node.rejectUnknown(["compatible", "id", "hard-affinity", "phandle", "linux,phandle"])
            guard let id = try node.u32("id") else { throw node.fail("id is required (the vCPU number)") }
            guard id < domain.vcpus else { throw node.fail("id \(id) is not a vCPU of a domain with cpus = <\(domain.vcpus)>") }
            guard id < LaunchLimits.maxVcpus else {
                throw node.fail("id \(id) is above the most vCPUs a domain can have (\(LaunchLimits.maxVcpus))")
            }
            guard ids.insert(id).inserted else { throw node.fail("another xen,vcpu node of \(view.path) has id \(id)") }
            if let text = try node.string("hard-affinity") {
                switch UpstreamBinding.parseHardAffinity(text) {
                case .success(let cpus): affinities[id] = Array(Set(cpus)).sorted()
                case .failure(let error): throw node.fail(error.reason)
                }
            }
        }
        // Every vCPU has a node with the same set: one set for all. Only the nodes' ids are
        // walked (at most one per node, each below LaunchLimits.maxVcpus), never `cpus`.
        let count = UInt64(domain.maxVcpus ?? domain.vcpus)
        if UInt64(affinities.count) == count, let first = affinities.first?.value, affinities.values.allSatisfy({ $0 == first }) {
            return .allVCPUs(.cpus(first))
        }
        // Up to the last vCPU with an affinity; the ones between without a node run anywhere.
        let last = affinities.keys.max() ?? 0
        return .perVCPU((0...last).map { affinities[$0].map(CPUSet.cpus) ?? .allBut([]) })
    }

    func moduleKind(_ compatible: [String]) -> ModuleKind? {
        for entry in compatible {
            if let kind = UpstreamBinding.legacyModuleCompatibles[entry] { return kind }
            for prefix in ["module,", "multiboot,"] where entry.hasPrefix(prefix) {
                if let kind = ModuleKind(rawValue: String(entry.dropFirst(prefix.count))) { return kind }
            }
        }
        return nil
    }

    /// `memory` as u64 KiB (merged doc, dom0less, code series) or as the 2023 revision's
    /// strings ("256M", "min:128M", "max:1G"); `mem-min`/`mem-max` as u64 KiB.
    func decodeMemory(_ view: NodeView) throws -> (target: UInt64, min: UInt64?, max: UInt64?) {
        guard let raw = view.raw("memory") else { throw view.fail("memory is required (KiB)") }
        var target: UInt64?
        var minimum = try view.u64("mem-min")
        var maximum = try view.u64("mem-max")
        if let list = decodeStrings(raw), list.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && !$0.isWhitespace } }),
            list.contains(where: { $0.first?.isNumber == true || $0.hasPrefix("min:") || $0.hasPrefix("max:") })
        {
            for item in list {
                if item.hasPrefix("min:") {
                    minimum = try parseSize(String(item.dropFirst(4)), view)
                } else if item.hasPrefix("max:") {
                    maximum = try parseSize(String(item.dropFirst(4)), view)
                } else {
                    guard target == nil else { throw view.fail("memory gives the target size twice") }
                    target = try parseSize(item, view)
                }
            }
        } else {
            target = try view.u64("memory")
        }
        guard let target else { throw view.fail("memory gives only min:/max:, not the target size") }
        return (target, minimum, maximum)
    }

    func parseSize(_ text: String, _ view: NodeView) throws -> UInt64 {
        let units: [Character: UInt64] = ["K": 1, "M": 1024, "G": 1024 * 1024, "T": 1024 * 1024 * 1024]
        var digits = Substring(text)
        var scale: UInt64 = 1
        if let last = digits.last, let unit = units[Character(last.uppercased())] {
            scale = unit
            digits = digits.dropLast()
        }
        guard let value = UInt64(digits) else { throw view.fail("memory size \"\(text)\" is not a number with K, M, G or T") }
        let (kib, overflow) = value.multipliedReportingOverflow(by: scale)
        guard !overflow else { throw view.fail("memory size \"\(text)\" overflows") }
        return kib
    }

    /// Every known capability spelling; unknown bits are refused.
    func decodeCapabilities(_ view: NodeView, into domain: inout DomainSpec) throws {
        typealias Bits = HyperlaunchBits
        func take(_ name: String, _ table: [(UInt32, DomainCapabilities?, Bool)]) throws {
            guard let value = try view.u32(name) else { return }
            var rest = value
            for (bit, capability, boot) in table where value & bit != 0 {
                rest &= ~bit
                if let capability { domain.capabilities.formUnion(capability) }
                if boot { domain.isBootDomain = true }
            }
            guard rest == 0 else {
                throw view.fail("\(name) 0x\(String(value, radix: 16)) has unknown or unsupported bits 0x\(String(rest, radix: 16))")
            }
        }
        try take("permissions", [(Bits.permissionControl, .control, false), (Bits.permissionHardware, .hardware, false)])
        if let functions = try view.u32("functions") {
            if functions & Bits.functionCrash != 0 { throw view.fail("functions: the crash domain (FUNCTION_CRASH) is not supported") }
            if functions & Bits.functionLegacyDom0 != 0 {
                throw view.fail("functions: FUNCTION_LEGACY_DOM0 is not supported; give permissions and functions explicitly")
            }
        }
        try take(
            "functions",
            [(Bits.functionBoot, nil, true), (Bits.functionConsole, .console, false), (Bits.functionXenstore, .xenstore, false)])
        if let role = try view.u32("role"), role & Bits.roleUnbounded != 0 {
            throw view.fail("role: ROLE_UNBOUNDED_DOMAIN is not supported")
        }
        try take(
            "role",
            [(Bits.roleControl, .control, false), (Bits.roleHardware, .hardware, false), (Bits.roleXenstore, .xenstore, false)])
        try take("capability", [(Bits.capabilityConsoleIO, .console, false)])
        try take(
            "capabilities",
            [(Bits.capsControl, .control, false), (Bits.capsHardware, .hardware, false), (Bits.capsXenstore, .xenstore, false)])
    }

    /// A module node: its kind, its command line, and the file domb reads — `domb,path` or
    /// `xen,uefi-binary` (relative to the description's directory), or a `--module` option
    /// (which wins). A module the tree locates only in memory (`reg` in its domain's cells,
    /// `module-index`) needs the option.
    mutating func decodeModule(_ view: NodeView, kind: ModuleKind, domain: String) throws -> ModuleSpec {
        try view.rejectUnknown([
            "compatible", "domb,path", "xen,uefi-binary", "bootargs", "module-index", "mb-index", "reg", "module-addr",
            "phandle", "linux,phandle",
        ])
        let index = try view.u32("module-index") ?? view.u32("mb-index")
        if index != nil && (view.raw("reg") != nil || view.raw("module-addr") != nil) {
            throw view.fail("a module has either an index or an address, never both")
        }
        let place = try reg(view)
        moduleNodes.append(view.path)
        var given: (index: Int, argument: ModuleFileArgument)?
        for (number, argument) in options.moduleFiles.enumerated()
        where argument.names(nodePath: view.path, domain: domain, nodeName: view.name, kind: kind) {
            if let other = usedModuleFiles[number] {
                throw ContextError(argument.description, ParseError.invalid("names two module nodes, \(other) and \(view.path)"))
            }
            if let given { throw view.fail("named by both \(given.argument) and \(argument)") }
            given = (number, argument)
        }
        if let given { usedModuleFiles[given.index] = view.path }
        let own = try view.string("domb,path")
        let uefi = try view.string("xen,uefi-binary")
        if own != nil && uefi != nil { throw view.fail("give domb,path or xen,uefi-binary, not both") }
        let path: String
        if let given {
            if let named = own ?? uefi {
                notes.append(LaunchNote(kind: .remark, key: view.path, message: "\(given.argument) replaces the file the tree names, \(named)"))
            }
            path = given.argument.path
        } else if let named = own ?? uefi {
            path = named
        } else if options.placeholders {
            path = "placeholder\(view.path)"
        } else {
            let located =
                if let place { "in memory at reg \(NodeView.cellText(place.cells)) (address 0x\(String(place.address, radix: 16)), size 0x\(String(place.size, radix: 16)))" }
                else if let index { "the boot loader's module \(index) (module-index)" }
                else { "nowhere (no reg, module-index, xen,uefi-binary or domb,path)" }
            throw view.fail("the \(kind.rawValue) is \(located): name its file with --module \(domain)/\(kind.rawValue)=PATH")
        }
        return ModuleSpec(kind: kind, path: path, bootargs: try view.string("bootargs"))
    }

    /// A `domb,<kind>` node: the backend (`backend-domain` phandle or `backend-name`,
    /// dom0 when neither), `devid`, and the kind's settings as string properties.
    func decodeDevice(_ view: NodeView, kind: any DeviceSettings.Type, domains: [String: String]) throws -> DeviceSpec {
        let backend: BackendDomain
        let byHandle = try view.u32("backend-domain")
        let byName = try view.string("backend-name")
        switch (byHandle, byName) {
        case (.some, .some):
            throw view.fail("give backend-domain or backend-name, not both")
        case (let handle?, nil):
            let target = try resolve(handle, from: view, property: "backend-domain")
            guard let name = domains[target.path] else {
                throw view.fail("backend-domain refers to \(target.path), which is not a xen,domain node")
            }
            backend = .domain(name)
        case (nil, let name?):
            backend = BackendDomain(name: name)
        case (nil, nil):
            backend = .dom0
        }
        var named: [String: String] = [:]
        for property in view.node.properties where !LaunchBinding.deviceReserved.contains(property.name) {
            guard let value = try view.string(property.name) else { continue }
            named[property.name] = value
        }
        do {
            return DeviceSpec(try DeviceKinds.decode(kind, named), backend: backend, devid: try view.u32("devid"))
        } catch let error as DeviceSettingError {
            throw view.fail(error.message)
        }
    }

    func decodeSharedMemory(_ view: NodeView, domain: NodeView) throws -> SharedMemorySpec {
        try view.rejectUnknown(["compatible", "xen,shm-id", "xen,shared-mem", "role", "phandle", "linux,phandle"])
        guard let id = try view.string("xen,shm-id") else { throw view.fail("xen,shm-id is required") }
        // The domain's cells, inherited from above as Xen's walk inherits them (bootfdt.c process_shm_node).
        let (addressCells, sizeCells) = try cellCounts(forChildrenOf: domain)
        guard sizeCells >= 1 else { throw domain.fail("#size-cells must be 1 or 2 for xen,shared-mem") }
        guard let cells = try view.cells("xen,shared-mem") else { throw view.fail("xen,shared-mem is required") }
        let number = NodeView.number
        let full = 2 * addressCells + sizeCells
        let short = addressCells + sizeCells
        var hostAddress: UInt64?
        let guestAddress: UInt64
        let size: UInt64
        if cells.count == full {
            hostAddress = number(cells[0..<addressCells])
            guestAddress = number(cells[addressCells..<2 * addressCells])
            size = number(cells[(2 * addressCells)...])
        } else if cells.count == short {
            guestAddress = number(cells[0..<addressCells])
            size = number(cells[addressCells...])
        } else {
            throw view.fail("xen,shared-mem must be <host guest size> or <guest size> in \(addressCells)/\(sizeCells) cells")
        }
        let roleText = try view.string("role") ?? "borrower"
        guard let role = SharedMemorySpec.Role(rawValue: roleText) else {
            throw view.fail("role \"\(roleText)\" is not owner or borrower")
        }
        return SharedMemorySpec(
            id: id, domain: domain.name, hostAddress: hostAddress, guestAddress: guestAddress, size: size, role: role)
    }
}
