//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// A file-system failure, naming the path and what was being done, in plain words.
public struct FileError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    /// "open", "read", "write", "rename", …
    public var operation: String
    public var message: String
    /// The `errno` behind the failure, when there is one (`ENOSPC`, `EROFS`, …).
    public var code: Int32?

    public init(path: String, operation: String, message: String, code: Int32? = nil) {
        self.path = path
        self.operation = operation
        self.message = message
        self.code = code
    }

    /// A failure with the text of `code` (`strerror`).
    public init(path: String, operation: String, code: Int32) {
        self.init(path: path, operation: operation, message: String(cString: strerror(code)), code: code)
    }

    public var description: String { "\(path): \(operation): \(message)" }
}

/// What a path names, in the words of `ls -l`'s first column.
enum FileKind: Sendable {
    case regular, directory, characterDevice, blockDevice, fifo, socket, symbolicLink, unknown

    init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        case S_IFLNK: self = .symbolicLink
        default: self = .unknown
        }
    }

    var phrase: String {
        switch self {
        case .regular: "a regular file"
        case .directory: "a directory"
        case .characterDevice: "a character device"
        case .blockDevice: "a block device"
        case .fifo: "a FIFO (named pipe)"
        case .socket: "a socket"
        case .symbolicLink: "a symbolic link"
        case .unknown: "not a regular file"
        }
    }
}

/// The device and inode of a file: two paths name the same file exactly when these are equal.
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64

    init(_ status: stat) {
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }

    /// The identity of what `path` names, following symbolic links; nil when it does not exist.
    public static func of(path: String) -> FileIdentity? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return FileIdentity(status)
    }
}
