//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

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

    public init(algorithms: [HashAlgorithm], bufferSize: Int = FileDigester.defaultBufferSize, threads: Int? = nil) {
        self.algorithms = algorithms
        self.bufferSize = max(4096, bufferSize)
        self.threads = threads
    }

    /// Hashes the file at `path`.
    ///
    /// - Throws: ``FileDigestError`` naming the path and the errno text for I/O failures,
    ///   ``CryptoError`` when OpenSSL lacks a bank.
    public func digest(path: String) throws -> FileDigest {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileDigestError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw FileDigestError(path: path, operation: "fstat", errno: errno) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw FileDigestError(path: path, operation: "open", message: "not a regular file")
        }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = try MultiHasher(algorithms: algorithms, threads: threads, chunkSize: bufferSize)
        var total: UInt64 = 0
        var calls = 0
        while true {
            let count = try hasher.update(readingWith: { buffer in
                while true {
                    let count = read(fd, buffer.baseAddress, buffer.count)
                    calls += 1
                    if count >= 0 { return count }
                    if errno != EINTR { throw FileDigestError(path: path, operation: "read", errno: errno) }
                }
            })
            if count == 0 { break }
            total += UInt64(count)
        }
        guard total == UInt64(status.st_size) else {
            throw FileDigestError(
                path: path, operation: "read", message: "file changed size while being hashed (\(status.st_size) → \(total) bytes)")
        }
        let threadsUsed = hasher.hashingThreads
        return FileDigest(
            digests: try hasher.finalize(), size: total, bytesRead: total, readCalls: calls, hashingThreads: threadsUsed)
    }
}

/// An I/O failure while hashing a file.
public struct FileDigestError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var message: String

    public init(path: String, operation: String, message: String) {
        self.path = path
        self.operation = operation
        self.message = message
    }

    init(path: String, operation: String, errno code: Int32) {
        self.init(path: path, operation: operation, message: String(cString: strerror(code)))
    }

    public var description: String { "\(path): \(operation): \(message)" }
}
