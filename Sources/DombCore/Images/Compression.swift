//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A compression format recognised by its magic, as libxenguest's bzImage loader and
/// Linux's initramfs unpacker do (`xg_dom_bzimageloader.c`, `lib/decompress.c`).
public enum CompressionFormat: String, Hashable, Sendable, Codable, CaseIterable {
    case gzip
    case bzip2
    case xz
    case lzma
    case lzo
    case lz4
    case zstd

    /// Magic bytes at the start of the stream.
    public var magic: [UInt8] {
        switch self {
        case .gzip: [0x1F, 0x8B]
        case .bzip2: Array("BZh".utf8)
        case .xz: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]
        // The lzma "alone" header starts with the properties byte 0x5D and a dictionary size
        // whose low byte is 0 (Xen checks `5D 00`).
        case .lzma: [0x5D, 0x00]
        case .lzo: [0x89, 0x4C, 0x5A, 0x4F, 0x00]
        // Linux uses the lz4 legacy frame (`lz4 -l`), magic 0x184C2102; a modern frame is 0x184D2204.
        case .lz4: [0x02, 0x21]
        case .zstd: [0x28, 0xB5, 0x2F, 0xFD]
        }
    }

    /// The format whose magic starts `bytes`, if any.
    public static func detect(_ bytes: some Collection<UInt8>) -> CompressionFormat? {
        if bytes.starts(with: [0x04, 0x22, 0x4D, 0x18]) { return .lz4 }  // lz4 frame format
        return allCases.first { bytes.starts(with: $0.magic) }
    }
}

/// Decompresses a stream, refusing to produce more than a limit (no zip bombs). The
/// implementation lives outside the pure core (DombArchive, over libarchive).
public protocol Decompressing: Sendable {
    /// Decompresses `bytes`, a single stream of `format` possibly followed by padding.
    /// - Throws: an error naming the format when the stream is corrupt or truncated, or when
    ///   the output would exceed `limit` bytes.
    func decompress(_ bytes: ArraySlice<UInt8>, format: CompressionFormat, limit: Int) throws -> [UInt8]
}
