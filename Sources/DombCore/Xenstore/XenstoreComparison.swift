//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// How a plan differs from a live tree (`xenstore-ls -f -p` of an `xl create`d domain).
public struct XenstoreComparison: Hashable, Sendable, CustomStringConvertible {
    public enum Difference: Hashable, Sendable, CustomStringConvertible {
        /// Planned but not in the tree.
        case missing(path: String)
        case value(path: String, planned: String, actual: String)
        case perms(path: String, planned: [XenstorePermission], actual: [XenstorePermission])
        /// In the tree, inside a subtree the plan owns, but not planned.
        case extra(path: String, value: String)

        public var description: String {
            switch self {
            case .missing(let path): "missing: \(path)"
            case .value(let path, let planned, let actual): "value: \(path) planned \"\(planned)\" actual \"\(actual)\""
            case .perms(let path, let planned, let actual):
                "perms: \(path) planned (\(planned.map(\.description).joined(separator: ","))) actual (\(actual.map(\.description).joined(separator: ",")))"
            case .extra(let path, let value): "extra: \(path) = \"\(value)\""
            }
        }
    }

    public var differences: [Difference]
    public var isEqual: Bool { differences.isEmpty }
    public var description: String {
        differences.isEmpty ? "equal" : differences.map(\.description).joined(separator: "\n")
    }
}

/// What a comparison forgives: paths matched by glob patterns (`*` one component, `**`
/// any number of them).
public struct XenstoreComparisonOptions: Hashable, Sendable {
    /// Nodes whose value may differ (the guest, backends or daemons change them).
    public var ignoreValues: [String]
    /// Unplanned nodes that may exist (written by the guest, drivers or daemons).
    public var ignoreExtras: [String]
    /// Planned nodes that may be absent.
    public var ignoreMissing: [String]

    public init(ignoreValues: [String] = [], ignoreExtras: [String] = [], ignoreMissing: [String] = []) {
        self.ignoreValues = ignoreValues
        self.ignoreExtras = ignoreExtras
        self.ignoreMissing = ignoreMissing
    }

    /// Exact: for a domain created paused, before any backend ran.
    public static let strict = XenstoreComparisonOptions()

    /// For a running domain: what frontends, backends, hotplug scripts, xenconsoled and
    /// the guest write once it starts (device states and features, `tty`, guest features).
    public static let running = XenstoreComparisonOptions(
        ignoreValues: [
            "/local/domain/*/device/*/*/state", "/local/domain/*/backend/*/*/*/state",
            "/local/domain/*/backend/*/*/*/hotplug-status",
            "/local/domain/*/control/*", "/local/domain/*/device/suspend/event-channel",
            "/local/domain/*/memory/target",
        ],
        ignoreExtras: [
            "/local/domain/*/device/*/*/**", "/local/domain/*/backend/*/*/*/**", "/local/domain/*/console/**",
            "/local/domain/*/data/**", "/local/domain/*/drivers/**", "/local/domain/*/feature/**",
            "/local/domain/*/attr/**", "/local/domain/*/error/**", "/local/domain/*/control/**",
            "/local/domain/*/device/suspend/**", "/local/domain/*/image/**", "/local/domain/*/serial/**",
        ])

    /// Whether `path` matches `pattern`.
    public static func matches(_ path: String, _ pattern: String) -> Bool {
        match(Array(path.split(separator: "/")), Array(pattern.split(separator: "/")))
    }

    private static func match(_ path: [Substring], _ pattern: [Substring]) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            for skip in 0...path.count where match(Array(path[skip...]), Array(pattern.dropFirst())) { return true }
            return false
        }
        guard let head = path.first, first == "*" || first == head else { return false }
        return match(Array(path.dropFirst()), Array(pattern.dropFirst()))
    }

    func any(_ patterns: [String], _ path: String) -> Bool { patterns.contains { Self.matches(path, $0) } }
}

extension XenstoreResolvedPlan {
    /// Compares the plan with a listing: every planned node with its value and permissions,
    /// and every listed node inside the subtrees the plan owns (its removal roots).
    public func compare(with listing: XenstoreListing, options: XenstoreComparisonOptions = .strict) -> XenstoreComparison {
        var actual: [String: XenstoreListing.Entry] = [:]
        for entry in listing.entries { actual[entry.path] = entry }
        var differences: [XenstoreComparison.Difference] = []
        var planned = Set<String>()
        for node in nodes {
            planned.insert(node.path)
            guard let entry = actual[node.path] else {
                if !options.any(options.ignoreMissing, node.path) { differences.append(.missing(path: node.path)) }
                continue
            }
            let valueMatches = entry.truncated ? node.value.hasPrefix(entry.value) : node.value == entry.value
            // A kept node's value belongs to its backend daemon (xenconsoled's pty).
            if !valueMatches, !node.keep, !options.any(options.ignoreValues, node.path) {
                differences.append(.value(path: node.path, planned: node.value, actual: entry.value))
            }
            if !entry.perms.isEmpty, entry.perms != node.perms {
                differences.append(.perms(path: node.path, planned: node.perms, actual: entry.perms))
            }
        }
        for entry in listing.entries where !planned.contains(entry.path) {
            guard removals.contains(where: { XenstorePath.isWithin(entry.path, $0) }) else { continue }
            if !options.any(options.ignoreExtras, entry.path) { differences.append(.extra(path: entry.path, value: entry.value)) }
        }
        return XenstoreComparison(differences: differences)
    }
}

extension XenstorePlan {
    /// Reads the build-time values of every planned domain from a live tree, so a plan can
    /// be resolved against a domain `xl create` made: the domid from the
    /// `/local/domain/<id>/name` equal to the domain's name, the uuid from its `vm` node,
    /// and the store and console rings and `start_time` from their nodes.
    public func buildValues(from listing: XenstoreListing) throws(ParseError) -> [String: XenstoreBuildValues] {
        var result: [String: XenstoreBuildValues] = [:]
        for domain in domains {
            var values = XenstoreBuildValues()
            let domid: UInt32
            if domain.domid.isResolved, let fixed = UInt32(domain.domid.text) {
                domid = fixed
            } else {
                let candidates = listing.entries.filter { entry in
                    entry.value == domain.name && entry.path.hasPrefix("/local/domain/") && entry.path.hasSuffix("/name")
                        && entry.path.split(separator: "/").count == 4
                }
                guard candidates.count == 1, let id = UInt32(candidates[0].path.split(separator: "/")[2]) else {
                    throw .invalid("domain \"\(domain.name)\": \(candidates.count) nodes /local/domain/*/name name it")
                }
                domid = id
            }
            values.domid = domid
            let dom = "/local/domain/\(domid)"
            if let vm = listing["\(dom)/vm"]?.value, vm.hasPrefix("/vm/") {
                values.uuid = String(vm.dropFirst(4))
                values.startTime = listing["\(vm)/start_time"]?.value
            }
            values.storePort = listing["\(dom)/store/port"].flatMap { UInt32($0.value) }
            values.storeRingRef = listing["\(dom)/store/ring-ref"].flatMap { UInt64($0.value) }
            values.consolePort = listing["\(dom)/console/port"].flatMap { UInt32($0.value) }
            values.consoleRingRef = listing["\(dom)/console/ring-ref"].flatMap { UInt64($0.value) }
            result[domain.name] = values
        }
        return result
    }
}
