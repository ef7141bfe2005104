//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// Reads a Hyperlaunch launch description from a device tree, accepting every spelling
/// docs/binding.md lists. Unknown properties and nodes are errors (fail closed), each
/// naming the node path.
public enum LaunchDecoder {
    /// Decodes a DTB.
    /// - Throws: `ParseError` for a malformed blob; `ContextError` naming the node for a
    ///   well-formed blob that is not a valid launch description.
    public static func decode(dtb bytes: [UInt8]) throws -> LaunchDocument {
        try decode(tree: FDT.parse(bytes))
    }

    /// Decodes a tree read from a DTB (raw-valued properties).
    public static func decode(tree root: DTNode) throws -> LaunchDocument {
        var decoder = Decoder(root: root)
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

private struct Decoder {
    let root: DTNode
    var phandles: [UInt32: String] = [:]  // phandle → node path
    var nodesByPath: [String: NodeView] = [:]
    var notes: [String] = []

    init(root: DTNode) { self.root = root }

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

    mutating func run() throws -> LaunchDocument {
        let top = NodeView(node: root, path: "/")
        try index(top)
        guard let chosenNode = root.child("chosen") else {
            throw top.fail("no /chosen node: a launch description lives in /chosen/hypervisor")
        }
        let chosen = top.child(chosenNode)
        let base: NodeView
        let isHyperlaunch: Bool
        if let hypervisor = chosenNode.child("hypervisor") {
            base = chosen.child(hypervisor)
            guard base.compatible.contains("hypervisor,xen") else {
                throw base.fail("compatible must include \"hypervisor,xen\"")
            }
            try base.rejectUnknown(["compatible", "domb,static-mode", "#address-cells", "#size-cells", "phandle", "linux,phandle", "bootargs"])
            isHyperlaunch = true
        } else if chosenNode.children.contains(where: { NodeView(node: $0, path: "").compatible.contains(LaunchBinding.domainCompatible) }) {
            // Dom0less: domains directly under /chosen.
            base = chosen
            isHyperlaunch = false
        } else {
            throw chosen.fail("no hypervisor node (compatible \"hypervisor,xen\") and no \"xen,domain\" nodes")
        }
        var spec = LaunchSpec()
        spec.staticMode = isHyperlaunch ? try base.flag("domb,static-mode") : false

        // Cpupools: under /chosen (dom0less) or the hypervisor node.
        var poolByPath: [String: String] = [:]
        var poolViews = chosenNode.children.map(chosen.child)
        if isHyperlaunch { poolViews += base.node.children.map(base.child) }
        for view in poolViews where view.compatible.contains(LaunchBinding.cpupoolCompatible) {
            try view.rejectUnknown(["compatible", "cpupool-cpus", "cpupool-sched", "phandle", "linux,phandle"])
            guard let handles = try view.cells("cpupool-cpus") else { throw view.fail("cpupool-cpus is required") }
            var cpus: [UInt32] = []
            for handle in handles {
                let cpu = try resolve(handle, from: view, property: "cpupool-cpus")
                guard let reg = try cpu.cells("reg"), reg.count == 1 else {
                    throw cpu.fail("a CPU node referenced by \(view.path) needs reg = <cpu number>")
                }
                if let type = try cpu.string("device_type"), type != "cpu" {
                    throw cpu.fail("device_type is \"\(type)\", not \"cpu\"")
                }
                cpus.append(reg[0])
            }
            spec.cpupools.append(CPUPoolSpec(name: view.name, cpus: cpus, scheduler: try view.string("cpupool-sched")))
            poolByPath[view.path] = view.name
        }

        // Domains.
        let domainViews = base.node.children.map(base.child).filter { $0.compatible.contains(LaunchBinding.domainCompatible) }
        var domainByPath: [String: String] = [:]
        for view in domainViews { domainByPath[view.path] = view.name }
        var origins: [String: String] = [:]
        var endpointNodes: [(view: NodeView, domain: String, port: UInt32, peer: String)] = []
        for view in domainViews {
            var domain = try decodeDomain(view, pools: poolByPath, domains: domainByPath)
            origins[domain.name] = view.path
            // Event channels and shared memory live in the domain node.
            for child in view.node.children.map(view.child) {
                if child.compatible.contains(LaunchBinding.evtchnCompatible) || child.compatible.contains("xen,evtchn") {
                    try child.rejectUnknown(["compatible", "xen,evtchn", "phandle", "linux,phandle"])
                    guard let cells = try child.cells("xen,evtchn"), cells.count == 2 else {
                        throw child.fail("xen,evtchn must be <local-port &remote-node>")
                    }
                    let peer = try resolve(cells[1], from: child, property: "xen,evtchn")
                    endpointNodes.append((child, domain.name, cells[0], peer.path))
                } else if child.compatible.contains(LaunchBinding.sharedMemoryCompatible) {
                    spec.sharedMemory.append(try decodeSharedMemory(child, domain: view))
                }
            }
            domain.devices = domain.devices.map { $0.normalized() }
            spec.domains.append(domain)
        }
        if !isHyperlaunch {
            notes.append("read as a dom0less /chosen (no /chosen/hypervisor node)")
        }
        for view in base.node.children.map(base.child) where view.compatible.contains(LaunchBinding.configCompatible) {
            notes.append("\(view.path): Xen's own modules (xen,config) are not part of the model and were ignored")
        }
        if isHyperlaunch {
            for view in base.node.children.map(base.child) {
                let known = [LaunchBinding.domainCompatible, LaunchBinding.cpupoolCompatible, LaunchBinding.configCompatible]
                if !view.compatible.contains(where: known.contains) {
                    throw view.fail("unknown node under the hypervisor node (compatible \(view.compatible))")
                }
            }
        }

        // Pair event-channel endpoints: each must name the other.
        let byPath = Dictionary(endpointNodes.map { ($0.view.path, $0) }, uniquingKeysWith: { first, _ in first })
        var paired: Set<String> = []
        for endpoint in endpointNodes where !paired.contains(endpoint.view.path) {
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
        return LaunchDocument(spec: spec, origins: origins, notes: notes)
    }

    func decodeDomain(_ view: NodeView, pools: [String: String], domains: [String: String]) throws -> DomainSpec {
        try view.rejectUnknown([
            "compatible", "domid", "domain-uuid", "mode", "permissions", "functions", "role", "capability", "capabilities",
            "memory", "mem-min", "mem-max", "cpus", "domb,max-vcpus", "domb,cpu-affinity", "domain-cpupool",
            "xen,enhanced", "xen,domain-p2m-mem-mb", "security-id", "domb,paused", "domb,on-poweroff", "domb,on-reboot",
            "domb,on-crash", "domb,driver-domain", "#address-cells", "#size-cells", "phandle", "linux,phandle",
        ])
        guard let mode = try view.u32("mode") else { throw view.fail("mode is required (PV 1, HVM 2, 64-bit 4)") }
        let knownModeBits = HyperlaunchBits.modeParavirtualized | HyperlaunchBits.modeEnableDeviceModel
            | HyperlaunchBits.modeLong | HyperlaunchBits.modeStartOnBoot
        guard mode & ~knownModeBits == 0 else {
            throw view.fail("mode 0x\(String(mode, radix: 16)) has unknown bits 0x\(String(mode & ~knownModeBits, radix: 16))")
        }
        let type: GuestType
        switch (mode & HyperlaunchBits.modeParavirtualized != 0, mode & HyperlaunchBits.modeEnableDeviceModel != 0) {
        case (true, true): throw view.fail("mode sets both PARAVIRTUALIZED and ENABLE_DEVICE_MODEL")
        case (true, false): type = .pv
        case (false, true): type = .hvm
        case (false, false): type = .pvh
        }
        let memory = try decodeMemory(view)
        var domain = DomainSpec(
            name: view.name, type: type, is64Bit: mode & HyperlaunchBits.modeLong != 0, memoryKiB: memory.target)
        domain.minMemoryKiB = memory.min
        domain.maxMemoryKiB = memory.max
        if let domid = try view.u32("domid"), domid != 0 { domain.domid = domid }
        if let bytes = view.raw("domain-uuid") {
            guard bytes.count == 16 else { throw view.fail("domain-uuid must be 16 bytes, not \(bytes.count)") }
            let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
                String(hex.dropFirst(range.lowerBound).prefix(range.count))
            }
            domain.uuid = parts.joined(separator: "-")
        }
        domain.vcpus = try view.u32("cpus") ?? 1
        domain.maxVcpus = try view.u32("domb,max-vcpus")
        domain.cpuAffinity = try view.cells("domb,cpu-affinity")
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
                    throw view.fail("xen,enhanced \"\(text)\" is not enabled, disabled or no-xenstore")
                }
                domain.enhanced = value
            }
        }
        domain.p2mMemoryMB = try view.u32("xen,domain-p2m-mem-mb")
        domain.securityID = try view.string("security-id")
        domain.startOnBoot = !(try view.flag("domb,paused"))
        domain.driverDomain = try view.flag("domb,driver-domain")
        for (name, path) in [("domb,on-poweroff", \DomainSpec.onPoweroff), ("domb,on-reboot", \.onReboot), ("domb,on-crash", \.onCrash)] {
            if let text = try view.string(name) {
                guard let action = LifecycleAction(rawValue: text) else {
                    throw view.fail("\(name) \"\(text)\" is not one of \(LifecycleAction.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                domain[keyPath: path] = action
            }
        }

        for child in view.node.children.map(view.child) {
            let compatible = child.compatible
            if compatible.isEmpty { throw child.fail("node has no compatible string") }
            if compatible.contains(LaunchBinding.evtchnCompatible) || compatible.contains("xen,evtchn")
                || compatible.contains(LaunchBinding.sharedMemoryCompatible)
            {
                continue
            }
            if let kind = moduleKind(compatible) {
                domain.modules.append(try decodeModule(child, kind: kind))
            } else if let kind = DeviceSpec.Kind.allCases.first(where: { compatible.contains(LaunchBinding.deviceCompatible($0)) }) {
                domain.devices.append(try decodeDevice(child, kind: kind, domains: domains))
            } else if compatible.contains(where: { $0.hasPrefix("module,") || $0.hasPrefix("multiboot,") }) {
                throw child.fail("module kind \(compatible) is not supported in a domain (kernel, ramdisk, device-tree, config, firmware)")
            } else {
                throw child.fail("unknown node (compatible \(compatible)) in a domain")
            }
        }
        return domain
    }

    func moduleKind(_ compatible: [String]) -> ModuleKind? {
        for entry in compatible {
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

    func decodeModule(_ view: NodeView, kind: ModuleKind) throws -> ModuleSpec {
        try view.rejectUnknown([
            "compatible", "domb,path", "bootargs", "module-index", "mb-index", "reg", "module-addr", "phandle", "linux,phandle",
        ])
        let indexed = view.raw("module-index") != nil || view.raw("mb-index") != nil
        let addressed = view.raw("reg") != nil || view.raw("module-addr") != nil
        if indexed && addressed { throw view.fail("a module has either an index or an address, never both") }
        guard let path = try view.string("domb,path") else {
            throw view.fail("domb,path is required: domb loads and measures the module from this file")
        }
        return ModuleSpec(kind: kind, path: path, bootargs: try view.string("bootargs"))
    }

    func decodeDevice(_ view: NodeView, kind: DeviceSpec.Kind, domains: [String: String]) throws -> DeviceSpec {
        var device = DeviceSpec(kind: kind)
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
            device.backend = name
        case (nil, let name?):
            device.backend = name
        case (nil, nil):
            device.backend = dom0Name
        }
        device.devid = try view.u32("devid")
        let allowed = DeviceSpec.knownSettings[kind] ?? []
        for property in view.node.properties where !LaunchBinding.deviceReserved.contains(property.name) {
            guard allowed.contains(property.name) else {
                throw view.fail(
                    "unknown property \"\(property.name)\" for a \(kind.rawValue) (settings: \(allowed.sorted().joined(separator: " ")))")
            }
            guard let value = try view.string(property.name) else { continue }
            device.settings[property.name] = value
        }
        return device
    }

    func decodeSharedMemory(_ view: NodeView, domain: NodeView) throws -> SharedMemorySpec {
        try view.rejectUnknown(["compatible", "xen,shm-id", "xen,shared-mem", "role", "phandle", "linux,phandle"])
        guard let id = try view.string("xen,shm-id") else { throw view.fail("xen,shm-id is required") }
        let addressCells = Int(try domain.u32("#address-cells") ?? 2)
        let sizeCells = Int(try domain.u32("#size-cells") ?? 2)
        guard (1...2).contains(addressCells), (1...2).contains(sizeCells) else {
            throw domain.fail("#address-cells and #size-cells must be 1 or 2")
        }
        guard let cells = try view.cells("xen,shared-mem") else { throw view.fail("xen,shared-mem is required") }
        func number(_ slice: ArraySlice<UInt32>) -> UInt64 { slice.reduce(0) { $0 << 32 | UInt64($1) } }
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
