//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on a file (`flock(LOCK_EX | LOCK_NB)`), held until released
/// or until the process exits (the kernel drops it then, so a crash never leaves a stale
/// lock). The holder's pid is written into the file for the refusal message.
public final class FileLock {
    public let path: String
    private var descriptor: Int32

    /// Takes the lock, creating the file (and its directory, mode 0700) if needed.
    /// - Throws: ``FileError``; when another process holds the lock, its `code` is
    ///   `EWOULDBLOCK` and the message names the holder's pid.
    public init(path: String) throws(FileError) {
        self.path = path
        let directory = AtomicFile.directory(of: path)
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw FileError(path: directory, operation: "create the lock directory", code: errno)
        }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0o600)
        guard fd >= 0 else { throw FileError(path: path, operation: "open the lock file", code: errno) }
        var status = stat()
        guard fstat(fd, &status) == 0, FileKind(mode: status.st_mode) == .regular else {
            close(fd)
            throw FileError(path: path, operation: "open the lock file", message: "is not a regular file")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            var holder = [UInt8](repeating: 0, count: 32)
            let count = holder.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            close(fd)
            guard code == EWOULDBLOCK else { throw FileError(path: path, operation: "lock", code: code) }
            let pid = String(decoding: holder.prefix(max(count, 0)), as: UTF8.self).filter(\.isNumber)
            throw FileError(
                path: path, operation: "lock",
                message: "held by another process\(pid.isEmpty ? "" : " (pid \(pid))")", code: code)
        }
        descriptor = fd
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Releases the lock now (also done when the object is released).
    public func release() {
        guard descriptor >= 0 else { return }
        _ = ftruncate(descriptor, 0)
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
