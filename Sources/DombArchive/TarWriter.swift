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

/// Chunk size for streaming file members: large enough for few system calls and thread
/// hand-offs, small enough that memory stays bounded whatever the image size; a multiple of
/// libarchive's 10240-byte record so that full records go straight from this buffer to
/// write(2) without an extra copy.
public let archiveStreamChunkSize = 10240 * 205

/// Writes a deterministic POSIX tar (ustar, with pax extended headers only where ustar
/// cannot express a field) through libarchive, atomically.
///
/// Every member is a regular file with mode 0644, uid/gid 0, owner `root:root` and the
/// same mtime (`SOURCE_DATE_EPOCH`), so the same members in the same order give the same
/// bytes. Nothing reaches `path` until ``commit()``.
public final class TarWriter {
    public let path: String
    private let output: AtomicFile
    private let archive: OpaquePointer
    private let modificationTime: Int64
    private let sink: ArchiveOutput
    private var closed = false

    /// - Parameters:
    ///   - path: the archive to create (replaced atomically on commit, under the
    ///     ``OutputTarget`` policy).
    ///   - modificationTime: mtime of every member, in seconds since the epoch.
    ///   - inputs: the files the archive is made from: `path` may not be one of them.
    ///   - mode: permissions of the archive file.
    public init(path: String, modificationTime: Int64, inputs: [String] = [], mode: UInt32 = 0o644) throws(ArchiveError) {
        self.path = path
        self.modificationTime = modificationTime
        do {
            output = try AtomicFile(path: path, inputs: inputs, mode: mode)
        } catch {
            throw ArchiveError(error)
        }
        guard let archive = archive_write_new() else { throw ArchiveError(path: path, "archive_write_new failed") }
        self.archive = archive
        // Created last: from here on deinit runs (and stops its writer thread) even if init throws.
        sink = ArchiveOutput(descriptor: output.descriptor, path: output.temporaryPath)
        guard archive_write_set_format_pax_restricted(archive) == ARCHIVE_OK,
            archive_write_add_filter_none(archive) == ARCHIVE_OK,
            // End after the end-of-archive marker instead of padding to a 10 KiB record.
            archive_write_set_bytes_in_last_block(archive, 1) == ARCHIVE_OK,
            sink.open(archive) == ARCHIVE_OK
        else {
            // deinit frees the archive (it runs for a class init that throws after
            // initialising every stored property).
            throw Self.error(archive, path, "open for writing")
        }
    }

    deinit {
        if !closed { archive_write_close(archive) }
        archive_write_free(archive)
        sink.stopWriter()
    }

    /// Adds a member from memory.
    public func add(_ member: String, bytes: [UInt8]) throws(ArchiveError) {
        try writeHeader(member, size: UInt64(bytes.count))
        let failure: ArchiveError? = bytes.withUnsafeBytes { buffer in
            do throws(ArchiveError) { try writeData(member, buffer) } catch { return error }
            return nil
        }
        if let failure { throw failure }
        try finishEntry(member)
    }

    /// Adds a member streamed from `file` in ``archiveStreamChunkSize`` chunks, handing
    /// each chunk to `observe` (to hash it: DombCrypto's MultiHasher hashes on its own
    /// threads while the chunk is written) before it is written: the file is read once.
    /// `observe` sees the chunks in order, one at a time.
    ///
    /// - Returns: the number of bytes written.
    /// - Throws: ``ArchiveError`` if the file cannot be read or its size changes while it is copied.
    @discardableResult
    public func add(
        _ member: String, file: String, observe: (UnsafeRawBufferPointer) throws -> Void = { _ in }
    ) throws -> UInt64 {
        let input: InputFile
        do {
            input = try InputFile(path: file)
        } catch {
            throw ArchiveError(error, member: member)
        }
        let size = input.size
        try writeHeader(member, size: size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: archiveStreamChunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        while true {
            guard let base = buffer.baseAddress else { break }
            let count: Int
            do {
                count = try input.read(into: UnsafeMutableRawBufferPointer(start: base, count: buffer.count))
            } catch {
                throw ArchiveError(error, member: member)
            }
            if count == 0 { break }
            total += UInt64(count)
            guard total <= size else { throw ArchiveError(path: file, member: member, "file grew while it was archived") }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            try observe(chunk)
            try writeData(member, chunk)
        }
        guard total == size else {
            throw ArchiveError(path: file, member: member, "file shrank while it was archived (\(total) of \(size) bytes)")
        }

        try finishEntry(member)
        return total
    }

    /// Writes the end-of-archive marker, `fsync`s and renames the archive into place.
    public func commit() throws(ArchiveError) {
        guard archive_write_close(archive) == ARCHIVE_OK else {
            throw sink.failure ?? Self.error(archive, path, "close")
        }
        closed = true
        guard sink.finish() else { throw sink.failure ?? ArchiveError(path: path, "write the end of the archive") }
        do {
            try output.commit()
        } catch {
            throw ArchiveError(error)
        }
    }

    private func writeHeader(_ member: String, size: UInt64) throws(ArchiveError) {
        guard let entry = archive_entry_new() else { throw ArchiveError(path: path, member: member, "archive_entry_new failed") }
        defer { archive_entry_free(entry) }
        guard let signedSize = Int64(exactly: size) else { throw ArchiveError(path: path, member: member, "too large") }
        archive_entry_set_pathname(entry, member)
        archive_entry_set_size(entry, signedSize)
        archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG: a cast macro Swift does not import
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_mtime(entry, time_t(modificationTime), 0)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        archive_entry_set_uname(entry, "root")
        archive_entry_set_gname(entry, "root")
        guard archive_write_header(archive, entry) == ARCHIVE_OK else {
            throw sink.failure ?? Self.error(archive, path, "write header", member: member)
        }
    }

    private func writeData(_ member: String, _ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        var offset = 0
        while offset < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let written = archive_write_data(archive, base + offset, bytes.count - offset)
            guard written > 0 else { throw sink.failure ?? Self.error(archive, path, "write data", member: member) }
            offset += written
        }
    }

    private func finishEntry(_ member: String) throws(ArchiveError) {
        guard archive_write_finish_entry(archive) == ARCHIVE_OK else {
            throw Self.error(archive, path, "finish entry", member: member)
        }
    }

    static func error(_ archive: OpaquePointer, _ path: String, _ operation: String, member: String? = nil) -> ArchiveError {
        let text = archive_error_string(archive).map { String(cString: $0) } ?? "libarchive gave no detail"
        return ArchiveError(path: path, member: member, "\(operation): \(text)")
    }
}
