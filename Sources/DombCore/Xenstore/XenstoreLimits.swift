//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Limits of C xenstored (Xen 4.17 `xs_wire.h`, `xenstored_core.c`) and of domb's plans.
public enum XenstoreLimits {
    /// `XENSTORE_PAYLOAD_MAX`: a request longer than this kills the connection.
    public static let payloadMax = 4096
    /// `XENSTORE_ABS_PATH_MAX`.
    public static let absolutePathMax = 3072
    /// `XENSTORE_REL_PATH_MAX`: also the quota on the part of a path below
    /// `/local/domain/<id>/` (`is_valid_nodename`, `ACC_PATHLEN`).
    public static let relativePathMax = 2048
    /// Nodes one plan file may hold: enough for the plan of the largest launch
    /// ``LaunchLimits`` allows (a test plans it), so a plan domb wrote is never refused.
    public static let maximumNodes = 1 << 20
    public static let maximumPermissions = 64
}

/// Checks on Xenstore paths as C xenstored makes them (`is_valid_nodename`).
public enum XenstorePath {
    /// Characters xenstored accepts in a path: `[A-Za-z0-9-/_@]`.
    public static func isValidCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "/"), UInt8(ascii: "_"),
            UInt8(ascii: "@"):
            true
        default: false
        }
    }

    /// Throws unless `path` is an absolute node name xenstored accepts.
    public static func validate(_ path: String) throws(ParseError) {
        let bytes = Array(path.utf8)
        guard bytes.first == UInt8(ascii: "/") else { throw .invalid("Xenstore path \"\(path)\" is not absolute") }
        guard bytes.count == 1 || bytes.last != UInt8(ascii: "/") else {
            throw .invalid("Xenstore path \"\(path)\" ends with '/' (C xenstored rejects it)")
        }
        for (offset, byte) in bytes.enumerated() {
            guard isValidCharacter(byte) else {
                throw .invalid("Xenstore path \"\(path)\" has a character xenstored rejects", offset: offset)
            }
            if byte == UInt8(ascii: "/"), offset > 0, bytes[offset - 1] == UInt8(ascii: "/") {
                throw .invalid("Xenstore path \"\(path)\" has an empty component ('//')", offset: offset)
            }
        }
        try checkLengths(path: path, length: bytes.count, localLength: localLength(bytes))
    }

    static func checkLengths(path: String, length: Int, localLength: Int?) throws(ParseError) {
        guard length <= XenstoreLimits.absolutePathMax else {
            throw .limit("Xenstore path \"\(path.prefix(80))...\" is \(length) bytes, over ABS_PATH_MAX \(XenstoreLimits.absolutePathMax)")
        }
        if let localLength, localLength > XenstoreLimits.relativePathMax {
            throw .limit("Xenstore path \"\(path.prefix(80))...\" is \(localLength) bytes below its domain, over \(XenstoreLimits.relativePathMax)")
        }
    }

    /// The length of the part below `/local/domain/<id>/`, as xenstored measures it.
    static func localLength(_ bytes: [UInt8]) -> Int? {
        let prefix = Array("/local/domain/".utf8)
        guard bytes.count > prefix.count, Array(bytes[0..<prefix.count]) == prefix else { return nil }
        var index = prefix.count
        var digits = 0
        while index < bytes.count, digits < 5, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            index += 1
            digits += 1
        }
        guard digits > 0, index < bytes.count, bytes[index] == UInt8(ascii: "/") else { return nil }
        return bytes.count - index - 1
    }

    /// The parent of an absolute path ("/a/b" → "/a", "/a" → "/").
    public static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Whether `path` is `root` or below it.
    public static func isWithin(_ path: String, _ root: String) -> Bool {
        path == root || root == "/" || path.hasPrefix(root + "/")
    }
}
