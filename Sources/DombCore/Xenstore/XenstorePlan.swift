//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// What domb writes to Xenstore so the domains of a launch look exactly as if `xl create`
/// had made them (libxl 4.17): domain nodes, `/vm/<uuid>`, `/libxl/<domid>` and every PV
/// device's frontend and backend directories.
///
/// Values only the hypervisor or the builder knows (domids left to the builder, ring pages,
/// event channels, start times) are placeholders; `resolve(_:)` fills them in after the
/// domains are built and before any is unpaused. See docs/xenstore.md.
public struct XenstorePlan: Hashable, Sendable, Codable {
    /// The `format` and `formatVersion` of every plan written (``JSONFormat/xenstorePlan``).
    public static let format = JSONFormat.xenstorePlan
    /// Version 1 as plans wrote it before `formatVersion` existed: one string, no
    /// `formatVersion`. Bundles signed then carry it; it is read as version 1.
    public static let legacyFormat = "domb-xenstore-plan/1"

    /// In application order: backend domains before the domains they serve.
    public var domains: [Domain]

    public init(domains: [Domain]) {
        self.domains = domains
    }

    private enum CodingKeys: String, CodingKey {
        case format, formatVersion, domains
    }

    /// Reads a plan of ``format``, or of ``legacyFormat``.
    /// - Throws: ``ParseError`` (`unsupported`) for another format or version.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let legacy = try container.decodeIfPresent(String.self, forKey: .format) == Self.legacyFormat
        if !(legacy && !container.contains(.formatVersion)) {
            try Self.format.check(decoder, optional: false)
        }
        domains = try container.decode([Domain].self, forKey: .domains)
    }

    public func encode(to encoder: any Encoder) throws {
        try Self.format.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(domains, forKey: .domains)
    }

    /// Everything written for one domain built by domb.
    public struct Domain: Hashable, Sendable, Codable {
        public var name: String
        /// A number, or `${domid:<name>}` when the builder picks it.
        public var domid: XenstoreTemplate
        /// Subtrees removed (inside the transaction) before writing, as libxl does with `xs_rm`.
        public var remove: [XenstoreTemplate]
        /// In creation order: every node's parent comes before it, or lies outside the plan.
        public var nodes: [Node]
        /// How to introduce the domain to xenstored after the transaction commits.
        public var introduce: Introduction

        public init(name: String, domid: XenstoreTemplate, remove: [XenstoreTemplate], nodes: [Node], introduce: Introduction) {
            self.name = name
            self.domid = domid
            self.remove = remove
            self.nodes = nodes
            self.introduce = introduce
        }
    }

    /// One node with its final value and permissions (owner first).
    public struct Node: Hashable, Sendable, Codable {
        public var path: XenstoreTemplate
        public var value: XenstoreTemplate
        public var perms: [XenstorePermissionTemplate]
        /// A backend daemon owns the value once the domain exists (console 0's `tty`, which
        /// xenconsoled writes as soon as libxl introduces the domain): a value already in
        /// the store is kept, the planned one is written only where there is none.
        public var keep: Bool

        public init(path: XenstoreTemplate, value: XenstoreTemplate, perms: [XenstorePermissionTemplate], keep: Bool = false) {
            self.path = path
            self.value = value
            self.perms = perms
            self.keep = keep
        }

        enum CodingKeys: String, CodingKey {
            case path, value, perms, keep
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            path = try container.decode(XenstoreTemplate.self, forKey: .path)
            value = try container.decode(XenstoreTemplate.self, forKey: .value)
            perms = try container.decode([XenstorePermissionTemplate].self, forKey: .perms)
            keep = try container.decodeIfPresent(Bool.self, forKey: .keep) ?? false
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(path, forKey: .path)
            try container.encode(value, forKey: .value)
            try container.encode(perms, forKey: .perms)
            if keep { try container.encode(true, forKey: .keep) }
        }
    }

    /// `xs_introduce_domain(domid, store ring page, store event channel)`.
    public struct Introduction: Hashable, Sendable, Codable {
        public var domid: XenstoreTemplate
        public var ringRef: XenstoreTemplate
        public var port: XenstoreTemplate

        public init(domid: XenstoreTemplate, ringRef: XenstoreTemplate, port: XenstoreTemplate) {
            self.domid = domid
            self.ringRef = ringRef
            self.port = port
        }
    }

    /// The plan of the named domains alone (a restarted domain's), in the same order.
    public func restricted(to names: Set<String>) -> XenstorePlan {
        var plan = self
        plan.domains = domains.filter { names.contains($0.name) }
        return plan
    }

    /// All nodes of all domains, in application order.
    public var allNodes: [Node] { domains.flatMap(\.nodes) }

    /// Every placeholder the plan uses, sorted.
    public var placeholders: [XenstorePlaceholder] {
        var set = Set<XenstorePlaceholder>()
        for domain in domains {
            set.formUnion(domain.domid.placeholders)
            for path in domain.remove { set.formUnion(path.placeholders) }
            for node in domain.nodes {
                set.formUnion(node.path.placeholders)
                set.formUnion(node.value.placeholders)
                for perm in node.perms { set.formUnion(perm.domid.placeholders) }
            }
            set.formUnion(domain.introduce.domid.placeholders)
            set.formUnion(domain.introduce.ringRef.placeholders)
            set.formUnion(domain.introduce.port.placeholders)
        }
        return set.sorted()
    }

    // MARK: Validation

    /// Checks the plan against C xenstored's rules with every placeholder at its longest
    /// value: absolute paths of `[A-Za-z0-9-/_@]`, no `//`, no trailing `/`, `ABS_PATH_MAX`,
    /// the per-domain path quota, `XENSTORE_PAYLOAD_MAX` for each WRITE and SET_PERMS, no
    /// duplicate node, parents before children, and domb's own size caps.
    public func validate() throws(ParseError) {
        guard domains.count <= LaunchLimits.maxDomains else {
            throw .limit("Xenstore plan has \(domains.count) domains, over \(LaunchLimits.maxDomains)")
        }
        var seen = Set<String>()
        var total = 0
        let planned = Set(domains.lazy.flatMap(\.nodes).map(\.path.text))
        for domain in domains {
            do throws(ParseError) {
                total += domain.nodes.count
                guard total <= XenstoreLimits.maximumNodes else {
                    throw .limit("Xenstore plan has more than \(XenstoreLimits.maximumNodes) nodes")
                }
                for path in domain.remove { try Self.validateTemplatePath(path) }
                for node in domain.nodes {
                    try Self.validateTemplatePath(node.path)
                    guard seen.insert(node.path.text).inserted else {
                        throw .invalid("node \(node.path) appears twice")
                    }
                    if let parent = XenstorePath.parent(of: node.path.text), !seen.contains(parent), planned.contains(parent) {
                        throw .invalid("node \(node.path) comes before its parent \(parent)")
                    }
                    let pathLength = node.path.worstCaseLength
                    guard pathLength + 1 + node.value.worstCaseLength <= XenstoreLimits.payloadMax else {
                        throw .limit("node \(node.path): path and value exceed XENSTORE_PAYLOAD_MAX \(XenstoreLimits.payloadMax)")
                    }
                    guard !node.perms.isEmpty, node.perms.count <= XenstoreLimits.maximumPermissions else {
                        throw .invalid("node \(node.path) has \(node.perms.count) permissions (1...\(XenstoreLimits.maximumPermissions))")
                    }
                    let permsLength = node.perms.reduce(0) { $0 + 2 + $1.domid.worstCaseLength }
                    guard pathLength + 1 + permsLength <= XenstoreLimits.payloadMax else {
                        throw .limit("node \(node.path): SET_PERMS payload exceeds \(XenstoreLimits.payloadMax)")
                    }
                    for perm in node.perms {
                        for placeholder in perm.domid.placeholders where placeholder.kind != .domid {
                            throw .invalid("node \(node.path): permission \(perm) names a \(placeholder.kind.rawValue)")
                        }
                        if perm.domid.isResolved { _ = try XenstorePermission(parsing: perm.description) }
                    }
                }
            } catch {
                throw ParseError(error.code, "domain \"\(domain.name)\": \(error.reason)", offset: error.offset)
            }
        }
    }

    static func validateTemplatePath(_ path: XenstoreTemplate) throws(ParseError) {
        // Placeholders become digits, hex and '-', all valid; check the literal parts and
        // the shape with a stand-in, and the lengths with the longest values.
        let standIn = path.render { placeholder in String(repeating: "0", count: placeholder.kind.maximumLength) }
        do throws(ParseError) {
            try XenstorePath.validate(standIn)
        } catch {
            throw ParseError(error.code, "\(path): \(error.reason)")
        }
    }
}
