//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// The syntax of an xl domain configuration file, as libxlu reads it
/// (`tools/libs/util/libxlu_cfg_l.l` and `libxlu_cfg_y.y` in Xen 4.17):
///
/// > file    := (setting? (NEWLINE | ';'))*
/// > setting := IDENT ('=' | '+=') value
/// > value   := STRING | NUMBER | '[' (atom (',' NEWLINE* atom)* ','?)? ']'
///
/// Strings are `"…"` or `'…'` with C escapes; `#` starts a comment. Lists hold atoms
/// only. A key set twice is an error here (xl silently keeps the last), because a launch
/// description must mean one thing.
public struct XLConfig: Hashable, Sendable {
    public enum Value: Hashable, Sendable {
        case string(String)
        /// A number, kept as written (decimal or 0x hex).
        case number(String)
        case list([String])

        /// The value as text: strings and numbers alike (xl accepts `memory = "512"`).
        public var scalar: String? {
            switch self {
            case .string(let text), .number(let text): return text
            case .list: return nil
            }
        }
    }

    public struct Setting: Hashable, Sendable {
        public var key: String
        public var value: Value
        /// 1-based line of the key.
        public var line: Int
    }

    /// Settings in file order.
    public var settings: [Setting]

    public subscript(key: String) -> Setting? { settings.first { $0.key == key } }

    /// Caps for untrusted input.
    public static let maxFileSize = 1 << 20
    public static let maxStringLength = 4096
    public static let maxListItems = 256
    public static let maxSettings = 1024

    /// Parses xl.cfg text.
    /// - Throws: `ParseError` naming the line and what was expected.
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= Self.maxFileSize else {
            throw .limit("xl.cfg is \(bytes.count) bytes; at most \(Self.maxFileSize) are read")
        }
        var lexer = XLLexer(bytes)
        var settings: [Setting] = []
        while true {
            let token = try lexer.next()
            switch token.kind {
            case .end:
                self.settings = settings
                return
            case .newline, .semicolon:
                continue
            case .identifier(let key):
                let op = try lexer.next()
                var append = false
                switch op.kind {
                case .equals: break
                case .plusEquals: append = true
                default: throw .invalid("line \(op.line): expected = after \"\(key)\", found \(op.kind)")
                }
                let value = try Self.parseValue(&lexer)
                let end = try lexer.next()
                switch end.kind {
                case .newline, .semicolon, .end: break
                default: throw .invalid("line \(end.line): expected end of line after the value of \"\(key)\", found \(end.kind)")
                }
                if let index = settings.firstIndex(where: { $0.key == key }) {
                    guard append, case .list(let old) = settings[index].value, case .list(let more) = value else {
                        throw .invalid("line \(token.line): \"\(key)\" is already set on line \(settings[index].line)")
                    }
                    guard old.count + more.count <= Self.maxListItems else {
                        throw .limit("line \(token.line): list \"\(key)\" has more than \(Self.maxListItems) items")
                    }
                    settings[index].value = .list(old + more)
                } else {
                    guard settings.count < Self.maxSettings else {
                        throw .limit("line \(token.line): more than \(Self.maxSettings) settings")
                    }
                    settings.append(Setting(key: key, value: value, line: token.line))
                }
                if case .end = end.kind {
                    self.settings = settings
                    return
                }
            default:
                throw .invalid("line \(token.line): expected a setting name, found \(token.kind)")
            }
        }
    }

    private static func parseValue(_ lexer: inout XLLexer) throws(ParseError) -> Value {
        let token = try lexer.next()
        switch token.kind {
        case .string(let text): return .string(text)
        case .number(let text): return .number(text)
        case .openBracket:
            var items: [String] = []
            var expectItem = true
            while true {
                let item = try lexer.next()
                switch item.kind {
                case .newline: continue
                case .closeBracket: return .list(items)
                case .string(let text) where expectItem, .number(let text) where expectItem:
                    guard items.count < maxListItems else {
                        throw .limit("line \(item.line): a list has more than \(maxListItems) items")
                    }
                    items.append(text)
                    expectItem = false
                case .comma where !expectItem:
                    expectItem = true
                case .end:
                    throw .truncated("line \(item.line): the list opened on line \(token.line) is not closed", offset: nil)
                default:
                    throw .invalid("line \(item.line): unexpected \(item.kind) in a list (lists hold strings and numbers)")
                }
            }
        case .end:
            throw .truncated("line \(token.line): the file ends where a value was expected", offset: nil)
        default:
            throw .invalid("line \(token.line): expected a value, found \(token.kind)")
        }
    }
}

private struct XLToken {
    enum Kind: CustomStringConvertible {
        case identifier(String), string(String), number(String)
        case equals, plusEquals, openBracket, closeBracket, comma, semicolon, newline, end

        var description: String {
            switch self {
            case .identifier(let name): return "name \"\(name)\""
            case .string: return "a string"
            case .number(let text): return "number \(text)"
            case .equals: return "\"=\""
            case .plusEquals: return "\"+=\""
            case .openBracket: return "\"[\""
            case .closeBracket: return "\"]\""
            case .comma: return "\",\""
            case .semicolon: return "\";\""
            case .newline: return "end of line"
            case .end: return "end of file"
            }
        }
    }

    var kind: Kind
    var line: Int
}

private struct XLLexer {
    let bytes: [UInt8]
    var index = 0
    var line = 1

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func peek(_ ahead: Int = 0) -> UInt8? {
        let at = index + ahead
        return at < bytes.count ? bytes[at] : nil
    }

    static func isIdentStart(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == UInt8(ascii: "_")
    }

    static func isIdentBody(_ b: UInt8) -> Bool {
        isIdentStart(b) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")
    }

    mutating func next() throws(ParseError) -> XLToken {
        // Skip blanks and comments.
        while let b = peek() {
            if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") {
                index += 1
            } else if b == UInt8(ascii: "#") {
                while let c = peek(), c != UInt8(ascii: "\n") { index += 1 }
            } else {
                break
            }
        }
        guard let b = peek() else { return XLToken(kind: .end, line: line) }
        let startLine = line
        switch b {
        case UInt8(ascii: "\n"):
            index += 1
            line += 1
            return XLToken(kind: .newline, line: startLine)
        case UInt8(ascii: "="):
            index += 1
            return XLToken(kind: .equals, line: startLine)
        case UInt8(ascii: "+") where peek(1) == UInt8(ascii: "="):
            index += 2
            return XLToken(kind: .plusEquals, line: startLine)
        case UInt8(ascii: "["):
            index += 1
            return XLToken(kind: .openBracket, line: startLine)
        case UInt8(ascii: "]"):
            index += 1
            return XLToken(kind: .closeBracket, line: startLine)
        case UInt8(ascii: ","):
            index += 1
            return XLToken(kind: .comma, line: startLine)
        case UInt8(ascii: ";"):
            index += 1
            return XLToken(kind: .semicolon, line: startLine)
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return XLToken(kind: .string(try lexString(quote: b)), line: startLine)
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = index
            while let c = peek(), Self.isIdentBody(c) { index += 1 }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            let valid = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) != nil : UInt64(text) != nil
            guard valid else { throw .invalid("line \(startLine): \"\(text)\" is not a number") }
            return XLToken(kind: .number(text), line: startLine)
        default:
            guard Self.isIdentStart(b) else {
                throw .invalid("line \(startLine): unexpected character \(Self.show(b))")
            }
            let start = index
            while let c = peek(), Self.isIdentBody(c) { index += 1 }
            return XLToken(kind: .identifier(String(decoding: bytes[start..<index], as: UTF8.self)), line: startLine)
        }
    }

    static func show(_ b: UInt8) -> String {
        (0x21...0x7E).contains(b) ? "'\(Character(UnicodeScalar(b)))'" : "0x\(String(b, radix: 16))"
    }

    mutating func lexString(quote: UInt8) throws(ParseError) -> String {
        let startLine = line
        index += 1
        var out: [UInt8] = []
        while true {
            guard let b = peek() else {
                throw .truncated("line \(startLine): the string is not closed", offset: nil)
            }
            index += 1
            if b == quote { break }
            if b == UInt8(ascii: "\n") {
                throw .invalid("line \(startLine): the string is not closed before the end of the line")
            }
            guard out.count < XLConfig.maxStringLength else {
                throw .limit("line \(startLine): a string is longer than \(XLConfig.maxStringLength) bytes")
            }
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                continue
            }
            guard let e = peek() else { throw .truncated("line \(startLine): the string ends in a backslash", offset: nil) }
            index += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "a"): out.append(0x07)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "x"):
                var value = 0
                var count = 0
                while count < 2, let h = peek(), let digit = Int(String(UnicodeScalar(h)), radix: 16) {
                    value = value * 16 + digit
                    index += 1
                    count += 1
                }
                guard count > 0 else { throw .invalid("line \(startLine): \\x needs hex digits") }
                out.append(UInt8(value))
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(e - UInt8(ascii: "0"))
                var count = 1
                while count < 3, let o = peek(), o >= UInt8(ascii: "0"), o <= UInt8(ascii: "7") {
                    value = value * 8 + Int(o - UInt8(ascii: "0"))
                    index += 1
                    count += 1
                }
                guard value <= 0xFF else { throw .invalid("line \(startLine): octal escape above \\377") }
                out.append(UInt8(value))
            default:
                throw .invalid("line \(startLine): unknown escape \\\(Self.show(e).trimmingQuotes)")
            }
        }
        guard out.allSatisfy({ $0 != 0 }) else { throw .invalid("line \(startLine): a string holds a NUL") }
        // Reject invalid UTF-8 rather than replace it: values reach paths and Xenstore.
        guard let text = String(validating: out, as: UTF8.self) else {
            throw .invalid("line \(startLine): a string is not valid UTF-8")
        }
        return text
    }
}

extension String {
    fileprivate var trimmingQuotes: String { filter { $0 != "'" } }
}
