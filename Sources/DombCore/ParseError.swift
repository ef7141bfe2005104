//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// An error raised while decoding untrusted bytes or text.
///
/// Modelled on swift-asn1's `ASN1Error`: an extensible `code`, a free-text `reason`, the
/// offset into the input where the problem was found, and the source location that threw.
/// Equality compares only `code`, which keeps tests simple.
public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The class of failure. Extensible: modules may add their own static codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The input ended before a field that had to be there.
        public static let truncated = Code("truncated")
        /// A field holds a value the format does not allow.
        public static let invalidValue = Code("invalid value")
        /// Bytes are left over after a complete top-level structure.
        public static let trailingBytes = Code("trailing bytes")
        /// A size, count or depth is beyond one of domb's resource caps.
        public static let limitExceeded = Code("limit exceeded")
        /// The input is well formed but uses something domb does not support.
        public static let unsupported = Code("unsupported")
    }

    public var code: Code
    public var reason: String
    /// Byte offset into the input, when the input is binary.
    public var offset: Int?
    public var file: String
    public var line: UInt

    public init(_ code: Code, _ reason: String, offset: Int? = nil, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.offset = offset
        self.file = file
        self.line = line
    }

    public static func truncated(_ reason: String, offset: Int?, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.truncated, reason, offset: offset, file: file, line: line)
    }

    public static func invalid(_ reason: String, offset: Int? = nil, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.invalidValue, reason, offset: offset, file: file, line: line)
    }

    public static func limit(_ reason: String, offset: Int? = nil, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.limitExceeded, reason, offset: offset, file: file, line: line)
    }

    public static func unsupported(_ reason: String, file: String = #fileID, line: UInt = #line) -> Self {
        Self(.unsupported, reason, file: file, line: line)
    }

    public var description: String {
        if let offset {
            return "\(reason) (at offset \(offset), 0x\(String(offset, radix: 16)))"
        }
        return reason
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// An error that carries where the failing input came from (a file path, a node, a
/// domain) in front of the underlying error's own message.
public struct ContextError: Error, CustomStringConvertible, Sendable {
    public var context: String
    public var underlying: any Error & Sendable

    public init(_ context: String, _ underlying: any Error & Sendable) {
        self.context = context
        self.underlying = underlying
    }

    public var description: String { "\(context): \(underlying)" }
}

extension ContextError {
    /// Runs `body`, and prefixes any error it throws with `context`.
    public static func wrap<T>(_ context: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ContextError {
            throw ContextError(context(), error)
        } catch {
            throw ContextError(context(), error)
        }
    }
}
