//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombLinux

#if canImport(Glibc)
import Glibc
#endif

/// Module bytes held in a sealed memfd: the builder opens ``path`` and reads exactly the
/// bytes that were hashed and measured, and nobody (domb included) can change them after
/// sealing (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`).
public final class SealedImage: @unchecked Sendable {
    public let fileDescriptor: Int32
    public let count: Int
    public let name: String

    /// `/proc/self/fd/N`: valid inside this process, which is where libxl reads it.
    public var path: String { "/proc/self/fd/\(fileDescriptor)" }

    /// Copies `bytes` into a new memfd and seals it.
    public static func sealing(name: String, bytes: [UInt8]) throws -> SealedImage {
        let writer = try Writer(name: name)
        try bytes.withUnsafeBytes { try writer.append($0) }
        return try writer.seal()
    }

    /// Whether all four seals are in place (F_GET_SEALS).
    public var isSealed: Bool { Linux.isSealedCompletely(fileDescriptor) }

    /// Builds a sealed image from chunks as they arrive (a bundle member streamed out of
    /// the archive), so a module is never held twice in memory.
    public final class Writer {
        private var fd: Int32
        private let name: String
        public private(set) var count = 0

        public init(name: String) throws {
            fd = Linux.createSealableMemoryFile(name: "domb:\(name)")
            self.name = name
            guard fd >= 0 else { throw BootError.system("memfd_create for \(name)", errno) }
        }

        public func append(_ bytes: UnsafeRawBufferPointer) throws {
            guard let base = bytes.baseAddress else { return }
            var written = 0
            while written < bytes.count {
                let n = write(fd, base + written, bytes.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw BootError.system("writing \(name) into its memfd", errno)
                }
                written += n
            }
            count += bytes.count
        }

        /// Seals the memfd and hands it over; the writer is empty afterwards.
        public func seal() throws -> SealedImage {
            guard Linux.sealCompletely(fd) == 0 else { throw BootError.system("sealing the memfd of \(name)", errno) }
            let image = SealedImage(fileDescriptor: fd, count: count, name: name)
            fd = -1
            return image
        }

        deinit { if fd >= 0 { close(fd) } }
    }

    private init(fileDescriptor: Int32, count: Int, name: String) {
        self.fileDescriptor = fileDescriptor
        self.count = count
        self.name = name
    }

    deinit { close(fileDescriptor) }

    /// Reads the sealed bytes back (for tests and for the plan backend's checks).
    public func readAll() throws -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = result.withUnsafeMutableBytes { buffer in
                pread(fileDescriptor, buffer.baseAddress.map { $0 + done }, count - done, off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BootError.system("reading back \(name)", errno) }
            done += n
        }
        return result
    }
}
