//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles

#if canImport(Glibc)
import Glibc
#endif

/// The digests of a file in several banks, and how it was read.
public struct FileDigest: Hashable, Sendable {
    public var digests: DigestSet
    /// Size of the file in bytes.
    public var size: UInt64
    /// Bytes obtained from `read(2)`; equals ``size``: the data was read once.
    public var bytesRead: UInt64
    /// Number of `read(2)` calls.
    public var readCalls: Int
    /// Threads that hashed the banks (1 = the single-thread path); see ``MultiHasher``.
    public var hashingThreads: Int
}

/// Hashes files in every requested bank in **one read pass**, in bounded memory: `read(2)`
/// fills ``MultiHasher``'s buffers directly (``MultiHasher/update(readingWith:)``), each
/// chunk is hashed in every bank — in parallel when there are cores for it — and the
/// buffer is reused, so memory use does not depend on the file size and each byte leaves
/// the kernel once.
public struct FileDigester: Sendable {
    /// Default read size (``MultiHasher/defaultChunkSize``).
    public static let defaultBufferSize = MultiHasher.defaultChunkSize

    public var algorithms: [HashAlgorithm]
    public var bufferSize: Int
    /// Hashing threads; nil = ``HashingParallelism/threadCount()``.
    public var threads: Int?
    /// Told each file's size when it is opened (``ByteProgress/expect(_:)``: the sizes of
    /// several files add up) and advanced by every byte hashed.
    public var progress: ByteProgress?

    public init(
        algorithms: [HashAlgorithm], bufferSize: Int = FileDigester.defaultBufferSize, threads: Int? = nil,
        progress: ByteProgress? = nil
    ) {
        self.algorithms = algorithms
        self.bufferSize = max(4096, bufferSize)
        self.threads = threads
        self.progress = progress
    }

    /// Hashes the file at `path` (opened through ``InputFile``: regular files only).
    ///
    /// - Throws: ``FileError`` naming the path for I/O failures and inputs that are not
    ///   regular files, ``CryptoError`` when OpenSSL lacks a bank.
    public func digest(path: String) throws -> FileDigest {
        let file = try InputFile(path: path)
        _ = posix_fadvise(file.descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
        progress?.begin(path)
        progress?.expect(file.size)
        var hasher = try MultiHasher(algorithms: algorithms, threads: threads, chunkSize: bufferSize, progress: progress)
        var total: UInt64 = 0
        var calls = 0
        while true {
            let count = try hasher.update(readingWith: { buffer in
                calls += 1
                return try file.read(into: buffer)
            })
            if count == 0 { break }
            total += UInt64(count)
        }
        guard total == file.size else {
            throw FileError(
                path: path, operation: "read", message: "file changed size while being hashed (\(file.size) → \(total) bytes)")
        }
        let threadsUsed = hasher.hashingThreads
        return FileDigest(
            digests: try hasher.finalize(), size: total, bytesRead: total, readCalls: calls, hashingThreads: threadsUsed)
    }
}

