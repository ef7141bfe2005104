//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The one cursor every binary parser in domb uses.
///
/// A short read throws ``ParseError/Code-swift.struct/truncated`` naming the field and the
/// absolute offset, and leaves the reader where it was. Lengths taken from the input are
/// checked against what is left before anything is sliced or allocated.
public struct ByteReader: Sendable {
    private let storage: ArraySlice<UInt8>
    private var position: Int
    /// Absolute offset of `storage.startIndex` in the original input, for error messages.
    public let baseOffset: Int

    public init(_ bytes: [UInt8], baseOffset: Int = 0) {
        self.init(slice: bytes[...], baseOffset: baseOffset)
    }

    public init(slice: ArraySlice<UInt8>, baseOffset: Int = 0) {
        self.storage = slice
        self.position = slice.startIndex
        self.baseOffset = baseOffset
    }

    /// Absolute offset of the next byte to read.
    public var offset: Int { baseOffset + (position - storage.startIndex) }
    /// Number of unread bytes.
    public var remaining: Int { storage.endIndex - position }
    public var isEmpty: Bool { remaining == 0 }
    /// The unread bytes, without consuming them.
    public var unread: ArraySlice<UInt8> { storage[position...] }

    public mutating func readInteger<T: FixedWidthInteger>(
        _: T.Type = T.self, endianness: Endianness, field: @autoclosure () -> String = "integer"
    ) throws(ParseError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw .truncated("\(field()): need \(size) bytes, \(remaining) left", offset: offset)
        }
        var value: T = 0
        for i in 0..<size {
            let byte = T(truncatingIfNeeded: storage[position + i])
            switch endianness {
            case .little: value |= byte << (8 * i)
            case .big: value = (value << 8) | byte
            }
        }
        position += size
        return value
    }

    public mutating func readLE<T: FixedWidthInteger>(
        _: T.Type, _ field: @autoclosure () -> String = "integer"
    ) throws(ParseError) -> T {
        try readInteger(T.self, endianness: .little, field: field())
    }

    public mutating func readBE<T: FixedWidthInteger>(
        _: T.Type, _ field: @autoclosure () -> String = "integer"
    ) throws(ParseError) -> T {
        try readInteger(T.self, endianness: .big, field: field())
    }

    /// Reads exactly `count` bytes.
    public mutating func readBytes(
        _ count: Int, field: @autoclosure () -> String = "bytes"
    ) throws(ParseError) -> ArraySlice<UInt8> {
        guard count >= 0 else { throw .invalid("\(field()): negative length \(count)", offset: offset) }
        guard remaining >= count else {
            throw .truncated("\(field()): need \(count) bytes, \(remaining) left", offset: offset)
        }
        let result = storage[position..<(position + count)]
        position += count
        return result
    }

    /// Reads `count` bytes as a sub-reader whose offsets stay absolute.
    public mutating func readReader(
        _ count: Int, field: @autoclosure () -> String = "bytes"
    ) throws(ParseError) -> ByteReader {
        let start = offset
        let slice = try readBytes(count, field: field())
        return ByteReader(slice: slice, baseOffset: start)
    }

    /// Reads a length prefix of type `L` and then that many bytes; on failure nothing is consumed.
    public mutating func readLengthPrefixed<L: FixedWidthInteger>(
        _: L.Type, endianness: Endianness, field: @autoclosure () -> String = "length-prefixed field"
    ) throws(ParseError) -> ArraySlice<UInt8> {
        let name = field()
        let saved = position
        let lengthOffset = offset
        let length = try readInteger(L.self, endianness: endianness, field: "\(name) length")
        guard let count = Int(exactly: length) else {
            position = saved
            throw .invalid("\(name): length \(length) out of range", offset: lengthOffset)
        }
        do {
            return try readBytes(count, field: name)
        } catch {
            position = saved
            throw error
        }
    }

    public mutating func skip(_ count: Int, field: @autoclosure () -> String = "padding") throws(ParseError) {
        _ = try readBytes(count, field: field())
    }

    /// Throws unless every byte has been consumed.
    public func expectEnd(_ what: @autoclosure () -> String) throws(ParseError) {
        guard isEmpty else {
            throw ParseError(.trailingBytes, "\(what()): \(remaining) unexpected trailing bytes", offset: offset)
        }
    }

    /// Runs `body` on a copy and commits the advance only if it returns a value
    /// (swift-nio-ssh's `rewindOnNilOrError`).
    public mutating func tentatively<T>(_ body: (inout ByteReader) throws -> T?) rethrows -> T? {
        var copy = self
        guard let value = try body(&copy) else { return nil }
        self = copy
        return value
    }
}

public enum Endianness: Sendable {
    case little
    case big
}

/// The one writer every binary serialiser in domb uses.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func writeInteger<T: FixedWidthInteger>(_ value: T, endianness: Endianness) {
        let size = MemoryLayout<T>.size
        switch endianness {
        case .little:
            for i in 0..<size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
        case .big:
            for i in (0..<size).reversed() { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
        }
    }

    public mutating func writeLE<T: FixedWidthInteger>(_ value: T) { writeInteger(value, endianness: .little) }
    public mutating func writeBE<T: FixedWidthInteger>(_ value: T) { writeInteger(value, endianness: .big) }

    public mutating func writeBytes<S: Sequence>(_ data: S) where S.Element == UInt8 { bytes.append(contentsOf: data) }

    public mutating func writeZeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }
}
