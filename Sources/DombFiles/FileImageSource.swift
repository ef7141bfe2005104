//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// An image read from a file on demand, counting the bytes it reads (the benchmark shows
/// that inspection reads only the headers and notes of a large ELF). Opened through
/// ``InputFile``: a FIFO, device or directory is refused at once instead of blocking.
/// Errors do not name the path: callers wrap them with ``ContextError``.
public final class FileImageSource: ImageSource {
    public let path: String
    public let size: Int
    /// Bytes read so far through ``readBytes(at:count:)``.
    public private(set) var bytesRead = 0
    /// The opened file (its symbolic-link target, permissions).
    public let file: InputFile

    public init(path: String) throws(ParseError) {
        self.path = path
        do {
            file = try InputFile(path: path)
        } catch {
            throw ParseError(.readFailed, "cannot open for reading: \(error.message)")
        }
        guard let size = Int(exactly: file.size) else { throw ParseError.limit("size \(file.size) out of range") }
        self.size = size
    }

    public func readBytes(at offset: Int, count: Int) throws(ParseError) -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw .truncated("\(count) bytes at offset \(offset) are outside the \(size)-byte file", offset: offset)
        }
        if count == 0 { return [] }
        do {
            let bytes = try file.read(at: UInt64(offset), count: count)
            bytesRead += count
            return bytes[...]
        } catch {
            throw ParseError(.readFailed, "read of \(count) bytes at offset \(offset) failed: \(error.message)", offset: offset)
        }
    }
}
