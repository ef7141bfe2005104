//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A JSON value restricted to what domb's signed documents need: no floating point.
///
/// ``canonicalBytes`` is the one serialisation that is signed (docs/bundle.md, "Canonical
/// JSON"): UTF-8, no whitespace outside strings, object keys sorted by their UTF-8 bytes,
/// integers in plain decimal, strings with the minimal escapes. Foundation's
/// `JSONEncoder` is not used because its escaping (`\/`) and number rendering are not
/// specified to stay stable across releases.
public indirect enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Deepest nesting the parser accepts.
    public static let maximumDepth = 32
    /// Largest document the parser accepts (a manifest of thousands of modules fits easily).
    public static let maximumSize = 16 << 20

    /// The canonical serialisation.
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        Self.encode(self, into: &out)
        return out
    }

    public var canonicalString: String { String(decoding: canonicalBytes, as: UTF8.self) }

    private static func encode(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
        case .integer(let number): out += Array(String(number).utf8)
        case .string(let text): encodeString(text, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                encode(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Byte-wise UTF-8 order (not String's Unicode-aware order) so any language can reproduce it.
            let keys = members.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for (index, key) in keys.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                encodeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                if let member = members[key] { encode(member, into: &out) }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func encodeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: out += Array("\\b".utf8)
            case 0x0C: out += Array("\\f".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Accessors

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let text) = self { text } else { nil } }
    public var integerValue: Int64? { if case .integer(let number) = self { number } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let items) = self { items } else { nil } }
    public var objectValue: [String: JSONValue]? { if case .object(let members) = self { members } else { nil } }
}

// MARK: - Parsing

extension JSONValue {
    /// Parses RFC 8259 JSON without floating point, rejecting duplicate keys, nesting deeper
    /// than ``maximumDepth``, documents larger than ``maximumSize`` and trailing bytes.
    ///
    /// Whitespace is accepted here; a caller that needs the canonical form compares
    /// ``canonicalBytes`` with the input (see ``init(canonical:)``).
    /// - Throws: ``ParseError`` with the byte offset of the problem.
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= Self.maximumSize else {
            throw .limit("JSON document is \(bytes.count) bytes, more than the \(Self.maximumSize) allowed")
        }
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw ParseError(.trailingBytes, "unexpected bytes after the JSON value", offset: parser.index)
        }
        self = value
    }

    /// Parses `bytes` and requires them to be exactly the canonical serialisation.
    /// - Throws: ``ParseError`` naming the first byte where the input departs from canonical form.
    public init(canonical bytes: [UInt8]) throws(ParseError) {
        let value = try JSONValue(parsing: bytes)
        let canonical = value.canonicalBytes
        guard canonical == bytes else {
            let mismatch = zip(canonical, bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(canonical.count, bytes.count)
            throw .invalid("JSON is not in canonical form (docs/bundle.md)", offset: mismatch)
        }
        self = value
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    func peek() throws(ParseError) -> UInt8 {
        guard index < bytes.count else { throw .truncated("JSON ends early", offset: index) }
        return bytes[index]
    }

    mutating func expect(_ literal: String) throws(ParseError) {
        for byte in literal.utf8 {
            guard index < bytes.count else { throw .truncated("JSON ends inside \"\(literal)\"", offset: index) }
            guard bytes[index] == byte else { throw .invalid("expected \"\(literal)\"", offset: index) }
            index += 1
        }
    }

    mutating func parseValue(depth: Int) throws(ParseError) -> JSONValue {
        guard depth <= JSONValue.maximumDepth else {
            throw .limit("JSON nests deeper than \(JSONValue.maximumDepth)", offset: index)
        }
        switch try peek() {
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "["):
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if try peek() == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                let next = try peek()
                index += 1
                if next == UInt8(ascii: "]") { return .array(items) }
                guard next == UInt8(ascii: ",") else { throw .invalid("expected ',' or ']' in array", offset: index - 1) }
            }
        case UInt8(ascii: "{"):
            index += 1
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if try peek() == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                let keyOffset = index
                guard try peek() == UInt8(ascii: "\"") else { throw .invalid("expected a string key", offset: index) }
                let key = try parseString()
                guard members[key] == nil else { throw .invalid("duplicate key \"\(key)\"", offset: keyOffset) }
                skipWhitespace()
                guard try peek() == UInt8(ascii: ":") else { throw .invalid("expected ':' after key", offset: index) }
                index += 1
                skipWhitespace()
                members[key] = try parseValue(depth: depth + 1)
                skipWhitespace()
                let next = try peek()
                index += 1
                if next == UInt8(ascii: "}") { return .object(members) }
                guard next == UInt8(ascii: ",") else { throw .invalid("expected ',' or '}' in object", offset: index - 1) }
            }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .integer(try parseInteger())
        default:
            throw .invalid("unexpected character in JSON", offset: index)
        }
    }

    mutating func parseInteger() throws(ParseError) -> Int64 {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") { negative = true; index += 1 }
        let digitsStart = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        guard index > digitsStart else {
            if index == bytes.count { throw .truncated("JSON ends inside a number", offset: index) }
            throw .invalid("expected digits", offset: index)
        }
        if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
            throw ParseError(.unsupported, "fractional and exponent numbers are not allowed", offset: start)
        }
        if bytes[digitsStart] == UInt8(ascii: "0"), index - digitsStart > 1 {
            throw .invalid("number has a leading zero", offset: start)
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Int64(text) else { throw .limit("integer \(text) is out of the 64-bit range", offset: start) }
        if negative && value == 0 { throw .invalid("negative zero", offset: start) }
        return value
    }

    mutating func parseHex4() throws(ParseError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw .truncated("JSON ends inside a \\u escape", offset: index) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw .invalid("bad hex digit in \\u escape", offset: index)
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    mutating func parseString() throws(ParseError) -> String {
        let start = index
        index += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw .truncated("JSON ends inside a string", offset: index) }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                // Reject invalid UTF-8 rather than silently repairing it.
                guard let text = String(validating: out, as: UTF8.self) else {
                    throw .invalid("string is not valid UTF-8", offset: start)
                }
                return text
            case UInt8(ascii: "\\"):
                let escape = try peek()
                index += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        try expect("\\u")
                        let low = try parseHex4()
                        guard (0xDC00..<0xE000).contains(low) else {
                            throw .invalid("unpaired surrogate in \\u escape", offset: index - 6)
                        }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else {
                        throw .invalid("\\u escape is not a Unicode scalar", offset: index - 6)
                    }
                    out += Array(String(Character(unicode)).utf8)
                default:
                    throw .invalid("unknown escape \\\(Character(Unicode.Scalar(escape)))", offset: index - 2)
                }
            case 0x00..<0x20:
                throw .invalid("control character inside a string", offset: index - 1)
            default:
                out.append(byte)
            }
        }
    }
}
