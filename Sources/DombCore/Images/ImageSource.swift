//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension ParseError.Code {
    /// Reading the input itself failed (an I/O error, not a format error).
    public static let readFailed = ParseError.Code("read failed")
}

/// Random access to an image's bytes, so a parser reads only the ranges it needs (the ELF
/// header, the program headers, the note segments) rather than the whole file.
public protocol ImageSource: AnyObject {
    /// Total size in bytes.
    var size: Int { get }
    /// Reads `count` bytes at `offset`. Callers check the range against ``size`` first
    /// (``ImageSource/reader(at:count:field:)`` does).
    func readBytes(at offset: Int, count: Int) throws(ParseError) -> ArraySlice<UInt8>
}

extension ImageSource {
    /// A ``ByteReader`` over `count` bytes at `offset`, with absolute offsets.
    /// - Throws: ``ParseError/Code-swift.struct/truncated`` naming `field` when the range runs
    ///   past the end of the image.
    public func reader(at offset: Int, count: Int, field: @autoclosure () -> String) throws(ParseError) -> ByteReader {
        guard offset >= 0, count >= 0 else {
            throw .invalid("\(field()): negative offset or length (\(offset), \(count))", offset: nil)
        }
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= size else {
            throw .truncated(
                "\(field()): \(count) bytes at offset \(offset) run past the end of the \(size)-byte image",
                offset: offset)
        }
        return ByteReader(slice: try readBytes(at: offset, count: count), baseOffset: offset)
    }
}

/// An image held in memory.
public final class MemoryImageSource: ImageSource {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: Int { bytes.count }

    public func readBytes(at offset: Int, count: Int) throws(ParseError) -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw .truncated("\(count) bytes at offset \(offset) are outside the \(bytes.count)-byte image",
                offset: offset)
        }
        return bytes[offset..<(offset + count)]
    }
}
