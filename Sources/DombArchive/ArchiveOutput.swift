//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CArchive
import DombLinux
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where libarchive's output goes: aligned staging buffers written to the temporary file by
/// a writer thread, with `O_DIRECT` where the file system allows it.
///
/// A bundle is written once and not read back by the builder, so routing hundreds of MiB
/// through the page cache only costs CPU (a copy into the cache, then writeback); direct
/// I/O sends the staged bytes to the device. The writer thread lets the device work while
/// the next chunks are hashed. Where `O_DIRECT` is refused (tmpfs, some network file
/// systems) writes are buffered, with writeback started early so that the final fsync has
/// little left to do. Either way the bytes are identical.
final class ArchiveOutput: @unchecked Sendable {
    /// Size of one staging buffer: a multiple of every logical block size in use (512, 4096).
    static let stagingSize = 2 << 20
    /// Buffers in flight: one being filled, the rest queued for or being written.
    static let stagingCount = 4
    static let alignment = 4096

    let descriptor: Int32
    let path: String
    private let buffers: [UnsafeMutableRawBufferPointer]
    private var current = 0
    private var filled = 0
    /// Offset of the next byte handed to the writer.
    private var offset: Int64 = 0

    // Shared with the writer thread, under `lock`.
    private let lock = NSLock()
    private var jobs: [(buffer: Int, count: Int, offset: Int64)?] = []
    private var freeBuffers: [Int]
    private var writerFailure: ArchiveError?
    private let jobAvailable = DispatchSemaphore(value: 0)
    private let bufferAvailable: DispatchSemaphore
    private let writerDone = DispatchSemaphore(value: 0)
    private var writerRunning = true

    // Owned by the writer thread until it stops.
    private var isDirect: Bool
    private var writebackStarted: Int64 = 0

    /// The first failure; libarchive only learns "-1", the writer reports this.
    var failure: ArchiveError? { lock.withLock { writerFailure } }

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
        buffers = (0..<Self.stagingCount).map { _ in
            UnsafeMutableRawBufferPointer.allocate(byteCount: Self.stagingSize, alignment: Self.alignment)
        }
        freeBuffers = Array(1..<Self.stagingCount)
        bufferAvailable = DispatchSemaphore(value: Self.stagingCount - 1)
        let flags = fcntl(descriptor, F_GETFL)
        isDirect = flags >= 0 && fcntl(descriptor, F_SETFL, flags | Linux.directIOFlag) == 0
        // The thread holds this object until ``stopWriter()``: its owner (TarWriter) calls
        // ``finish()`` or ``stopWriter()`` before letting go.
        let thread = Thread { self.runWriter() }
        thread.name = "domb archive writer"
        thread.start()
    }

    deinit {
        stopWriter()
        for buffer in buffers { buffer.deallocate() }
    }

    /// Appends `bytes`, handing each full staging buffer to the writer thread.
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var consumed = 0
        while consumed < bytes.count {
            guard failure == nil, let source = bytes.baseAddress, let target = buffers[current].baseAddress else {
                return false
            }
            let count = min(bytes.count - consumed, Self.stagingSize - filled)
            (target + filled).copyMemory(from: source + consumed, byteCount: count)
            filled += count
            consumed += count
            if filled == Self.stagingSize { submit(count: filled) }
        }
        return true
    }

    /// Writes everything staged and waits for the writer: the aligned part directly, the
    /// tail (after leaving direct mode) buffered. Call once, at the end.
    func finish() -> Bool {
        let aligned = filled / Self.alignment * Self.alignment
        let tail = filled - aligned
        let tailBuffer = current
        if aligned > 0 {
            // Keep the tail: copy it to the front of the next buffer after submitting.
            submit(count: aligned, keepingTail: tail, tailFrom: tailBuffer)
        }
        stopWriter()
        guard failure == nil else { return false }
        if tail > 0 {
            leaveDirectMode()
            guard let base = buffers[current].baseAddress else { return false }
            guard write(UnsafeRawBufferPointer(start: base, count: tail), at: offset) else { return false }
            offset += Int64(tail)
        }
        filled = 0
        return failure == nil
    }

    /// Queues the first `count` bytes of the current buffer and moves to a free one,
    /// carrying `keepingTail` bytes that followed them.
    private func submit(count: Int, keepingTail tail: Int = 0, tailFrom: Int = 0) {
        let job = (buffer: current, count: count, offset: offset)
        offset += Int64(count)
        bufferAvailable.wait()
        let next: Int = lock.withLock {
            jobs.append(job)
            return freeBuffers.removeFirst()
        }
        if tail > 0, let from = buffers[tailFrom].baseAddress, let to = buffers[next].baseAddress {
            to.copyMemory(from: from + count, byteCount: tail)
        }
        jobAvailable.signal()
        current = next
        filled = tail
    }

    /// Tells the writer to stop after the queued jobs and waits for it. Idempotent.
    func stopWriter() {
        let running: Bool = lock.withLock {
            guard writerRunning else { return false }
            writerRunning = false
            jobs.append(nil)
            return true
        }
        guard running else { return }
        jobAvailable.signal()
        writerDone.wait()
    }

    private func runWriter() {
        while true {
            jobAvailable.wait()
            let job: (buffer: Int, count: Int, offset: Int64)?? = lock.withLock { jobs.isEmpty ? .none : jobs.removeFirst() }
            guard let queued = job else { continue }
            guard let work = queued else { break }
            if failure == nil, let base = buffers[work.buffer].baseAddress {
                _ = flush(UnsafeRawBufferPointer(start: base, count: work.count), at: work.offset)
            }
            lock.withLock { freeBuffers.append(work.buffer) }
            bufferAvailable.signal()
        }
        writerDone.signal()
    }

    /// Writes one aligned buffer, directly if possible.
    private func flush(_ bytes: UnsafeRawBufferPointer, at position: Int64) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        if isDirect {
            let written = pwrite(descriptor, base, bytes.count, off_t(position))
            if written == bytes.count { return true }
            // Some file systems accept the flag and refuse the write: fall back to buffered.
            guard written < 0, errno == EINVAL else {
                fail(ArchiveError.errno(path, "write (direct)"))
                return false
            }
            leaveDirectMode()
        }
        let result = write(bytes, at: position)
        startWriteback(upTo: position + Int64(bytes.count))
        return result
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) -> Bool {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return false }
            let written = pwrite(descriptor, base + done, bytes.count - done, off_t(position + Int64(done)))
            if written < 0 {
                if errno == EINTR { continue }
                fail(ArchiveError.errno(path, "write"))
                return false
            }
            done += written
        }
        return true
    }

    private func fail(_ error: ArchiveError) {
        lock.withLock { if writerFailure == nil { writerFailure = error } }
    }

    private func leaveDirectMode() {
        guard isDirect else { return }
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags & ~Linux.directIOFlag) }
        isDirect = false
    }

    /// Buffered mode: ask the kernel to start writing back every 32 MiB, without waiting.
    private func startWriteback(upTo end: Int64) {
        guard end - writebackStarted >= 32 << 20 else { return }
        Linux.startWriteback(descriptor, offset: writebackStarted, count: end - writebackStarted)
        writebackStarted = end
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
