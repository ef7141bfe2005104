//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Which domain must run before which: a domain starts only after the Xenstore domain (if
/// one has the capability) and the backend domain of each of its devices. The one
/// dependency graph of a launch: validation reports its cycles, and its order is the
/// start order (``ValidatedLaunch/startOrder``) that the Xenstore plan, the measurements
/// and the boot follow.
struct DependencyGraph {
    /// Domain names in description order.
    let names: [String]
    /// For each domain (by index), the domains it depends on (by index), ascending.
    let dependencies: [[Int]]

    init(_ spec: LaunchSpec) {
        names = spec.domains.map(\.name)
        var index: [String: Int] = [:]
        for (position, name) in names.enumerated() where index[name] == nil { index[name] = position }
        let xenstore = spec.domains.indices.filter { spec.domains[$0].capabilities.contains(.xenstore) }
        dependencies = spec.domains.enumerated().map { position, domain in
            var needs = Set<Int>()
            for device in domain.devices {
                if case .domain(let name) = device.backend, let target = index[name], target != position { needs.insert(target) }
            }
            if !domain.capabilities.contains(.xenstore) { needs.formUnion(xenstore) }
            return needs.sorted()
        }
    }

    /// Domains in start order, ties broken by description order; nil if there is a cycle.
    var order: [String]? {
        var waiting = dependencies.map(\.count)
        var dependents = Array(repeating: [Int](), count: names.count)
        for (position, needs) in dependencies.enumerated() {
            for target in needs { dependents[target].append(position) }
        }
        // Kahn's algorithm, always taking the earliest ready domain: O(n log n + edges).
        var ready = IndexHeap(waiting.indices.filter { waiting[$0] == 0 })
        var order: [String] = []
        while let next = ready.popMin() {
            order.append(names[next])
            for dependent in dependents[next] {
                waiting[dependent] -= 1
                if waiting[dependent] == 0 { ready.insert(dependent) }
            }
        }
        return order.count == names.count ? order : nil
    }

    /// A binary min-heap of indices (the ready domains of ``order``).
    struct IndexHeap {
        private var items: [Int] = []

        init(_ initial: [Int]) {
            for item in initial { insert(item) }
        }

        mutating func insert(_ item: Int) {
            items.append(item)
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard items[child] < items[parent] else { break }
                items.swapAt(child, parent)
                child = parent
            }
        }

        mutating func popMin() -> Int? {
            guard let first = items.first else { return nil }
            let last = items.removeLast()
            guard !items.isEmpty else { return first }
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < items.count && items[left] < items[smallest] { smallest = left }
                if right < items.count && items[right] < items[smallest] { smallest = right }
                guard smallest != parent else { return first }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// Every cycle, once each, as the names along it from its first domain in
    /// description order back to that domain.
    var cycles: [[String]] {
        var state = Array(repeating: 0, count: names.count)  // 0 new, 1 on the path, 2 done
        var found: [[String]] = []
        var reported: Set<Set<Int>> = []
        for start in names.indices where state[start] == 0 {
            var stack: [(node: Int, next: Int)] = [(start, 0)]
            var path = [start]
            state[start] = 1
            while let (node, next) = stack.last {
                let targets = dependencies[node]
                guard next < targets.count else {
                    state[node] = 2
                    stack.removeLast()
                    path.removeLast()
                    continue
                }
                stack[stack.count - 1].next = next + 1
                let target = targets[next]
                switch state[target] {
                case 0:
                    state[target] = 1
                    stack.append((target, 0))
                    path.append(target)
                case 1:
                    if let at = path.firstIndex(of: target) {
                        let cycle = Array(path[at...])
                        if reported.insert(Set(cycle)).inserted { found.append((cycle + [target]).map { names[$0] }) }
                    }
                default:
                    break
                }
            }
        }
        return found
    }
}
