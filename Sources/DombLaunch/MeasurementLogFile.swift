//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// Reading and atomically replacing an event log file.
public enum MeasurementLogFile {
    /// Largest log file read (the parser's own limit).
    public static let maximumSize = EventLog.Limits.default.maximumLogSize

    /// The file's bytes, or nil when it does not exist.
    public static func read(path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw FileError(path: path, operation: "open", code: errno)
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw FileError(path: path, operation: "fstat", code: errno) }
        guard status.st_size <= maximumSize else {
            throw FileError(path: path, operation: "read", message: "larger than \(maximumSize) bytes")
        }
        // Read straight into the result. st_size is only a hint: securityfs reports 0 for
        // binary_bios_measurements, so keep reading until end of file.
        var capacity = max(Int(status.st_size) + 1, 1 << 16)
        var bytes: [UInt8] = []
        while true {
            let filled = bytes.count
            var failure: Int32 = 0
            var reachedEnd = false
            let grown = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                guard let base = buffer.baseAddress else { return }
                bytes.withUnsafeBytes { old in
                    if let source = old.baseAddress { UnsafeMutableRawPointer(base).copyMemory(from: source, byteCount: filled) }
                }
                count = filled
                while count < capacity {
                    let got = Glibc.read(fd, base + count, capacity - count)
                    if got < 0 {
                        if errno == EINTR { continue }
                        failure = errno
                        return
                    }
                    if got == 0 {
                        reachedEnd = true
                        return
                    }
                    count += got
                }
            }
            if failure != 0 { throw FileError(path: path, operation: "read", code: failure) }
            bytes = grown
            guard bytes.count <= maximumSize else {
                throw FileError(path: path, operation: "read", message: "larger than \(maximumSize) bytes")
            }
            if reachedEnd { break }
            guard capacity <= maximumSize else {
                throw FileError(path: path, operation: "read", message: "larger than \(maximumSize) bytes")
            }
            capacity *= 2
        }
        return bytes
    }

    /// Replaces `path` with `bytes` atomically: a temporary file in the same directory,
    /// written and fsynced, renamed over the target, then the directory fsynced. A crash
    /// leaves either the old log or the new one, never a torn one.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        try AtomicFile.write(bytes, to: path)
    }
}

/// A file-system failure, naming the path.
public struct FileError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var message: String

    public init(path: String, operation: String, message: String) {
        self.path = path
        self.operation = operation
        self.message = message
    }

    init(path: String, operation: String, code: Int32) {
        self.init(path: path, operation: operation, message: String(cString: strerror(code)))
    }

    public var description: String { "\(path): \(operation): \(message)" }
}
