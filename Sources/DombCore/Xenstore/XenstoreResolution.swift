//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The values of one domain that are only known once it is built, as the boot flow (or
/// an operator) learns them from the hypervisor.
public struct XenstoreBuildValues: Hashable, Sendable, Codable {
    public var domid: UInt32?
    /// RFC 4122 text form.
    public var uuid: String?
    public var storePort: UInt32?
    public var storeRingRef: UInt64?
    public var consolePort: UInt32?
    public var consoleRingRef: UInt64?
    /// `seconds.centiseconds`, as libxl writes `start_time` (`"%lu.%02d"`).
    public var startTime: String?

    public init(
        domid: UInt32? = nil, uuid: String? = nil, storePort: UInt32? = nil, storeRingRef: UInt64? = nil,
        consolePort: UInt32? = nil, consoleRingRef: UInt64? = nil, startTime: String? = nil
    ) {
        self.domid = domid
        self.uuid = uuid
        self.storePort = storePort
        self.storeRingRef = storeRingRef
        self.consolePort = consolePort
        self.consoleRingRef = consoleRingRef
        self.startTime = startTime
    }

    /// libxl's `start_time` text for a time in seconds and microseconds since the epoch.
    public static func startTime(seconds: UInt64, microseconds: UInt32) -> String {
        let centi = min(microseconds, 999_999) / 10_000
        return "\(seconds)." + (centi < 10 ? "0\(centi)" : "\(centi)")
    }

    func text(for kind: XenstorePlaceholder.Kind) -> String? {
        switch kind {
        case .domid: domid.map { "\($0)" }
        case .uuid: uuid
        case .storePort: storePort.map { "\($0)" }
        case .storeRingRef: storeRingRef.map { "\($0)" }
        case .consolePort: consolePort.map { "\($0)" }
        case .consoleRingRef: consoleRingRef.map { "\($0)" }
        case .startTime: startTime
        }
    }
}

/// A plan with every placeholder filled in: concrete paths, values and permissions, checked
/// against xenstored's limits and ready for `XenstoreApplier`.
public struct XenstoreResolvedPlan: Hashable, Sendable {
    public struct Node: Hashable, Sendable {
        public var path: String
        public var value: String
        public var perms: [XenstorePermission]
        /// A value already in the store wins (see ``XenstorePlan/Node/keep``).
        public var keep: Bool

        public init(path: String, value: String, perms: [XenstorePermission], keep: Bool = false) {
            self.path = path
            self.value = value
            self.perms = perms
            self.keep = keep
        }
    }

    public struct Introduction: Hashable, Sendable {
        public var domain: String
        public var domid: UInt32
        public var ringRef: UInt64
        public var port: UInt32

        public init(domain: String, domid: UInt32, ringRef: UInt64, port: UInt32) {
            self.domain = domain
            self.domid = domid
            self.ringRef = ringRef
            self.port = port
        }
    }

    /// Removed first, inside the transaction.
    public var removals: [String]
    public var nodes: [Node]
    /// After the transaction commits.
    public var introductions: [Introduction]

    public init(removals: [String], nodes: [Node], introductions: [Introduction]) {
        self.removals = removals
        self.nodes = nodes
        self.introductions = introductions
    }
}

extension XenstorePlan {
    /// Fills in every placeholder from `values` (keyed by domain name) and checks the result.
    ///
    /// Fails, naming the domain and the placeholder, if a value is missing or malformed; a
    /// value given for a domain that the plan already fixes is ignored.
    public func resolve(_ values: [String: XenstoreBuildValues]) throws(ParseError) -> XenstoreResolvedPlan {
        try validate()
        func value(_ placeholder: XenstorePlaceholder) throws(ParseError) -> String {
            guard let text = values[placeholder.domain]?.text(for: placeholder.kind) else {
                throw .invalid("no value for \(placeholder)")
            }
            try Self.checkResolved(text, for: placeholder)
            return text
        }
        func render(_ template: XenstoreTemplate) throws(ParseError) -> String {
            var out = ""
            for segment in template.segments {
                switch segment {
                case .literal(let literal): out += literal
                case .placeholder(let placeholder): out += try value(placeholder)
                }
            }
            return out
        }

        var removals: [String] = []
        var nodes: [XenstoreResolvedPlan.Node] = []
        var introductions: [XenstoreResolvedPlan.Introduction] = []
        var seenDomids: [UInt32: String] = [:]
        var seenPaths: [String: String] = [:]
        for domain in domains {
            do throws(ParseError) {
                for path in domain.remove {
                    let concrete = try render(path)
                    try XenstorePath.validate(concrete)
                    removals.append(concrete)
                }
                for node in domain.nodes {
                    let path = try render(node.path)
                    try XenstorePath.validate(path)
                    if let other = seenPaths.updateValue(domain.name, forKey: path) {
                        throw .invalid("node \(path) is also planned for \"\(other)\" (same domid or uuid?)")
                    }
                    let text = try render(node.value)
                    guard path.utf8.count + 1 + text.utf8.count <= XenstoreLimits.payloadMax else {
                        throw .limit("node \(path): value of \(text.utf8.count) bytes exceeds XENSTORE_PAYLOAD_MAX")
                    }
                    var perms: [XenstorePermission] = []
                    for perm in node.perms {
                        perms.append(try XenstorePermission(parsing: "\(perm.access.rawValue)\(try render(perm.domid))"))
                    }
                    nodes.append(.init(path: path, value: text, perms: perms, keep: node.keep))
                }
                guard let domid = UInt32(try render(domain.introduce.domid)),
                    let ringRef = UInt64(try render(domain.introduce.ringRef)),
                    let port = UInt32(try render(domain.introduce.port))
                else { throw .invalid("introduction values are not numbers") }
                if let other = seenDomids[domid] {
                    throw .invalid("domid \(domid) is also the domid of \"\(other)\"")
                }
                seenDomids[domid] = domain.name
                introductions.append(.init(domain: domain.name, domid: domid, ringRef: ringRef, port: port))
            } catch {
                throw ParseError(error.code, "domain \"\(domain.name)\": \(error.reason)")
            }
        }
        return XenstoreResolvedPlan(removals: removals, nodes: nodes, introductions: introductions)
    }

    static func checkResolved(_ text: String, for placeholder: XenstorePlaceholder) throws(ParseError) {
        let digits = !text.isEmpty && text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        switch placeholder.kind {
        case .domid:
            guard digits, let domid = UInt32(text), domid >= 1, domid <= LaunchLimits.maxGuestDomid else {
                throw .invalid("\(placeholder) = \"\(text)\" is not a guest domid (1...\(LaunchLimits.maxGuestDomid))")
            }
        case .uuid:
            guard XenstoreUUID.isCanonical(text) else {
                throw .invalid("\(placeholder) = \"\(text)\" is not a lower-case RFC 4122 UUID")
            }
        case .storePort, .consolePort:
            guard digits, UInt32(text) != nil else { throw .invalid("\(placeholder) = \"\(text)\" is not an event channel") }
        case .storeRingRef, .consoleRingRef:
            guard digits, UInt64(text) != nil else { throw .invalid("\(placeholder) = \"\(text)\" is not a frame number") }
        case .startTime:
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[1].count == 2, !parts[0].isEmpty, parts[0].count <= 20,
                parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } })
            else { throw .invalid("\(placeholder) = \"\(text)\" is not seconds.centiseconds") }
        }
    }
}

/// RFC 4122 text UUIDs as Xen tools print them (`LIBXL_UUID_FMT`: lower-case 8-4-4-4-12).
public enum XenstoreUUID {
    public static func isCanonical(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
                else { return false }
            }
        }
        return true
    }

    /// Accepts upper or lower case and returns the canonical lower-case form.
    public static func canonical(_ text: String) -> String? {
        let lower = text.lowercased()
        return isCanonical(lower) ? lower : nil
    }
}
