//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombFiles

#if canImport(Glibc)
import Glibc
#endif

/// A failure reading or writing an archive or a file, naming the file and the member.
public struct ArchiveError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The archive or file concerned.
    public var path: String
    /// The archive member concerned, if any.
    public var member: String?
    public var message: String

    public init(path: String, member: String? = nil, _ message: String) {
        self.path = path
        self.member = member
        self.message = message
    }

    /// A file-system failure while handling `member` of the archive.
    public init(_ error: FileError, member: String? = nil) {
        self.init(path: error.path, member: member, "\(error.operation): \(error.message)")
    }

    /// What the message of a file that is not a tar archive at all starts with.
    public static let notATarArchive = "not a tar archive"

    /// Whether the file is not a tar archive at all (as opposed to a damaged one).
    public var isNotATarArchive: Bool { message.hasPrefix(Self.notATarArchive) }

    public var description: String {
        if let member { return "\(path): member \(member): \(message)" }
        return "\(path): \(message)"
    }

    static func errno(_ path: String, _ operation: String, member: String? = nil) -> ArchiveError {
        ArchiveError(path: path, member: member, "\(operation): \(String(cString: strerror(Glibc.errno)))")
    }
}
