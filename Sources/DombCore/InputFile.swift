//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// A file that cannot be read, with the path and the reason in plain words (never
/// Foundation's `NSCocoaErrorDomain Code=260 … UserInfo=` text).
public struct FileError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable, CustomStringConvertible {
        case notFound
        case permissionDenied
        case isDirectory
        /// A device, socket or FIFO where a regular file is needed.
        case notRegularFile
        case tooLarge(size: UInt64, limit: UInt64)
        case empty
        /// Any other failure, in the system's words (`strerror`).
        case other(String)

        public var description: String {
            switch self {
            case .notFound: "no such file"
            case .permissionDenied: "permission denied"
            case .isDirectory: "is a directory, not a file"
            case .notRegularFile: "is not a regular file (a device, socket or pipe)"
            case .tooLarge(let size, let limit): "is \(size) bytes; at most \(limit) are read"
            case .empty: "is empty"
            case .other(let text): text
            }
        }
    }

    public var path: String
    public var reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// Opening the files a person names (descriptions, images, keys, plans): each failure is
/// a ``FileError``.
public enum InputFile {
    /// The size of the regular file at `path` (symlinks followed).
    /// - Throws: ``FileError`` if it is missing, unreadable, or not a regular file.
    public static func regularFileSize(_ path: String) throws(FileError) -> UInt64 {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw FileError(path: path, reason: reason(error))
        }
        // attributesOfItem does not follow a final symlink: look through it once more.
        if attributes[.type] as? FileAttributeType == .typeSymbolicLink {
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard resolved != path else { throw FileError(path: path, reason: .other("is a symbolic link loop")) }
            do {
                return try regularFileSize(resolved)
            } catch {
                throw FileError(path: path, reason: error.reason)
            }
        }
        switch attributes[.type] as? FileAttributeType {
        case .typeRegular?: break
        case .typeDirectory?: throw FileError(path: path, reason: .isDirectory)
        default: throw FileError(path: path, reason: .notRegularFile)
        }
        return (attributes[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// Reads the whole regular file at `path`.
    /// - Parameter limit: the most bytes accepted; a larger file is refused before it is read.
    /// - Throws: ``FileError``.
    public static func read(_ path: String, limit: Int) throws(FileError) -> [UInt8] {
        let size = try regularFileSize(path)
        guard size <= UInt64(limit) else { throw FileError(path: path, reason: .tooLarge(size: size, limit: UInt64(limit))) }
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        } catch {
            throw FileError(path: path, reason: reason(error))
        }
        defer { try? handle.close() }
        do {
            let data = try handle.read(upToCount: limit + 1) ?? Data()
            guard data.count <= limit else {
                throw FileError(path: path, reason: .tooLarge(size: UInt64(data.count), limit: UInt64(limit)))
            }
            return Array(data)
        } catch let error as FileError {
            throw error
        } catch {
            throw FileError(path: path, reason: reason(error))
        }
    }

    /// A Foundation or POSIX error in plain words.
    public static func reason(_ error: any Error) -> FileError.Reason {
        let nsError = error as NSError
        var code: Int32?
        if nsError.domain == NSPOSIXErrorDomain {
            code = Int32(truncatingIfNeeded: nsError.code)
        } else if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            code = Int32(truncatingIfNeeded: underlying.code)
        }
        if let code {
            switch code {
            case ENOENT, ENOTDIR: return .notFound
            case EACCES, EPERM: return .permissionDenied
            case EISDIR: return .isDirectory
            default: return .other(String(cString: strerror(code)).lowercased())
            }
        }
        guard nsError.domain == NSCocoaErrorDomain else { return .other(nsError.localizedDescription) }
        switch CocoaError.Code(rawValue: nsError.code) {
        case .fileReadNoSuchFile, .fileNoSuchFile: return .notFound
        case .fileReadNoPermission: return .permissionDenied
        default: return .other(nsError.localizedDescription)
        }
    }
}
