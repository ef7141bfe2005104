//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The order in which domains are unpaused: a domain runs only after every domain it
/// depends on — the xenstore domain (if one has the capability) and the backend domain of
/// each of its devices. Ties keep the order of the launch description, so the result is
/// deterministic.
public enum LaunchOrder {
    /// - Returns: domain names in start order.
    /// - Throws: ``ParseError`` naming the domains involved when a backend is unknown or
    ///   the dependencies form a cycle.
    public static func startOrder(of spec: LaunchSpec) throws(ParseError) -> [String] {
        let names = spec.domains.map(\.name)
        let known = Set(names)
        let xenstoreDomains = spec.domains.filter { $0.capabilities.contains(.xenstore) }.map(\.name)
        var dependencies: [String: Set<String>] = [:]
        for domain in spec.domains {
            var needs = Set<String>()
            for device in domain.devices where !isDom0(device.backend) {
                guard known.contains(device.backend) else {
                    throw .invalid("domain \(domain.name): \(device.kind.rawValue) backend \"\(device.backend)\" is not a domain of this launch")
                }
                if device.backend != domain.name { needs.insert(device.backend) }
            }
            if !domain.capabilities.contains(.xenstore) {
                needs.formUnion(xenstoreDomains)
            }
            dependencies[domain.name] = needs
        }
        var order: [String] = []
        var placed = Set<String>()
        while order.count < names.count {
            guard let next = names.first(where: { !placed.contains($0) && (dependencies[$0] ?? []).isSubset(of: placed) })
            else {
                let stuck = names.filter { !placed.contains($0) }
                throw .invalid("backend dependencies form a cycle among domains: \(stuck.joined(separator: ", "))")
            }
            order.append(next)
            placed.insert(next)
        }
        return order
    }

    /// Names that mean the control domain running the toolstack.
    public static func isDom0(_ name: String) -> Bool {
        name == "Domain-0" || name == "dom0" || name == "0"
    }
}
