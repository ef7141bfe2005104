//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

#if canImport(Glibc)
import Glibc
#endif

/// Directories domb creates for its outputs (state, event logs, enrolment records, dumps).
public enum Directory {
    /// Creates `path` and any missing parents (`mkdir -p`), each with `mode` (less the
    /// umask). An existing directory is fine.
    ///
    /// - Throws: ``FileError`` naming the component that could not be made and why, in
    ///   plain words (`/a/file/state: create the directory: /a/file is a regular file, not
    ///   a directory`), never Foundation's error text.
    public static func create(_ path: String, mode: UInt32 = 0o755) throws(FileError) {
        guard !path.isEmpty else { throw FileError(path: path, operation: "create the directory", message: "the path is empty") }
        let absolute = path.hasPrefix("/")
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        var prefix = absolute ? "" : "."
        for component in components {
            prefix += "/" + component
            if component == "." || component == ".." { continue }
            if mkdir(prefix, mode_t(mode)) == 0 { continue }
            let code = errno
            var status = stat()
            // EEXIST (or EACCES/EROFS on a parent that already exists): fine if it is a directory.
            if stat(prefix, &status) == 0 {
                let kind = FileKind(mode: status.st_mode)
                if kind == .directory { continue }
                throw FileError(
                    path: path, operation: "create the directory",
                    message: "\(display(prefix, absolute: absolute)) is \(kind.phrase), not a directory", code: ENOTDIR)
            }
            let reason = String(cString: strerror(code))
            let message = display(prefix, absolute: absolute) == path ? reason : "\(display(prefix, absolute: absolute)): \(reason)"
            throw FileError(path: path, operation: "create the directory", message: message, code: code)
        }
    }

    /// The names in directory `path` (without `.` and `..`), sorted.
    /// - Throws: ``FileError`` naming the path: missing, unreadable, or not a directory.
    public static func entries(_ path: String) throws(FileError) -> [String] {
        guard let stream = opendir(path) else { throw FileError(path: path, operation: "list the directory", code: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw FileError(path: path, operation: "list the directory", code: errno) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// A prefix built from `./` as the user wrote it (without the `./`).
    private static func display(_ prefix: String, absolute: Bool) -> String {
        absolute ? prefix : String(prefix.dropFirst(2))
    }
}
