//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A cpio "newc" archive, the initramfs format (Linux
/// Documentation/driver-api/early-userspace/buffer-format.rst): 110-byte ASCII headers
/// (`070701`, or `070702` with checksums), the name padded to 4 bytes, the data padded to
/// 4 bytes, ending with the entry `TRAILER!!!`.
public struct CPIOArchive: Hashable, Sendable, Codable {
    public struct Entry: Hashable, Sendable, Codable {
        public var name: String
        public var mode: UInt32
        public var size: Int
    }

    /// Most entries domb walks in one archive.
    public static let maxEntries = 100_000
    /// Longest path name domb accepts (Linux's PATH_MAX).
    public static let maxNameSize = 4096
    public static let headerSize = 110

    public var entries: [Entry]
    /// Bytes up to and including the trailer entry's padding.
    public var length: Int

    public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.starts(with: "070701".utf8) || bytes.starts(with: "070702".utf8)
    }

    /// Parses one archive from the start of `bytes`; what follows the trailer (padding, or
    /// another concatenated archive) is left for the caller.
    public init(parsing bytes: ArraySlice<UInt8>, baseOffset: Int = 0) throws(ParseError) {
        var reader = ByteReader(slice: bytes, baseOffset: baseOffset)
        var entries: [Entry] = []
        while true {
            let headerOffset = reader.offset
            guard entries.count < Self.maxEntries else {
                throw .limit("cpio archive has more than \(Self.maxEntries) entries", offset: headerOffset)
            }
            let header = try reader.readBytes(Self.headerSize, field: "cpio header")
            guard Self.hasMagic(header) else {
                throw .invalid("cpio header magic is not 070701/070702", offset: headerOffset)
            }
            var fields: [UInt32] = []
            var index = header.startIndex + 6
            for fieldIndex in 0..<13 {
                let text = header[index..<(index + 8)]
                guard let value = UInt32(String(decoding: text, as: UTF8.self), radix: 16),
                    text.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x46).contains($0 & 0xDF) })
                else {
                    throw .invalid("cpio header field \(fieldIndex) is not 8 hex digits", offset: headerOffset + 6 + 8 * fieldIndex)
                }
                fields.append(value)
                index += 8
            }
            let mode = fields[1]
            let fileSize = Int(fields[6])
            let nameSize = Int(fields[11])
            guard nameSize >= 1, nameSize <= Self.maxNameSize else {
                throw .invalid("cpio name size \(nameSize) is outside 1...\(Self.maxNameSize)", offset: headerOffset + 94)
            }
            let nameBytes = try reader.readBytes(nameSize, field: "cpio entry name")
            guard nameBytes.last == 0 else {
                throw .invalid("cpio entry name is not NUL-terminated", offset: headerOffset + Self.headerSize)
            }
            let name = String(decoding: nameBytes.dropLast(), as: UTF8.self)
            try reader.skip(Self.padding(Self.headerSize + nameSize), field: "cpio name padding")
            try reader.skip(fileSize, field: "cpio data of \(name)")
            try reader.skip(Self.padding(fileSize), field: "cpio data padding")
            if name == "TRAILER!!!" { break }
            entries.append(Entry(name: name, mode: mode, size: fileSize))
        }
        self.entries = entries
        self.length = reader.offset - baseOffset
    }

    private static func padding(_ length: Int) -> Int { (4 - length % 4) % 4 }
}
