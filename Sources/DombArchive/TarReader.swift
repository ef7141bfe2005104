//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CArchive
import DombFiles
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One member of a tar archive, as its header describes it (untrusted until checked).
public struct TarMember: Hashable, Sendable {
    public var path: String
    public var size: UInt64
}

/// What a ``TarReader`` accepts. Anything else is an error naming the member.
public struct TarReadPolicy: Sendable {
    /// Most members the archive may hold.
    public var maximumMembers: Int
    /// Largest size accepted for a member at a path.
    public var sizeLimit: @Sendable (String) -> UInt64
    /// Whether a member path is acceptable (relative, no `..`, expected name).
    public var isAllowedPath: @Sendable (String) -> Bool

    public init(
        maximumMembers: Int, sizeLimit: @escaping @Sendable (String) -> UInt64,
        isAllowedPath: @escaping @Sendable (String) -> Bool
    ) {
        self.maximumMembers = maximumMembers
        self.sizeLimit = sizeLimit
        self.isAllowedPath = isAllowedPath
    }
}

/// Most zero bytes accepted after the end-of-archive marker (tar pads to its 10 KiB
/// record size; anything that is not zero, or more, is refused).
public let maximumTarTrailingPadding = 1 << 20

/// A bounded, strict reader of POSIX tar archives (ustar, pax, GNU) through libarchive.
///
/// Only regular files are accepted: no directories, links, devices, FIFOs or sparse
/// files; no duplicate paths; every path must pass the policy; sizes are capped; members
/// are streamed in chunks, never loaded whole; bytes after the end-of-archive marker must
/// be zero padding. Compressed archives are refused.
public final class TarReader {
    public let path: String
    /// The archive file, opened once (``InputFile``: a FIFO or device is refused).
    private let file: InputFile
    private let archive: OpaquePointer
    private let policy: TarReadPolicy
    private var seen = Set<String>()
    private var current: TarMember?
    private var currentRead = false

    public init(path: String, policy: TarReadPolicy) throws(ArchiveError) {
        self.path = path
        self.policy = policy
        do {
            file = try InputFile(path: path)
        } catch {
            throw ArchiveError(error)
        }
        guard let archive = archive_read_new() else { throw ArchiveError(path: path, "archive_read_new failed") }
        self.archive = archive
        guard archive_read_support_format_tar(archive) == ARCHIVE_OK,
            archive_read_open_fd(archive, file.descriptor, 64 << 10) == ARCHIVE_OK
        else {
            // deinit frees the archive: a class init that throws after initialising every
            // stored property still runs deinit. libarchive reports a file that is no tar
            // with ARCHIVE_ERRNO_FILE_FORMAT, which is EILSEQ (archive.h).
            if archive_errno(archive) == EILSEQ { throw TarWriter.error(archive, path, ArchiveError.notATarArchive) }
            throw TarWriter.error(archive, path, "open as a tar archive")
        }
    }

    deinit { archive_read_free(archive) }

    /// The next member's header, checked against the policy; nil at the end of the archive.
    public func next() throws(ArchiveError) -> TarMember? {
        // Skip unread data now, so the position below is the end of the previous member
        // (data and padding) whether or not the caller read it.
        if let current, !currentRead {
            currentRead = true
            guard archive_read_data_skip(archive) == ARCHIVE_OK else {
                throw TarWriter.error(archive, path, "skip data", member: current.path)
            }
        }
        let endOfPreviousMember = archive_filter_bytes(archive, 0)
        var entryPointer: OpaquePointer?
        let status = archive_read_next_header(archive, &entryPointer)
        if status == ARCHIVE_EOF {
            try checkEndOfArchive(at: endOfPreviousMember)
            current = nil
            return nil
        }
        guard status == ARCHIVE_OK, let entry = entryPointer else {
            throw TarWriter.error(archive, path, "read header after member \(current?.path ?? "(start)")")
        }
        guard let rawName = archive_entry_pathname(entry) else {
            throw ArchiveError(path: path, "a member has no path name (after \(current?.path ?? "the start"))")
        }
        let name = String(cString: rawName)
        guard seen.count < policy.maximumMembers else {
            throw ArchiveError(path: path, member: name, "more than \(policy.maximumMembers) members")
        }
        guard archive_entry_filetype(entry) == 0o100000, archive_entry_hardlink(entry) == nil,
            archive_entry_symlink(entry) == nil
        else {
            throw ArchiveError(path: path, member: name, "not a regular file (links, directories and devices are refused)")
        }
        guard archive_entry_sparse_count(entry) == 0 else {
            throw ArchiveError(path: path, member: name, "sparse members are refused")
        }
        guard policy.isAllowedPath(name) else {
            throw ArchiveError(path: path, member: name, "unexpected or unsafe member path")
        }
        guard seen.insert(name).inserted else { throw ArchiveError(path: path, member: name, "duplicate member") }
        guard archive_entry_size_is_set(entry) != 0, let size = UInt64(exactly: archive_entry_size(entry)) else {
            throw ArchiveError(path: path, member: name, "member has no valid size")
        }
        let limit = policy.sizeLimit(name)
        guard size <= limit else {
            throw ArchiveError(path: path, member: name, "member is \(size) bytes, more than the \(limit) allowed")
        }
        current = TarMember(path: name, size: size)
        currentRead = false
        return current
    }

    /// Streams the current member's data in chunks of at most ``archiveStreamChunkSize``.
    /// - Throws: ``ArchiveError`` if the data is truncated or longer than the header says,
    ///   or whatever `body` throws.
    public func read(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let member = current, !currentRead else {
            throw ArchiveError(path: path, "read called without a current member")
        }
        currentRead = true
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: archiveStreamChunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        while true {
            guard let base = buffer.baseAddress else { break }
            let count = archive_read_data(archive, base, buffer.count)
            if count < 0 { throw TarWriter.error(archive, path, "read data", member: member.path) }
            if count == 0 { break }
            total += UInt64(count)
            guard total <= member.size else {
                throw ArchiveError(path: path, member: member.path, "more data than the header's size")
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        guard total == member.size else {
            throw ArchiveError(path: path, member: member.path, "data is truncated (\(total) of \(member.size) bytes)")
        }
    }

    /// Reads the current member whole; for small members only (`limit` caps it).
    public func readAll(limit: Int) throws -> [UInt8] {
        guard let member = current else { throw ArchiveError(path: path, "readAll called without a current member") }
        guard member.size <= UInt64(limit) else {
            throw ArchiveError(path: path, member: member.path, "member is \(member.size) bytes, more than \(limit)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(member.size))
        try read { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// POSIX.1 ustar: the archive ends with two 512-byte zero blocks; after them only zero
    /// padding (to the record size) may follow. libarchive tolerates a missing marker, so a
    /// truncated archive would otherwise read as complete; and appended bytes would ride
    /// along unsigned.
    private func checkEndOfArchive(at end: Int64) throws(ArchiveError) {
        let descriptor = file.descriptor
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw ArchiveError.errno(path, "stat") }
        let trailing = Int64(status.st_size) - end
        guard trailing >= 1024 else {
            throw ArchiveError(path: path, "the archive is truncated: no end-of-archive marker after offset \(end)")
        }
        guard trailing <= Int64(maximumTarTrailingPadding) else {
            throw ArchiveError(path: path, "\(trailing) bytes follow the last member, more than tar padding")
        }
        var padding = [UInt8](repeating: 0, count: Int(trailing))
        let count = padding.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(end)) }
        guard count == Int(trailing) else { throw ArchiveError.errno(path, "read the end of the archive") }
        if let index = padding.firstIndex(where: { $0 != 0 }) {
            throw ArchiveError(path: path, "non-zero byte after the last member at offset \(end + Int64(index))")
        }
    }
}
