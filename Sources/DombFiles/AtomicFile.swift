//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// The one output policy: what domb may replace.
///
/// domb writes every output by renaming a complete temporary file over the target, so it
/// refuses a target that a rename would destroy rather than write: a directory, a device
/// node, a FIFO, a socket, a symbolic link (the rename would replace the link, not write
/// where it points), and a file that is one of the command's own inputs (`build X.dts -o
/// X.dts`, also through a link or a second hard link). A missing target or a regular file
/// is fine. The exception, for commands that write one stream: ``writeThrough(_:to:)``.
public enum OutputTarget {
    /// Paths that mean "standard output" to the commands that allow it (documented per
    /// command): `-` and `/dev/stdout`.
    public static let standardOutputNames: Set<String> = ["-", "/dev/stdout"]

    /// Refuses `path` as an output unless it is missing or a regular file that is none of
    /// `inputs`.
    /// - Throws: ``FileError`` naming the path and what it is.
    public static func check(_ path: String, inputs: [FileIdentity]) throws(FileError) {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            if errno == ENOENT { return }
            throw FileError(path: path, operation: "check the output", code: errno)
        }
        let kind = FileKind(mode: status.st_mode)
        guard kind == .regular else {
            let advice =
                kind == .symbolicLink
                ? "domb replaces outputs by renaming a new file over them and does not replace links: give the file the link points to"
                : "domb replaces only regular files"
            throw FileError(path: path, operation: "write", message: "is \(kind.phrase): \(advice)")
        }
        if inputs.contains(FileIdentity(status)) {
            throw FileError(path: path, operation: "write", message: "is one of this command's inputs: refusing to overwrite it")
        }
    }

    /// The identities of the `inputs` that exist.
    public static func identities(_ inputs: [String]) -> [FileIdentity] { inputs.compactMap(FileIdentity.of(path:)) }

    /// Writes `bytes` straight to standard output when `path` is one of
    /// ``standardOutputNames``; returns false (nothing written) for any other path.
    public static func writeThrough(_ bytes: [UInt8], to path: String) throws(FileError) -> Bool {
        guard standardOutputNames.contains(path) else { return false }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                Glibc.write(STDOUT_FILENO, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, operation: "write", code: errno)
            }
            offset += written
        }
        return true
    }
}

/// A file written under a temporary name in the target's directory and renamed over the
/// target only by ``commit()``, after `fsync`: readers see the old file or the complete new
/// one, never a partial write. Every file domb writes goes through here, under the
/// ``OutputTarget`` policy (checked when the temporary file is made and again just before
/// the rename). Dropped without a commit, the temporary file is removed, unless
/// ``abandon()`` kept it.
public final class AtomicFile {
    public let path: String
    public let temporaryPath: String
    /// The open descriptor of the temporary file, for writers; -1 once committed.
    public private(set) var descriptor: Int32
    private let inputs: [FileIdentity]
    private var finished = false

    /// Creates the temporary file next to `path`.
    /// - Parameters:
    ///   - inputs: the files the command reads; the output may not be one of them.
    ///   - mode: permissions of the new file (0644: domb's outputs are public artefacts,
    ///     except where a caller knows better).
    /// - Throws: ``FileError`` when the target is refused by ``OutputTarget`` or the
    ///   temporary file cannot be created (missing or read-only directory).
    public init(path: String, inputs: [String] = [], mode: UInt32 = 0o644) throws(FileError) {
        self.path = path
        self.inputs = OutputTarget.identities(inputs)
        try OutputTarget.check(path, inputs: self.inputs)
        let directory = Self.directory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        var template = Array("\(directory)/.\(name).tmp.XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else {
            let code = errno
            throw FileError(path: path, operation: "create a temporary file in \(directory)", code: code)
        }
        temporaryPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        descriptor = fd
        fchmod(fd, mode_t(mode))
    }

    deinit {
        if !finished {
            if descriptor >= 0 { close(descriptor) }
            unlink(temporaryPath)
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    /// Writes all of `bytes` at the current position.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let written = Glibc.write(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw FileError(path: temporaryPath, operation: "write", code: errno)
            }
            offset += written
        }
    }

    /// Writes all of `bytes` at the current position.
    public func write(_ bytes: [UInt8]) throws(FileError) {
        let failure: FileError? = bytes.withUnsafeBytes { buffer in
            do throws(FileError) {
                try write(buffer)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// Allocates `size` bytes of disk space for the file now (`posix_fallocate`), so that a
    /// full file system is found before the work whose result the file must hold, not after.
    /// File systems that cannot preallocate are accepted as they are.
    public func reserve(_ size: Int) throws(FileError) {
        guard size > 0 else { return }
        let result = posix_fallocate(descriptor, 0, off_t(size))
        guard result == 0 || result == EOPNOTSUPP || result == EINVAL else {
            throw FileError(path: path, operation: "reserve \(size) bytes", code: result)
        }
    }

    /// Makes the file's contents exactly `bytes` (from offset 0, then truncated: any space
    /// reserved beyond is released).
    public func replaceContents(_ bytes: [UInt8]) throws(FileError) {
        guard lseek(descriptor, 0, SEEK_SET) == 0 else { throw FileError(path: temporaryPath, operation: "seek", code: errno) }
        try write(bytes)
        guard ftruncate(descriptor, off_t(bytes.count)) == 0 else {
            throw FileError(path: temporaryPath, operation: "truncate", code: errno)
        }
    }

    /// Replaces `path` with `bytes` atomically: a crash leaves the old file or the new one,
    /// never a torn one.
    public static func write(_ bytes: [UInt8], to path: String, inputs: [String] = [], mode: UInt32 = 0o644) throws(FileError) {
        let file = try AtomicFile(path: path, inputs: inputs, mode: mode)
        try file.write(bytes)
        try file.commit()
    }

    /// `fsync`s the data, checks the target again, renames the temporary file over it and
    /// `fsync`s the directory so the rename itself is durable.
    public func commit() throws(FileError) {
        guard !finished else { return }
        if descriptor >= 0 {
            guard fsync(descriptor) == 0 else { throw FileError(path: temporaryPath, operation: "fsync", code: errno) }
            let closed = close(descriptor)
            descriptor = -1
            guard closed == 0 else { throw FileError(path: temporaryPath, operation: "close", code: errno) }
        }
        // The target may have been replaced since init (a link planted meanwhile).
        try OutputTarget.check(path, inputs: inputs)
        guard rename(temporaryPath, path) == 0 else {
            throw FileError(path: path, operation: "rename \(temporaryPath) to it", code: errno)
        }
        finished = true
        let directoryDescriptor = open(Self.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Gives up on the rename but keeps the temporary file (written and synced as far as it
    /// got), for a caller that must not lose what it holds; returns its path.
    public func abandon() -> String {
        if descriptor >= 0 {
            _ = fsync(descriptor)
            close(descriptor)
            descriptor = -1
        }
        finished = true
        return temporaryPath
    }
}
