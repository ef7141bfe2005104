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
}

/// Hashes files in every requested bank in **one read pass**, in bounded memory: one
/// buffer of ``bufferSize`` bytes is filled by `read(2)` and handed to every bank's EVP
/// context (``MultiHasher``) before the next read, so memory use does not depend on the
/// file size and each byte leaves the kernel once.
public struct FileDigester: Sendable {
    /// Default read size: large enough that syscalls cost nothing next to hashing, small
    /// enough to stay in L2 while every bank hashes it.
    public static let defaultBufferSize = 512 << 10

    public var algorithms: [HashAlgorithm]
    public var bufferSize: Int

    public init(algorithms: [HashAlgorithm], bufferSize: Int = FileDigester.defaultBufferSize) {
        self.algorithms = algorithms
        self.bufferSize = max(4096, bufferSize)
    }

    /// Hashes the file at `path` (opened through ``InputFile``: regular files only).
    ///
    /// - Throws: ``FileError`` naming the path for I/O failures and inputs that are not
    ///   regular files, ``CryptoError`` when OpenSSL lacks a bank.
    public func digest(path: String) throws -> FileDigest {
        let file = try InputFile(path: path)
        _ = posix_fadvise(file.descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = try MultiHasher(algorithms: algorithms)
        var total: UInt64 = 0
        var calls = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let count = try file.read(into: buffer)
            calls += 1
            if count == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += UInt64(count)
        }
        guard total == file.size else {
            throw FileError(
                path: path, operation: "read", message: "file changed size while being hashed (\(file.size) → \(total) bytes)")
        }
        return FileDigest(digests: try hasher.finalize(), size: total, bytesRead: total, readCalls: calls)
    }
}

