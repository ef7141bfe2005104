//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// The picture of a launch (`domb config show --dot`, `domb bundle show --dot`) as a
/// Graphviz DOT graph: one node per domain (name, type, domid, memory, vCPUs, capabilities,
/// start position, modules), each cpupool a cluster of its domains, one edge per PV device
/// from the frontend domain to its backend domain labelled with the device, a dashed
/// two-way edge per static event channel, and one node per shared-memory region with an
/// edge from each domain that maps it. The Xenstore domain has a double border; dom0 is
/// drawn only when it runs a backend. Deterministic: the same launch gives the same bytes.
///
/// DOT language: https://graphviz.org/doc/info/lang.html (quoted IDs; `\n` in a label
/// is a centred line break).
public enum LaunchTopology {
    /// The DOT graph of `launch`.
    /// - Parameters:
    ///   - title: the graph's caption (the file or bundle it shows).
    ///   - moduleLabel: the line shown for each module of a domain (a file name, a digest).
    public static func dot(
        _ launch: ValidatedLaunch, title: String, moduleLabel: (DomainSpec, ModuleSpec) -> String
    ) -> String {
        let spec = launch.spec
        var lines = [
            "digraph launch {",
            "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11, labelloc=t, label=\(quote(title))];",
            "  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];",
            "  edge [fontname=\"Helvetica\", fontsize=9];",
        ]
        let position = Dictionary(launch.startOrder.enumerated().map { ($1, $0 + 1) }, uniquingKeysWith: { first, _ in first })
        func node(_ domain: DomainSpec) -> String {
            var label = [domain.name, "\(domain.type.rawValue.uppercased()) \(domain.is64Bit ? "64" : "32")-bit, domid \(domain.domid.map(String.init) ?? "auto")"]
            label.append("\(domain.memoryKiB / 1024) MiB, \(domain.vcpus) vCPU\(domain.vcpus == 1 ? "" : "s")")
            let capabilities = DomainCapabilities.names.filter { domain.capabilities.contains($0.1) }.map(\.0)
            if !capabilities.isEmpty { label.append("capabilities: \(capabilities.joined(separator: ", "))") }
            if domain.isDriverDomain { label.append("driver domain") }
            var start = position[domain.name].map { "start \($0) of \(launch.startOrder.count)" } ?? "not started"
            if !domain.startOnBoot { start += ", paused" }
            label.append(start)
            label += domain.modules.map { moduleLabel(domain, $0) }
            var attributes = ["label=\(quote(label))"]
            if domain.capabilities.contains(.xenstore) { attributes.append("peripheries=2") }
            return "\(quote(domain.name)) [\(attributes.joined(separator: ", "))];"
        }

        // Domains, those of a cpupool inside its cluster (pools in description order).
        for (index, pool) in spec.cpupools.enumerated() {
            lines.append("  subgraph \(quote("cluster_\(index)")) {")
            let scheduler = pool.scheduler.map { ", \($0)" } ?? ""
            lines.append("    label=\(quote("cpupool \(pool.name): cpus \(pool.cpus.map(String.init).joined(separator: ","))\(scheduler)"));")
            lines.append("    style=dashed;")
            for domain in spec.domains where domain.cpupool == pool.name { lines.append("    " + node(domain)) }
            lines.append("  }")
        }
        let pooled = Set(spec.cpupools.map(\.name))
        for domain in spec.domains where domain.cpupool.map({ !pooled.contains($0) }) ?? true {
            lines.append("  " + node(domain))
        }
        if spec.domains.contains(where: { $0.devices.contains { $0.backend == .dom0 } }) {
            lines.append("  \(quote(BackendDomain.dom0Name)) [label=\(quote([BackendDomain.dom0Name, "dom0: runs backends"])), style=dashed];")
        }

        // PV devices: frontend → backend.
        for domain in spec.domains {
            for resolved in launch.devices[domain.name] ?? [] {
                let device = resolved.device
                // A kind's first two settings are the ones that say which device it is
                // (vif: mac, bridge; vbd: target, vdev).
                let settings = device.settings.namedSettings.prefix(2).map { "\($0.name) \($0.value)" }
                let label = ["\(device.kind) \(resolved.devid)"] + settings
                lines.append("  \(quote(domain.name)) -> \(quote(device.backend.name)) [label=\(quote(label))];")
            }
        }
        for channel in spec.eventChannels {
            let label = "evtchn \(channel.local.domain):\(channel.local.port) ↔ \(channel.remote.domain):\(channel.remote.port)"
            lines.append(
                "  \(quote(channel.local.domain)) -> \(quote(channel.remote.domain)) [dir=both, style=dashed, color=gray40, label=\(quote(label))];")
        }
        for id in orderedUnique(spec.sharedMemory.map(\.id)) {
            let regions = spec.sharedMemory.filter { $0.id == id }
            let size = regions.first.map { "size 0x\(String($0.size, radix: 16))" } ?? ""
            lines.append("  \(quote("shm:\(id)")) [shape=note, style=\"\", label=\(quote(["shared memory \(id)", size]))];")
            for region in regions {
                let label = "\(region.role.rawValue) at 0x\(String(region.guestAddress, radix: 16))"
                lines.append("  \(quote(region.domain)) -> \(quote("shm:\(id)")) [style=dotted, arrowhead=none, label=\(quote(label))];")
            }
        }
        if spec.staticMode {
            lines.append("  \(quote("static mode")) [shape=plaintext, label=\(quote("static mode: no domain keeps the control capability"))];")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A module's line in a description's picture: its kind and file name.
    public static func fileLabel(_ domain: DomainSpec, _ module: ModuleSpec) -> String {
        "\(module.kind.rawValue): \(module.path.split(separator: "/").last.map(String.init) ?? module.path)"
    }

    /// A DOT quoted string of `lines` joined by centred line breaks. Control characters
    /// are escaped as a terminal would see them (``TerminalText``); `"` and `\` are
    /// escaped for DOT.
    static func quote(_ lines: [String]) -> String {
        "\"" + lines.map(escape).joined(separator: "\\n") + "\""
    }

    static func quote(_ text: String) -> String { quote([text]) }

    private static func escape(_ text: String) -> String {
        var out = ""
        for character in TerminalText.escape(text) {
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out
    }

    private static func orderedUnique(_ items: [String]) -> [String] {
        var seen = Set<String>()
        return items.filter { seen.insert($0).inserted }
    }
}
