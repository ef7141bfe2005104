//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// An input file, opened the one way domb opens inputs: without blocking, and only if it is
/// a regular file.
///
/// `open(2)` of a FIFO with no writer blocks forever, and a device node can hand out an
/// endless stream (`/dev/zero`) or block (`/dev/tty`): so the path is opened with
/// `O_NONBLOCK | O_NOCTTY`, checked with `fstat` on the open descriptor (no race with a
/// rename), and refused with a plain message unless it is a regular file. A path that is a
/// symbolic link is followed, and the link is reported (``symbolicLinkTarget``) so that a
/// command can tell the user what it really read.
public final class InputFile {
    public let path: String
    /// The open descriptor (blocking again once the file is known to be regular).
    public let descriptor: Int32
    /// Size in bytes at open time. Zero for pseudo-files whose size is unknown
    /// (securityfs' `binary_bios_measurements`): ``readAll(limit:)`` reads to the end.
    public let size: UInt64
    /// Permission bits (`st_mode & 0o7777`).
    public let permissions: UInt32
    public let identity: FileIdentity
    /// Where the path leads when its last component is a symbolic link (resolved fully).
    public let symbolicLinkTarget: String?

    /// Opens `path` for reading.
    /// - Throws: ``FileError`` naming the path: missing, unreadable, or not a regular file
    ///   (directory, FIFO, device, socket), in plain words.
    public init(path: String) throws(FileError) {
        self.path = path
        var linkStatus = stat()
        if lstat(path, &linkStatus) == 0, FileKind(mode: linkStatus.st_mode) == .symbolicLink {
            symbolicLinkTarget = realpath(path, nil).map { pointer in
                defer { free(pointer) }
                return String(cString: pointer)
            } ?? "(a dangling link)"
        } else {
            symbolicLinkTarget = nil
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            throw FileError(path: path, operation: "open", message: Self.openFailure(code), code: code)
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            close(fd)
            throw FileError(path: path, operation: "stat", code: code)
        }
        let kind = FileKind(mode: status.st_mode)
        guard kind == .regular else {
            close(fd)
            throw FileError(
                path: path, operation: "open",
                message: "is \(kind.phrase), not a regular file: domb reads its inputs only from regular files")
        }
        // Back to blocking reads: O_NONBLOCK only had to get past open(2).
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        descriptor = fd
        size = UInt64(max(status.st_size, 0))
        permissions = UInt32(status.st_mode) & 0o7777
        identity = FileIdentity(status)
    }

    deinit { close(descriptor) }

    /// Whether users other than the owner and group may read the file (mode `o+r`).
    public var isWorldReadable: Bool { permissions & 0o004 != 0 }

    private static func openFailure(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES: "permission denied"
        case ELOOP: "too many levels of symbolic links"
        case ENOTDIR: "a component of the path is not a directory"
        default: String(cString: strerror(code))
        }
    }

    /// Reads up to `buffer.count` bytes at the current position (retrying `EINTR`);
    /// returns 0 at the end of the file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(FileError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let count = Glibc.read(descriptor, base, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw FileError(path: path, operation: "read", code: errno)
        }
    }

    /// Reads exactly `count` bytes at `offset`, or fails naming the short read.
    public func read(at offset: UInt64, count: Int) throws(FileError) -> [UInt8] {
        guard count > 0 else { return [] }
        var failure: FileError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, filled in
            filled = 0
            while filled < count {
                guard let base = buffer.baseAddress else { return }
                let got = pread(descriptor, base + filled, count - filled, off_t(offset) + off_t(filled))
                if got < 0 {
                    if errno == EINTR { continue }
                    failure = FileError(path: path, operation: "read", code: errno)
                    return
                }
                if got == 0 { break }
                filled += got
            }
        }
        if let failure { throw failure }
        guard bytes.count == count else {
            throw FileError(
                path: path, operation: "read",
                message: "short read: \(bytes.count) of \(count) bytes at offset \(offset) (did the file change?)")
        }
        return bytes
    }

    /// The whole file from the current position, refusing more than `limit` bytes. The size
    /// at open time is only a hint (pseudo-files report 0), so this reads to the end.
    public func readAll(limit: Int) throws(FileError) -> [UInt8] {
        guard size <= UInt64(limit) else {
            throw FileError(path: path, operation: "read", message: "is \(size) bytes, more than the \(limit) bytes domb reads")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(size))
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let result: Result<Int, FileError> = chunk.withUnsafeMutableBytes { buffer in
                do throws(FileError) { return .success(try read(into: buffer)) } catch { return .failure(error) }
            }
            let count = try result.get()
            if count == 0 { return bytes }
            guard bytes.count + count <= limit else {
                throw FileError(path: path, operation: "read", message: "larger than the \(limit) bytes domb reads")
            }
            bytes += chunk[0..<count]
        }
    }

    /// Reads the whole file at `path` (see ``init(path:)`` and ``readAll(limit:)``).
    public static func read(_ path: String, limit: Int) throws(FileError) -> [UInt8] {
        try InputFile(path: path).readAll(limit: limit)
    }

    /// Like ``read(_:limit:)``, but nil when the file does not exist (anything else that
    /// goes wrong is still an error).
    public static func readIfPresent(_ path: String, limit: Int) throws(FileError) -> [UInt8]? {
        do {
            return try read(path, limit: limit)
        } catch where error.code == ENOENT {
            return nil
        }
    }
}
