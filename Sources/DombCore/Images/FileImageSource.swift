//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// An image read from a file on demand, counting the bytes it reads (the benchmark shows
/// that inspection reads only the headers and notes of a large ELF). Errors do not name
/// the path: callers wrap them with ``ContextError``.
public final class FileImageSource: ImageSource {
    public let path: String
    public let size: Int
    /// Bytes read so far through ``readBytes(at:count:)``.
    public private(set) var bytesRead = 0
    private let handle: FileHandle

    public init(path: String) throws(ParseError) {
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ParseError(.readFailed, "cannot open for reading")
        }
        do {
            let end = try handle.seekToEnd()
            guard let size = Int(exactly: end) else { throw ParseError.limit("size \(end) out of range") }
            self.size = size
        } catch {
            throw ParseError(.readFailed, "cannot determine the size: \(error)")
        }
        self.handle = handle
    }

    deinit { try? handle.close() }

    public func readBytes(at offset: Int, count: Int) throws(ParseError) -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw .truncated("\(count) bytes at offset \(offset) are outside the \(size)-byte file", offset: offset)
        }
        if count == 0 { return [] }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: count) ?? Data()
            guard data.count == count else {
                throw ParseError.truncated("short read of \(data.count) of \(count) bytes (file changed?)",
                    offset: offset)
            }
            bytesRead += count
            return Array(data)[...]
        } catch let error as ParseError {
            throw error
        } catch {
            throw ParseError(.readFailed, "read of \(count) bytes at offset \(offset) failed: \(error)",
                offset: offset)
        }
    }
}
