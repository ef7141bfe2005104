//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// Streaming digests of the same data in several TPM banks at once, over OpenSSL EVP: the
/// one multi-bank hashing path of domb (`build`, `boot`, `measure`, `digest`, `bundle verify`).
///
/// The data is seen once, in bounded memory, however many banks are active. How the banks
/// are hashed depends on the cores (``HashingParallelism``):
/// - **one core** (or one bank, or less than ``parallelThreshold`` bytes in all): every
///   chunk goes to each bank's EVP context in turn, in the calling thread;
/// - **more cores**: the caller fills a ring of ``ringSlots`` buffers of `chunkSize` bytes
///   and up to one worker thread per core (never more than banks) hashes them. A worker
///   takes whichever bank is furthest behind and hashes its next chunk, so cheap and dear
///   banks (sha1 next to sha512) balance across the workers by cost; a buffer is reused
///   once every bank has hashed it, so the reader runs at most ``ringSlots`` chunks ahead
///   of the slowest bank.
public struct MultiHasher: ~Copyable {
    /// Buffers in the ring shared by the bank workers.
    public static let ringSlots = 8
    /// Default chunk (ring buffer) size: large enough that locking and syscalls cost
    /// nothing next to hashing, small enough to stay in cache while the banks hash it.
    public static let defaultChunkSize = 512 << 10
    /// Data up to this size is hashed in the calling thread: starting workers would cost
    /// more than they save.
    public static let parallelThreshold = 256 << 10

    private let banks: BankContexts
    private let chunkSize: Int
    /// Worker threads to start once the data outgrows ``parallelThreshold``; 1 = never.
    private let workers: Int
    private var serialBytes = 0
    private var pipeline: BankPipeline?
    /// The buffer ``update(readingWith:)`` reads into on the single-thread path.
    private var scratch: UnsafeMutableRawBufferPointer?
    /// Counts every byte hashed (the caller sets its total with ``ByteProgress/expect(_:)``).
    private let progress: ByteProgress?

    /// - Parameters:
    ///   - threads: hashing threads; `nil` = ``HashingParallelism/threadCount()``. 1 is
    ///     the single-thread path.
    ///   - chunkSize: the ring buffer size, and the read size of ``update(readingWith:)``.
    ///   - progress: advanced by every byte hashed, once per `update` call, in the calling
    ///     thread (never by the bank workers: the count is of bytes handed to the banks).
    /// - Throws: ``CryptoError`` if OpenSSL does not provide one of the algorithms (sm3 is
    ///   absent from some OpenSSL builds), or `DOMB_HASH_THREADS` is malformed.
    public init(
        algorithms: [HashAlgorithm], threads: Int? = nil, chunkSize: Int = defaultChunkSize, progress: ByteProgress? = nil
    ) throws(CryptoError) {
        let count: Int
        if let threads { count = threads } else { count = try HashingParallelism.threadCount() }
        let banks = try BankContexts(Set(algorithms).sorted())
        self.banks = banks
        workers = max(1, min(count, banks.contexts.count))
        self.chunkSize = max(4096, chunkSize)
        self.progress = progress
    }

    deinit {
        pipeline?.finish()
        scratch?.deallocate()
    }

    /// The OpenSSL digest for a TPM algorithm, or nil if this OpenSSL lacks it.
    static func messageDigest(for algorithm: HashAlgorithm) -> OpaquePointer? {
        switch algorithm {
        case .sha1: EVP_sha1()
        case .sha256: EVP_sha256()
        case .sha384: EVP_sha384()
        case .sha512: EVP_sha512()
        case .sm3_256: EVP_get_digestbyname("SM3")
        default: nil
        }
    }

    /// Whether this OpenSSL can hash `algorithm`.
    public static func supports(_ algorithm: HashAlgorithm) -> Bool { messageDigest(for: algorithm) != nil }

    /// Threads hashing so far: 1 on the single-thread path (one core, one bank, or data
    /// too small to be worth a worker), otherwise the worker threads started.
    public var hashingThreads: Int { max(1, pipeline?.startedWorkers ?? 1) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        progress?.advance(by: bytes.count)
        if pipeline == nil {
            if workers == 1 || serialBytes + bytes.count <= Self.parallelThreshold {
                banks.update(base, bytes.count)
                serialBytes += bytes.count
                return
            }
            pipeline = BankPipeline(banks: banks, workers: workers, chunkSize: chunkSize)
        }
        pipeline?.copy(bytes)
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    public mutating func update(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { update($0) } }

    /// Reads the next chunk with `read` straight into the hashing buffer (no copy) and
    /// hashes it in every bank.
    ///
    /// - Parameter read: fills (a prefix of) the buffer it is given, at most `chunkSize`
    ///   bytes, and returns how many bytes it wrote; 0 means the end of the data.
    /// - Returns: what `read` returned.
    public mutating func update(readingWith read: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> Int {
        if pipeline == nil, workers > 1, serialBytes >= Self.parallelThreshold {
            pipeline = BankPipeline(banks: banks, workers: workers, chunkSize: chunkSize)
        }
        if let pipeline {
            let count = try pipeline.fill(read)
            progress?.advance(by: count)
            return count
        }
        let buffer = scratch ?? UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        scratch = buffer
        let count = try read(buffer)
        precondition((0...buffer.count).contains(count), "read returned \(count) for a \(buffer.count)-byte buffer")
        if count > 0, let base = buffer.baseAddress {
            banks.update(base, count)
            serialBytes += count
            progress?.advance(by: count)
        }
        return count
    }

    /// Finishes every bank and returns the digests in TPM_ALG_ID order.
    public consuming func finalize() throws(CryptoError) -> DigestSet {
        pipeline?.finish()
        return try banks.finalize()
    }

    /// Digests of `bytes` in every algorithm.
    public static func digest(_ bytes: ArraySlice<UInt8>, algorithms: [HashAlgorithm]) throws(CryptoError) -> DigestSet {
        var hasher = try MultiHasher(algorithms: algorithms)
        hasher.update(bytes)
        return try hasher.finalize()
    }

    public static func digest(_ bytes: [UInt8], algorithms: [HashAlgorithm]) throws(CryptoError) -> DigestSet {
        try digest(bytes[...], algorithms: algorithms)
    }
}

/// One EVP context per bank. While a ``BankPipeline`` runs, each context is used by one
/// worker at a time (the pipeline's lock hands it from one to the next).
final class BankContexts: @unchecked Sendable {
    let algorithms: [HashAlgorithm]
    let contexts: [OpaquePointer]

    init(_ algorithms: [HashAlgorithm]) throws(CryptoError) {
        var contexts: [OpaquePointer] = []
        for algorithm in algorithms {
            guard let md = MultiHasher.messageDigest(for: algorithm) else {
                for context in contexts { EVP_MD_CTX_free(context) }
                throw CryptoError("digest", "OpenSSL has no implementation of \(algorithm)")
            }
            guard let context = EVP_MD_CTX_new() else {
                for context in contexts { EVP_MD_CTX_free(context) }
                throw CryptoError.openSSL("EVP_MD_CTX_new(\(algorithm))")
            }
            contexts.append(context)
            guard EVP_DigestInit_ex(context, md, nil) == 1 else {
                for context in contexts { EVP_MD_CTX_free(context) }
                throw CryptoError.openSSL("EVP_DigestInit_ex(\(algorithm))")
            }
        }
        self.algorithms = algorithms
        self.contexts = contexts
    }

    deinit {
        for context in contexts { EVP_MD_CTX_free(context) }
    }

    /// Every bank in turn, in the calling thread.
    func update(_ base: UnsafeRawPointer, _ count: Int) {
        for context in contexts { EVP_DigestUpdate(context, base, count) }
    }

    func finalize() throws(CryptoError) -> DigestSet {
        var result = DigestSet()
        for (algorithm, context) in zip(algorithms, contexts) {
            var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
            var length: UInt32 = 0
            guard EVP_DigestFinal_ex(context, &output, &length) == 1 else {
                throw CryptoError.openSSL("EVP_DigestFinal_ex(\(algorithm))")
            }
            result[algorithm] = Array(output.prefix(Int(length)))
        }
        return result
    }
}

/// The ring of chunk buffers between one producer (the thread calling ``MultiHasher``) and
/// the bank workers.
///
/// Chunks are numbered in order. Chunk `n` lives in slot `n % ringSlots`; bank `b` has
/// hashed every chunk below `next[b]`; the producer may fill chunk `n` only once every
/// bank is past `n - ringSlots`. All shared state is under one mutex, taken twice per
/// (bank, chunk) task — a few thousand times per GiB.
final class BankPipeline: @unchecked Sendable {
    private let banks: BankContexts
    private let chunkSize: Int
    private let wantedWorkers: Int
    private let ring: UnsafeMutableRawBufferPointer
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    // Under `mutex`.
    private var counts: [Int]
    private var published = 0
    private var next: [Int]
    private var busy: [Bool]
    private var closed = false

    // Producer only.
    private var threads: [pthread_t] = []
    private var openSlot: UnsafeMutableRawBufferPointer?
    private var openFilled = 0
    private var finished = false
    private var triedStarting = false
    /// Worker threads running (0 until the first chunk, or if none could be created).
    private(set) var startedWorkers = 0

    init(banks: BankContexts, workers: Int, chunkSize: Int) {
        self.banks = banks
        self.chunkSize = chunkSize
        wantedWorkers = workers
        ring = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize * MultiHasher.ringSlots, alignment: 4096)
        counts = Array(repeating: 0, count: MultiHasher.ringSlots)
        next = Array(repeating: 0, count: banks.contexts.count)
        busy = Array(repeating: false, count: banks.contexts.count)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
        ring.deallocate()
    }

    /// Copies `bytes` into the ring, publishing every slot that fills up.
    func copy(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let slot = openSlot ?? acquire()
            let count = min(bytes.count - offset, chunkSize - openFilled)
            UnsafeMutableRawBufferPointer(rebasing: slot[openFilled..<(openFilled + count)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
            offset += count
            openFilled += count
            openSlot = slot
            if openFilled == chunkSize { publishOpenSlot() }
        }
    }

    /// Reads one chunk straight into a free slot and publishes it.
    func fill(_ read: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> Int {
        publishOpenSlot()
        let slot = acquire()
        let count = try read(slot)
        precondition((0...slot.count).contains(count), "read returned \(count) for a \(slot.count)-byte buffer")
        publish(count)
        return count
    }

    /// Publishes what is left, lets the workers hash it and joins them. Afterwards the
    /// bank contexts belong to the caller again.
    func finish() {
        guard !finished else { return }
        publishOpenSlot()
        finished = true
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        for thread in threads { pthread_join(thread, nil) }
        threads = []
    }

    private func publishOpenSlot() {
        guard openSlot != nil else { return }
        publish(openFilled)
        openSlot = nil
        openFilled = 0
    }

    /// Waits for the slot of chunk `published` to be free (every bank past it).
    private func acquire() -> UnsafeMutableRawBufferPointer {
        pthread_mutex_lock(mutex)
        while published - (next.min() ?? published) >= MultiHasher.ringSlots {
            pthread_cond_wait(changed, mutex)
        }
        let index = published % MultiHasher.ringSlots
        pthread_mutex_unlock(mutex)
        return UnsafeMutableRawBufferPointer(rebasing: ring[(index * chunkSize)..<((index + 1) * chunkSize)])
    }

    /// Hands the acquired slot, holding `count` bytes, to the workers.
    private func publish(_ count: Int) {
        guard count > 0 else { return }
        if !triedStarting { startWorkers() }
        let index = published % MultiHasher.ringSlots
        if startedWorkers == 0, let base = ring.baseAddress {
            // No thread could be created: hash here, and the slot is free again at once.
            banks.update(base + index * chunkSize, count)
            return
        }
        pthread_mutex_lock(mutex)
        counts[index] = count
        published += 1
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    private func startWorkers() {
        triedStarting = true
        for _ in 0..<wantedWorkers {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let status = pthread_create(
                &thread, nil,
                { context in
                    guard let context else { return nil }
                    Unmanaged<BankPipeline>.fromOpaque(context).takeRetainedValue().work()
                    return nil
                }, context)
            if status == 0 {
                threads.append(thread)
            } else {
                Unmanaged<BankPipeline>.fromOpaque(context).release()
            }
        }
        startedWorkers = threads.count
    }

    /// A worker: repeatedly takes the bank furthest behind that has a chunk to hash.
    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            var pick = -1
            for bank in next.indices where !busy[bank] && next[bank] < published {
                if pick < 0 || next[bank] < next[pick] { pick = bank }
            }
            guard pick >= 0 else {
                if closed && next.allSatisfy({ $0 == published }) { break }
                pthread_cond_wait(changed, mutex)
                continue
            }
            busy[pick] = true
            let chunk = next[pick]
            let index = chunk % MultiHasher.ringSlots
            let count = counts[index]
            pthread_mutex_unlock(mutex)
            if let base = ring.baseAddress { EVP_DigestUpdate(banks.contexts[pick], base + index * chunkSize, count) }
            pthread_mutex_lock(mutex)
            busy[pick] = false
            next[pick] = chunk + 1
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(mutex)
    }
}
