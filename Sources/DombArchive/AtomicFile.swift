//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

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

    public var description: String {
        if let member { return "\(path): member \(member): \(message)" }
        return "\(path): \(message)"
    }

    static func errno(_ path: String, _ operation: String, member: String? = nil) -> ArchiveError {
        ArchiveError(path: path, member: member, "\(operation): \(String(cString: strerror(Glibc.errno)))")
    }
}

/// A file written under a temporary name in the target's directory and renamed over the
/// target only by ``commit()``, after `fsync`: readers see the old file or the complete new
/// one, never a partial write. Dropped without a commit, the temporary file is removed.
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    /// The open descriptor of the temporary file, for writers.
    public private(set) var descriptor: Int32
    private var committed = false

    /// Creates the temporary file next to `path`, with `mode` (0644 by default; a secret
    /// gets 0400 and is never readable by others, not even while it is written).
    /// An existing `path` that is not a regular file (a device node, a directory, a
    /// symlink, a FIFO) is refused: renaming over it would replace it.
    public init(path: String, mode: mode_t = 0o644) throws(ArchiveError) {
        self.path = path
        var existing = stat()
        if lstat(path, &existing) == 0, existing.st_mode & S_IFMT != S_IFREG {
            throw ArchiveError(path: path, "exists and is not a regular file (a device, directory or symlink is never replaced)")
        }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        var template = Array("\(directory)/.\(url.lastPathComponent).tmp.XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw ArchiveError.errno(path, "create a temporary file in \(directory)") }
        temporaryPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        descriptor = fd
        fchmod(fd, mode)
    }

    /// Writes all of `bytes` at the current position.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        var offset = 0
        while offset < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let written = Glibc.write(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if Glibc.errno == EINTR { continue }
                throw ArchiveError.errno(temporaryPath, "write")
            }
            offset += written
        }
    }

    /// Replaces `path` with `bytes` atomically: a crash leaves the old file or the new one,
    /// never a torn one. Every small file domb writes (event logs, quotes, keys, state)
    /// goes through here.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let file = try AtomicFile(path: path, mode: mode)
        try bytes.withUnsafeBytes { try file.write($0) }
        try file.commit()
    }

    /// `fsync`s the data, renames the temporary file over the target and `fsync`s the
    /// directory so the rename itself is durable.
    public func commit() throws(ArchiveError) {
        guard !committed else { return }
        guard fsync(descriptor) == 0 else { throw ArchiveError.errno(temporaryPath, "fsync") }
        guard close(descriptor) == 0 else { throw ArchiveError.errno(temporaryPath, "close") }
        descriptor = -1
        guard rename(temporaryPath, path) == 0 else { throw ArchiveError.errno(path, "rename from \(temporaryPath)") }
        committed = true
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    deinit {
        if !committed {
            if descriptor >= 0 { close(descriptor) }
            unlink(temporaryPath)
        }
    }
}
