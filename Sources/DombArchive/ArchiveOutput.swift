//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CArchive
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where libarchive's output goes: an aligned staging buffer flushed to the temporary file
/// with `O_DIRECT` where the file system allows it.
///
/// A bundle is written once and not read back by the builder, so routing hundreds of MiB
/// through the page cache only costs CPU (a copy into the cache, then writeback); direct
/// I/O sends the staged bytes to the device. Where `O_DIRECT` is refused (tmpfs, some
/// network file systems) writes are buffered, with writeback started early so that the
/// final fsync has little left to do. Either way the bytes are identical.
final class ArchiveOutput {
    /// Staging size: a multiple of every logical block size in use (512, 4096).
    static let stagingSize = 4 << 20
    static let alignment = 4096

    let descriptor: Int32
    let path: String
    private let staging: UnsafeMutableRawBufferPointer
    private var filled = 0
    /// Bytes already written to the file.
    private var offset: Int64 = 0
    private(set) var isDirect: Bool
    private var writebackStarted: Int64 = 0
    /// The first failure; libarchive only learns "-1", the writer reports this.
    var failure: ArchiveError?

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
        staging = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.stagingSize, alignment: Self.alignment)
        let flags = fcntl(descriptor, F_GETFL)
        isDirect = flags >= 0 && fcntl(descriptor, F_SETFL, flags | oDirect) == 0
    }

    deinit { staging.deallocate() }

    /// Appends `bytes`, flushing each full staging buffer.
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var consumed = 0
        while consumed < bytes.count {
            guard let source = bytes.baseAddress, let target = staging.baseAddress else { return false }
            let count = min(bytes.count - consumed, staging.count - filled)
            (target + filled).copyMemory(from: source + consumed, byteCount: count)
            filled += count
            consumed += count
            if filled == staging.count {
                guard flush(count: filled) else { return false }
                filled = 0
            }
        }
        return true
    }

    /// Writes what is staged: the aligned part directly, the tail (after leaving direct
    /// mode) buffered. Call once, at the end.
    func finish() -> Bool {
        let aligned = filled / Self.alignment * Self.alignment
        if aligned > 0 {
            guard flush(count: aligned) else { return false }
        }
        let tail = filled - aligned
        if tail > 0 {
            leaveDirectMode()
            guard let base = staging.baseAddress else { return false }
            guard write(UnsafeRawBufferPointer(start: base + aligned, count: tail)) else { return false }
        }
        filled = 0
        return true
    }

    /// Writes the first `count` staged bytes at the current offset.
    private func flush(count: Int) -> Bool {
        guard let base = staging.baseAddress else { return false }
        if isDirect {
            let written = pwrite(descriptor, base, count, off_t(offset))
            if written == count {
                offset += Int64(count)
                return true
            }
            // Some file systems accept the flag and refuse the write: fall back to buffered.
            guard written < 0, errno == EINVAL else {
                failure = ArchiveError.errno(path, "write (direct)")
                return false
            }
            leaveDirectMode()
        }
        let result = write(UnsafeRawBufferPointer(start: base, count: count))
        startWriteback()
        return result
    }

    private func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return false }
            let written = pwrite(descriptor, base + done, bytes.count - done, off_t(offset))
            if written < 0 {
                if errno == EINTR { continue }
                failure = ArchiveError.errno(path, "write")
                return false
            }
            done += written
            offset += Int64(written)
        }
        return true
    }

    private func leaveDirectMode() {
        guard isDirect else { return }
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags & ~oDirect) }
        isDirect = false
    }

    /// Buffered mode: ask the kernel to start writing back every 32 MiB, without waiting.
    private func startWriteback() {
        guard offset - writebackStarted >= 32 << 20 else { return }
        _ = syncFileRange?(descriptor, writebackStarted, offset - writebackStarted, 2 /* SYNC_FILE_RANGE_WRITE */)
        writebackStarted = offset
    }

    /// Connects libarchive to this output (`archive_write_open2` with a write callback).
    func open(_ archive: OpaquePointer) -> Int32 {
        archive_write_open2(archive, Unmanaged.passUnretained(self).toOpaque(), nil, archiveOutputWrite, nil, nil)
    }
}

/// libarchive's write callback: hands the bytes to the ``ArchiveOutput`` in `client`.
private func archiveOutputWrite(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?, _ length: Int
) -> Int {
    guard let client, let buffer else { return -1 }
    let output = Unmanaged<ArchiveOutput>.fromOpaque(client).takeUnretainedValue()
    return output.append(UnsafeRawBufferPointer(start: buffer, count: length)) ? length : -1
}

/// `O_DIRECT`, which Swift's Glibc module hides (it needs _GNU_SOURCE); the value is
/// per architecture (asm-generic/fcntl.h, arch/arm64/include/uapi/asm/fcntl.h).
#if arch(x86_64) || arch(i386)
private let oDirect: Int32 = 0o40000
#elseif arch(arm64) || arch(arm)
private let oDirect: Int32 = 0o200000
#else
private let oDirect: Int32 = 0
#endif

/// glibc's `sync_file_range(2)`, also hidden by the Glibc module; looked up once at run
/// time. Nil where the C library lacks it: writeback then starts at fsync.
private let syncFileRange: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()
