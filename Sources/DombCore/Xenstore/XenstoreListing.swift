//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A Xenstore tree as `xenstore-ls -p` prints it: path, value, permissions.
///
/// Reads both forms `xenstore_client.c` prints: `-f` (`/local/domain/1/name = "web"  (n0,r1)`)
/// and the indented form (one space per level, with the `. . .` padding before the
/// permissions). Values are unescaped as `xs_sanitise_value` escaped them (`\\`, `\ooo`);
/// a value the tool cut at the terminal width (`...\..."`) is kept as a prefix.
public struct XenstoreListing: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var path: String
        public var value: String
        /// Empty when listed without `-p`.
        public var perms: [XenstorePermission]
        /// The tool shortened the value; `value` is a prefix of the real one.
        public var truncated: Bool

        public init(path: String, value: String, perms: [XenstorePermission], truncated: Bool = false) {
            self.path = path
            self.value = value
            self.perms = perms
            self.truncated = truncated
        }
    }

    public var entries: [Entry]

    /// Caps for untrusted listings.
    public static let maximumLines = 1_000_000
    public static let maximumDepth = 64

    public subscript(path: String) -> Entry? { entries.first { $0.path == path } }

    /// Parses a listing; `root` is the path given to `xenstore-ls` (needed for the
    /// indented form). Errors name the line.
    public init(parsing text: String, root: String = "/") throws(ParseError) {
        var entries: [Entry] = []
        var stack: [String] = []  // path at each depth (indented form)
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard lineNumber <= Self.maximumLines else { throw .limit("listing has more than \(Self.maximumLines) lines") }
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            if line.allSatisfy({ $0 == " " }) { continue }
            do throws(ParseError) {
                entries.append(try Self.parseLine(String(line), root: root, stack: &stack))
            } catch {
                throw ParseError(error.code, "line \(lineNumber): \(error.reason)")
            }
        }
        self.entries = entries
    }

    public init(entries: [Entry]) { self.entries = entries }

    static func parseLine(_ line: String, root: String, stack: inout [String]) throws(ParseError) -> Entry {
        let bytes = Array(line.utf8)
        guard let equals = find(Array(" = \"".utf8), in: bytes, from: 0) else {
            throw .invalid("no ' = \"' in \"\(line.prefix(80))\"")
        }
        let name = String(decoding: bytes[..<equals], as: UTF8.self)
        var rest = Array(bytes[(equals + 4)...])
        // Permissions: a trailing "(...)" after two spaces.
        var perms: [XenstorePermission] = []
        if rest.last == UInt8(ascii: ")"), let open = findLast(Array("  (".utf8), in: rest) {
            let list = String(decoding: rest[(open + 3)..<(rest.count - 1)], as: UTF8.self)
            for item in list.split(separator: ",", omittingEmptySubsequences: false) {
                perms.append(try XenstorePermission(parsing: item))
            }
            rest.removeSubrange(open...)
            // The indented form pads with " . . ." up to column 60.
            while let last = rest.last, last == UInt8(ascii: " ") || last == UInt8(ascii: ".") { rest.removeLast() }
        }
        guard rest.last == UInt8(ascii: "\"") else { throw .invalid("value of \"\(name)\" is not closed by '\"'") }
        rest.removeLast()
        var truncated = false
        if rest.count >= 4, Array(rest.suffix(4)) == Array("\\...".utf8) {
            truncated = true
            rest.removeLast(4)
        }
        let value = try unescape(rest)

        let path: String
        if name.hasPrefix("/") {
            path = name
        } else {
            let depth = name.prefix { $0 == " " }.count
            let component = name.dropFirst(depth)
            guard !component.isEmpty, !component.contains(" ") else { throw .invalid("bad node name \"\(name)\"") }
            guard depth <= Self.maximumDepth, depth <= stack.count else {
                throw .invalid("indentation \(depth) skips a level")
            }
            stack.removeSubrange(depth...)
            let parent = depth == 0 ? root : stack[depth - 1]
            path = (parent == "/" ? "" : parent) + "/" + component
            stack.append(path)
        }
        try XenstorePath.validate(path)
        return Entry(path: path, value: value, perms: perms, truncated: truncated)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    static func findLast(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = haystack.count - needle.count
        while index >= 0 {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index -= 1
        }
        return nil
    }

    /// Reverses `xs_sanitise_value`: `\\` and `\ooo` (octal byte).
    static func unescape(_ input: [UInt8]) throws(ParseError) -> String {
        var bytes: [UInt8] = []
        var index = 0
        while index < input.count {
            let byte = input[index]
            guard byte == UInt8(ascii: "\\") else {
                bytes.append(byte)
                index += 1
                continue
            }
            guard index + 1 < input.count else { throw .invalid("value ends in a lone '\\'") }
            if input[index + 1] == UInt8(ascii: "\\") {
                bytes.append(byte)
                index += 2
                continue
            }
            guard index + 3 < input.count,
                input[(index + 1)...(index + 3)].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") })
            else { throw .invalid("bad escape in value") }
            let value = input[(index + 1)...(index + 3)].reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
            guard value <= 0xFF else { throw .invalid("bad escape in value") }
            bytes.append(UInt8(value))
            index += 4
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
