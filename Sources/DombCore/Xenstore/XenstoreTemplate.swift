//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A value only the hypervisor or the boot flow knows once a domain is built.
///
/// Written inside plan strings as `${kind:domain}`; `$`, `{`, `}` and `:` are not valid in
/// Xenstore paths, so a placeholder can never be mistaken for part of a real path. A
/// literal `$` in a value is written `$$`.
public struct XenstorePlaceholder: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable, Comparable {
        /// The domain id, when the spec leaves it to the builder (`domid` absent).
        case domid
        /// The domain handle (RFC 4122 text), when the spec gives none.
        case uuid
        /// `store/port`: the event channel the domain's xenstore ring uses.
        case storePort = "store-port"
        /// `store/ring-ref`: the xenstore ring page (mfn for PV, gfn for PVH/HVM).
        case storeRingRef = "store-ring-ref"
        /// `console/port`: the console event channel.
        case consolePort = "console-port"
        /// `console/ring-ref`: the console ring page.
        case consoleRingRef = "console-ring-ref"
        /// `/vm/<uuid>/start_time`: `seconds.centiseconds` when the domain was built.
        case startTime = "start-time"

        public static func < (lhs: Self, rhs: Self) -> Bool {
            allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
        }

        /// The longest text a resolved value of this kind may have; used to check path and
        /// payload limits before the values are known.
        public var maximumLength: Int {
            switch self {
            case .domid: 5  // < DOMID_FIRST_RESERVED (0x7FF0)
            case .uuid: 36
            case .storePort, .consolePort: 10
            case .storeRingRef, .consoleRingRef: 20
            case .startTime: 24
            }
        }
    }

    public var kind: Kind
    /// The name of the domain the value belongs to.
    public var domain: String

    public init(_ kind: Kind, _ domain: String) {
        self.kind = kind
        self.domain = domain
    }

    public var description: String { "${\(kind.rawValue):\(domain)}" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.domain, lhs.kind) < (rhs.domain, rhs.kind)
    }
}

/// Text that may contain placeholders: a path, a value or a permission of a plan.
///
/// Stored in its written form (`/local/domain/${domid:web}/name`), which is also its JSON
/// form, so plans stay readable and diffable.
public struct XenstoreTemplate: Hashable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByStringInterpolation
{
    public enum Segment: Hashable, Sendable {
        case literal(String)
        case placeholder(XenstorePlaceholder)
    }

    /// The written form.
    public private(set) var text: String

    /// A template from its written form; throws if a `$` is not `$$` or a well-formed
    /// placeholder.
    public init(parsing text: String) throws(ParseError) {
        _ = try Self.segments(of: text)
        self.text = text
    }

    /// Literal text (a `$` in it is escaped).
    public init(literal: String) {
        self.text = literal.replacingDollars()
    }

    public init(_ placeholder: XenstorePlaceholder) {
        self.text = placeholder.description
    }

    public init(segments: [Segment]) {
        var text = ""
        for segment in segments {
            switch segment {
            case .literal(let literal): text += literal.replacingDollars()
            case .placeholder(let placeholder): text += placeholder.description
            }
        }
        self.text = text
    }

    /// Interpolation: literal text, other templates and placeholders.
    public struct StringInterpolation: StringInterpolationProtocol {
        var segments: [Segment] = []
        public init(literalCapacity: Int, interpolationCount: Int) {}
        public mutating func appendLiteral(_ literal: String) { segments.append(.literal(literal)) }
        public mutating func appendInterpolation(_ value: String) { segments.append(.literal(value)) }
        public mutating func appendInterpolation(_ value: Character) { segments.append(.literal(String(value))) }
        public mutating func appendInterpolation<T: BinaryInteger>(_ value: T) { segments.append(.literal("\(value)")) }
        public mutating func appendInterpolation(_ value: XenstorePlaceholder) { segments.append(.placeholder(value)) }
        public mutating func appendInterpolation(_ value: XenstoreTemplate) {
            // Already validated when it was made.
            segments.append(contentsOf: (try? XenstoreTemplate.segments(of: value.text)) ?? [])
        }
    }

    public init(stringInterpolation: StringInterpolation) { self.init(segments: stringInterpolation.segments) }
    public init(stringLiteral value: String) { self.init(literal: value) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public var description: String { text }

    public var segments: [Segment] { (try? Self.segments(of: text)) ?? [.literal(text)] }

    public var placeholders: [XenstorePlaceholder] {
        segments.compactMap { if case .placeholder(let p) = $0 { p } else { nil } }
    }

    public var isResolved: Bool { placeholders.isEmpty }

    /// The text with each placeholder replaced by `value(placeholder)`.
    public func render(_ value: (XenstorePlaceholder) throws -> String) rethrows -> String {
        var out = ""
        for segment in segments {
            switch segment {
            case .literal(let literal): out += literal
            case .placeholder(let placeholder): out += try value(placeholder)
            }
        }
        return out
    }

    /// The text as it would be if every placeholder took its longest value (for limits).
    public var worstCaseLength: Int {
        guard text.utf8.contains(UInt8(ascii: "$")) else { return text.utf8.count }
        return segments.reduce(0) { total, segment in
            switch segment {
            case .literal(let literal): total + literal.utf8.count
            case .placeholder(let placeholder): total + placeholder.kind.maximumLength
            }
        }
    }

    static let maximumPlaceholderText = 512

    static func segments(of text: String) throws(ParseError) -> [Segment] {
        // Most plan text has no placeholder: one literal, found by a byte scan.
        guard text.utf8.contains(UInt8(ascii: "$")) else { return text.isEmpty ? [] : [.literal(text)] }
        var result: [Segment] = []
        var literal = ""
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "$" else {
                literal.unicodeScalars.append(scalar)
                index += 1
                continue
            }
            guard index + 1 < scalars.count else {
                throw .invalid("template \"\(text)\": a lone '$' at the end (write '$$' for a literal '$')")
            }
            if scalars[index + 1] == "$" {
                literal.append("$")
                index += 2
                continue
            }
            guard scalars[index + 1] == "{" else {
                throw .invalid("template \"\(text)\": '$' must start '${kind:domain}' or be doubled")
            }
            var end = index + 2
            while end < scalars.count, scalars[end] != "}", end - index < maximumPlaceholderText { end += 1 }
            guard end < scalars.count, scalars[end] == "}" else {
                throw .invalid("template \"\(text)\": unterminated placeholder")
            }
            var body = String.UnicodeScalarView()
            body.append(contentsOf: scalars[(index + 2)..<end])
            let inner = String(body)
            guard let colon = inner.firstIndex(of: ":"),
                let kind = XenstorePlaceholder.Kind(rawValue: String(inner[..<colon]))
            else {
                throw .invalid("template \"\(text)\": unknown placeholder ${\(inner)}")
            }
            let domain = String(inner[inner.index(after: colon)...])
            guard !domain.isEmpty else { throw .invalid("template \"\(text)\": placeholder without a domain") }
            if !literal.isEmpty {
                result.append(.literal(literal))
                literal = ""
            }
            result.append(.placeholder(XenstorePlaceholder(kind, domain)))
            index = end + 1
        }
        if !literal.isEmpty { result.append(.literal(literal)) }
        return result
    }
}

extension String {
    fileprivate func replacingDollars() -> String {
        guard utf8.contains(UInt8(ascii: "$")) else { return self }
        var out = ""
        for character in self {
            if character == "$" { out += "$$" } else { out.append(character) }
        }
        return out
    }
}
