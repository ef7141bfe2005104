//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One entry of a node's permission list (`docs/misc/xenstore.txt`).
///
/// The first entry of a list names the owner, who always has read and write, and gives
/// everyone else's default rights; the rest grant rights to single domains.
public struct XenstorePermission: Hashable, Sendable, CustomStringConvertible {
    public enum Access: Character, Hashable, Sendable {
        /// `XS_PERM_NONE`.
        case none = "n"
        /// `XS_PERM_READ`.
        case read = "r"
        /// `XS_PERM_WRITE`.
        case write = "w"
        /// `XS_PERM_READ | XS_PERM_WRITE`.
        case both = "b"

        /// The `XS_PERM_*` bits.
        public var bits: UInt32 {
            switch self {
            case .none: 0
            case .read: 1
            case .write: 2
            case .both: 3
            }
        }
    }

    public var access: Access
    public var domid: UInt32

    public init(_ access: Access, _ domid: UInt32) {
        self.access = access
        self.domid = domid
    }

    /// The `xenstore-chmod` / `xenstore-ls -p` spelling: `n0`, `r5`.
    public var description: String { "\(access.rawValue)\(domid)" }

    /// Parses `n0`, `r12`, `w3`, `b4` (domid below `DOMID_FIRST_RESERVED`... up to 65535).
    public init(parsing text: some StringProtocol) throws(ParseError) {
        guard let first = text.first, let access = Access(rawValue: first) else {
            throw .invalid("permission \"\(text)\": must start with n, r, w or b")
        }
        let digits = text.dropFirst()
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let domid = UInt32(digits), domid <= UInt32(UInt16.max)
        else {
            throw .invalid("permission \"\(text)\": the domain id must be a number up to 65535")
        }
        self.init(access, domid)
    }
}

/// A permission whose domain id may not be known yet: `n${domid:web}`.
public struct XenstorePermissionTemplate: Hashable, Sendable, Codable, CustomStringConvertible {
    public var access: XenstorePermission.Access
    public var domid: XenstoreTemplate

    public init(_ access: XenstorePermission.Access, _ domid: XenstoreTemplate) {
        self.access = access
        self.domid = domid
    }

    public var description: String { "\(access.rawValue)\(domid.text)" }

    public init(parsing text: String) throws(ParseError) {
        guard let first = text.first, let access = XenstorePermission.Access(rawValue: first) else {
            throw .invalid("permission \"\(text)\": must start with n, r, w or b")
        }
        let domid = try XenstoreTemplate(parsing: String(text.dropFirst()))
        for placeholder in domid.placeholders where placeholder.kind != .domid {
            throw .invalid("permission \"\(text)\": only a ${domid:...} placeholder may name a domain")
        }
        guard !domid.text.isEmpty else { throw .invalid("permission \"\(text)\": no domain id") }
        self.init(access, domid)
    }

    public init(from decoder: any Decoder) throws {
        try self.init(parsing: decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public func resolve(_ value: (XenstorePlaceholder) throws -> String) throws -> XenstorePermission {
        try XenstorePermission(parsing: "\(access.rawValue)\(domid.render(value))")
    }
}
