//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFDT

/// Writes a validated launch in the one canonical form documented in docs/binding.md
/// ("Canonical form"). The output depends only on the model: same model, same bytes.
public enum LaunchEncoder {
    /// The canonical tree (typed values, labels for references).
    /// - Throws: `ParseError` only if a name cannot be a node name or two nodes would
    ///   collide, which validation rules out.
    public static func tree(_ launch: ValidatedLaunch) throws(ParseError) -> DTNode {
        let spec = canonicalized(launch.spec)
        var labels = LabelMaker()
        var domainLabels: [String: String] = [:]
        for domain in spec.domains {
            guard LaunchLimits.isValidName(domain.name) else {
                throw .invalid("domain \"\(domain.name)\" cannot be a device-tree node name")
            }
            guard domainLabels[domain.name] == nil else { throw .invalid("domain \"\(domain.name)\" is described twice") }
            domainLabels[domain.name] = labels.make(domain.name)
        }
        var poolLabels: [String: String] = [:]
        for pool in spec.cpupools {
            guard LaunchLimits.isValidName(pool.name), pool.name != "hypervisor" else {
                throw .invalid("cpupool \"\(pool.name)\" cannot be a node name under /chosen")
            }
            guard poolLabels[pool.name] == nil else { throw .invalid("cpupool \"\(pool.name)\" is described twice") }
            poolLabels[pool.name] = labels.make("pool_" + pool.name)
        }

        // Event-channel endpoint nodes: per domain, in channel order.
        struct Endpoint { var node: String; var label: String; var port: UInt32; var peerLabel: String }
        var endpoints: [String: [Endpoint]] = [:]
        var counters: [String: Int] = [:]
        for channel in spec.eventChannels {
            let localIndex = counters[channel.local.domain, default: 0]
            counters[channel.local.domain] = localIndex + 1
            let remoteIndex = counters[channel.remote.domain, default: 0]
            counters[channel.remote.domain] = remoteIndex + 1
            for (end, index, peer, peerIndex) in [
                (channel.local, localIndex, channel.remote, remoteIndex), (channel.remote, remoteIndex, channel.local, localIndex),
            ] {
                guard domainLabels[end.domain] != nil else {
                    throw .invalid("event channel endpoint names unknown domain \"\(end.domain)\"")
                }
                let label = "\(domainLabels[end.domain] ?? "")_evtchn\(index)"
                let peerLabel = "\(domainLabels[peer.domain] ?? "")_evtchn\(peerIndex)"
                endpoints[end.domain, default: []].append(
                    Endpoint(node: "evtchn-\(index)", label: label, port: end.port, peerLabel: peerLabel))
            }
        }
        // Each domain's endpoints were appended in channel order, so evtchn-0, -1, … are in order.

        var hypervisor = DTNode(
            "hypervisor", properties: [DTProperty("compatible", .strings(LaunchBinding.hypervisorCompatible))])
        if spec.staticMode { hypervisor.properties.append(DTProperty("domb,static-mode", .empty)) }

        for domain in spec.domains {
            var node = DTNode(domain.name, label: domainLabels[domain.name])
            var props: [DTProperty] = [
                DTProperty("compatible", .string(LaunchBinding.domainCompatible)),
                DTProperty("domid", .u32(domain.domid ?? 0)),
            ]
            if let uuid = domain.uuid {
                guard let bytes = uuidBytes(uuid) else { throw .invalid("domain \"\(domain.name)\": uuid \"\(uuid)\" is malformed") }
                props.append(DTProperty("domain-uuid", .bytes(bytes)))
            }
            var mode: UInt32 = 0
            switch domain.type {
            case .pv: mode |= HyperlaunchBits.modeParavirtualized
            case .pvh: break
            case .hvm: mode |= HyperlaunchBits.modeEnableDeviceModel
            }
            if domain.is64Bit { mode |= HyperlaunchBits.modeLong }
            props.append(DTProperty("mode", .u32(mode)))
            var permissions: UInt32 = 0
            if domain.capabilities.contains(.control) { permissions |= HyperlaunchBits.permissionControl }
            if domain.capabilities.contains(.hardware) { permissions |= HyperlaunchBits.permissionHardware }
            var functions: UInt32 = 0
            if domain.isBootDomain { functions |= HyperlaunchBits.functionBoot }
            if domain.capabilities.contains(.console) { functions |= HyperlaunchBits.functionConsole }
            if domain.capabilities.contains(.xenstore) { functions |= HyperlaunchBits.functionXenstore }
            if permissions != 0 { props.append(DTProperty("permissions", .u32(permissions))) }
            if functions != 0 { props.append(DTProperty("functions", .u32(functions))) }
            props.append(DTProperty("memory", .u64(domain.memoryKiB)))
            if let minimum = domain.minMemoryKiB { props.append(DTProperty("mem-min", .u64(minimum))) }
            if let maximum = domain.maxMemoryKiB { props.append(DTProperty("mem-max", .u64(maximum))) }
            props.append(DTProperty("cpus", .u32(domain.vcpus)))
            if let maxVcpus = domain.maxVcpus { props.append(DTProperty("domb,max-vcpus", .u32(maxVcpus))) }
            props += Self.affinity(domain.cpuAffinity, prefix: "domb,cpu-affinity", perVCPU: "domb,vcpu-affinity")
            props += Self.affinity(domain.softCPUAffinity, prefix: "domb,cpu-soft-affinity", perVCPU: "domb,vcpu-soft-affinity")
            if domain.isDriverDomain { props.append(DTProperty("domb,driver-domain", .empty)) }
            if let pool = domain.cpupool {
                guard let label = poolLabels[pool] else {
                    throw .invalid("domain \"\(domain.name)\": cpupool \"\(pool)\" is not described")
                }
                props.append(DTProperty("domain-cpupool", .reference(label)))
            }
            if let enhanced = domain.enhanced { props.append(DTProperty("xen,enhanced", .string(enhanced.rawValue))) }
            if let p2m = domain.p2mMemoryMB { props.append(DTProperty("xen,domain-p2m-mem-mb", .u32(p2m))) }
            if let label = domain.securityID { props.append(DTProperty("security-id", .string(label))) }
            if !domain.startOnBoot { props.append(DTProperty("domb,paused", .empty)) }
            for (name, action) in [
                ("domb,on-poweroff", domain.onPoweroff), ("domb,on-reboot", domain.onReboot), ("domb,on-crash", domain.onCrash),
            ] {
                if let action { props.append(DTProperty(name, .string(action.rawValue))) }
            }
            if let secrets = domain.secrets, !secrets.isEmpty { props.append(DTProperty("domb,secrets", .strings(secrets.map(\.text)))) }
            let regions = spec.sharedMemory.filter { $0.domain == domain.name }
            if !regions.isEmpty {
                props.append(DTProperty("#address-cells", .u32(2)))
                props.append(DTProperty("#size-cells", .u32(2)))
            }
            node.properties = props

            for module in domain.modules {
                var moduleNode = DTNode(
                    module.kind.rawValue,
                    properties: [
                        DTProperty("compatible", .strings(LaunchBinding.moduleCompatible(module.kind))),
                        DTProperty("domb,path", .string(module.path)),
                    ])
                if let bootargs = module.bootargs { moduleNode.properties.append(DTProperty("bootargs", .string(bootargs))) }
                guard node.child(moduleNode.name) == nil else {
                    throw .invalid("domain \"\(domain.name)\" has more than one \(module.kind.rawValue) module")
                }
                node.children.append(moduleNode)
            }
            var deviceIndex: [DeviceKind: Int] = [:]
            for device in domain.devices {
                let index = deviceIndex[device.kind, default: 0]
                deviceIndex[device.kind] = index + 1
                var deviceNode = DTNode(
                    "\(device.kind.rawValue)-\(index)",
                    properties: [DTProperty("compatible", .string(LaunchBinding.deviceCompatible(device.kind)))])
                switch device.backend {
                case .dom0:
                    break
                case .domain(let name):
                    if let label = domainLabels[name] {
                        deviceNode.properties.append(DTProperty("backend-domain", .reference(label)))
                    } else {
                        deviceNode.properties.append(DTProperty("backend-name", .string(name)))
                    }
                }
                if let devid = device.devid { deviceNode.properties.append(DTProperty("devid", .u32(devid))) }
                for (key, value) in device.settings.namedSettings {
                    guard !LaunchBinding.deviceReserved.contains(key), isValidPropertyName(key) else {
                        throw .invalid("domain \"\(domain.name)\" \(device.kind) \(index): setting \"\(key)\" cannot be a property")
                    }
                    deviceNode.properties.append(DTProperty(key, .string(value)))
                }
                node.children.append(deviceNode)
            }
            for endpoint in endpoints[domain.name] ?? [] {
                node.children.append(
                    DTNode(
                        endpoint.node, label: endpoint.label,
                        properties: [
                            DTProperty("compatible", .string(LaunchBinding.evtchnCompatible)),
                            DTProperty("xen,evtchn", .cells([.value(endpoint.port), .reference(endpoint.peerLabel)])),
                        ]))
            }
            for (index, region) in regions.enumerated() {
                var cells: [DTCell] = []
                for value in [region.hostAddress, region.guestAddress, region.size].compactMap({ $0 }) {
                    cells += [.value(UInt32(truncatingIfNeeded: value >> 32)), .value(UInt32(truncatingIfNeeded: value))]
                }
                node.children.append(
                    DTNode(
                        "shm-\(index)",
                        properties: [
                            DTProperty("compatible", .string(LaunchBinding.sharedMemoryCompatible)),
                            DTProperty("xen,shm-id", .string(region.id)),
                            DTProperty("xen,shared-mem", .cells(cells)),
                            DTProperty("role", .string(region.role.rawValue)),
                        ]))
            }
            hypervisor.children.append(node)
        }

        var chosen = DTNode("chosen")
        var root = DTNode("")
        if !spec.cpupools.isEmpty {
            var cpuNodes: [UInt32: String] = [:]
            for cpu in Set(spec.cpupools.flatMap(\.cpus)).sorted() { cpuNodes[cpu] = "cpu\(cpu)" }
            root.children.append(
                DTNode(
                    "cpus",
                    properties: [DTProperty("#address-cells", .u32(1)), DTProperty("#size-cells", .u32(0))],
                    children: cpuNodes.keys.sorted().map { cpu in
                        DTNode(
                            "cpu@\(String(cpu, radix: 16))", label: cpuNodes[cpu],
                            properties: [DTProperty("device_type", .string("cpu")), DTProperty("reg", .u32(cpu))])
                    }))
            for pool in spec.cpupools {
                var node = DTNode(
                    pool.name, label: poolLabels[pool.name],
                    properties: [
                        DTProperty("compatible", .string(LaunchBinding.cpupoolCompatible)),
                        DTProperty("cpupool-cpus", .cells(pool.cpus.map { .reference(cpuNodes[$0] ?? "") })),
                    ])
                if let scheduler = pool.scheduler { node.properties.append(DTProperty("cpupool-sched", .string(scheduler))) }
                chosen.children.append(node)
            }
        }
        chosen.children.append(hypervisor)
        root.children.append(chosen)
        return root
    }

    /// The canonical DTB.
    public static func dtb(_ launch: ValidatedLaunch) throws -> [UInt8] {
        try FDT.serialize(tree(launch))
    }

    /// The canonical DTS text.
    public static func dts(_ launch: ValidatedLaunch) throws(ParseError) -> String {
        DTSWriter.render(
            try tree(launch),
            header: ["Hyperlaunch launch description (domb canonical form, docs/binding.md).",
                     "Module paths are relative to this file's directory."])
    }

    /// The model in the order the decoder produces: event channels with the endpoint in
    /// the earlier domain as `local`, sorted by that endpoint; UUIDs in lower case.
    public static func canonicalized(_ spec: LaunchSpec) -> LaunchSpec {
        var spec = spec
        for index in spec.domains.indices {
            if let uuid = spec.domains[index].uuid { spec.domains[index].uuid = uuid.lowercased() }
        }
        var position: [String: Int] = [:]
        for (index, domain) in spec.domains.enumerated() where position[domain.name] == nil { position[domain.name] = index }
        let rank = { (name: String) in position[name] ?? Int.max }
        let swapped = spec.eventChannels.map { channel in
            rank(channel.remote.domain) < rank(channel.local.domain)
                ? EventChannelSpec(local: channel.remote, remote: channel.local) : channel
        }
        // Stable sort by the local domain: the order the decoder meets the endpoints in.
        spec.eventChannels = swapped.enumerated().sorted {
            (rank($0.element.local.domain), $0.offset) < (rank($1.element.local.domain), $1.offset)
        }.map(\.element)
        spec.sharedMemory = spec.sharedMemory.enumerated().sorted {
            (rank($0.element.domain), $0.offset) < (rank($1.element.domain), $1.offset)
        }.map(\.element)
        return spec
    }

    /// The property of one vCPU affinity (docs/binding.md; ``LaunchDecoder`` reads it back).
    static func affinity(_ affinity: VCPUAffinity?, prefix: String, perVCPU: String) -> [DTProperty] {
        switch affinity {
        case nil: return []
        case .allVCPUs(.cpus(let cpus))?: return [DTProperty(prefix, .cells(cpus.map { .value($0) }))]
        case .allVCPUs(.allBut(let cpus))?:
            return [DTProperty("\(prefix)-except", cpus.isEmpty ? .empty : .cells(cpus.map { .value($0) }))]
        case .allVCPUs(let set)?: return [DTProperty("\(prefix)-cpulist", .strings([set.cpuList]))]  // node terms
        case .perVCPU?: return [DTProperty(perVCPU, .strings(affinity?.cpuLists ?? []))]
        }
    }

    static func uuidBytes(_ uuid: String) -> [UInt8]? {
        guard let canonical = XenstoreUUID.canonical(uuid) else { return nil }
        let hex = Array(canonical.filter { $0 != "-" })
        var bytes: [UInt8] = []
        var index = 0
        while index + 1 < hex.count {
            guard let byte = UInt8(String(hex[index...index + 1]), radix: 16) else { return nil }
            bytes.append(byte)
            index += 2
        }
        return bytes.count == 16 ? bytes : nil
    }

    /// Property names: DT spec §2.2.4.1 characters, at most 31.
    static func isValidPropertyName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 31 else { return false }
        return name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || [UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "?"),
                    UInt8(ascii: "#"), UInt8(ascii: "-")].contains(b)
        }
    }
}

/// Makes DTS labels ([A-Za-z_][A-Za-z0-9_]*) from names, unique within one tree.
private struct LabelMaker {
    var used: Set<String> = []

    mutating func make(_ name: String) -> String {
        var base = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        if let first = base.first, first.isNumber { base = "_" + base }
        var label = base
        var suffix = 1
        while used.contains(label) {
            suffix += 1
            label = "\(base)_\(suffix)"
        }
        used.insert(label)
        return label
    }
}
