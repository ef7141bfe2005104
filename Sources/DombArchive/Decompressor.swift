//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CArchive
import DombCore

/// A decompression failure: a corrupt or truncated stream, an unsupported format, or output
/// beyond the caller's limit.
public struct DecompressionError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The stream is corrupt or ends early.
        public static let corrupt = Code("corrupt stream")
        /// The output would exceed the caller's limit (a zip bomb, or simply too big).
        public static let limitExceeded = Code("limit exceeded")
        /// libarchive cannot decode this format in-process.
        public static let unsupported = Code("unsupported")
    }

    public var code: Code
    public var format: CompressionFormat?
    public var reason: String

    public init(_ code: Code, format: CompressionFormat?, _ reason: String) {
        self.code = code
        self.format = format
        self.reason = reason
    }

    public var description: String {
        if let format { return "\(format): \(reason)" }
        return reason
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// Bounded decompression of gzip, bzip2, xz, lzma, lzo, lz4 and zstd streams through
/// libarchive's read filters with its "raw" format (one stream, no archive structure).
///
/// The output is capped: once it would pass `limit` bytes, decompression stops and a
/// ``DecompressionError/Code-swift.struct/limitExceeded`` error is thrown, so a small
/// stream that expands enormously costs at most `limit` bytes of memory.
public struct Decompressor: Decompressing {
    public init() {}

    /// Decompresses `bytes` as `format`.
    /// - Throws: ``DecompressionError``.
    public func decompress(_ bytes: ArraySlice<UInt8>, format: CompressionFormat, limit: Int) throws -> [UInt8] {
        try Self.decompress(bytes, format: format, limit: limit)
    }

    /// Decompresses `bytes`, detecting the format by its magic.
    /// - Returns: the format and the decompressed bytes.
    /// - Throws: ``DecompressionError``, also when no known magic starts `bytes`.
    public static func decompress(_ bytes: ArraySlice<UInt8>, limit: Int) throws(DecompressionError)
        -> (format: CompressionFormat, bytes: [UInt8])
    {
        guard let format = CompressionFormat.detect(bytes) else {
            throw DecompressionError(.unsupported, format: nil,
                "no known compression magic (starts \(bytes.prefix(6).hexString))")
        }
        return (format, try decompress(bytes, format: format, limit: limit))
    }

    /// Decompresses `bytes` as `format`, producing at most `limit` bytes.
    /// - Throws: ``DecompressionError``.
    public static func decompress(_ bytes: ArraySlice<UInt8>, format: CompressionFormat, limit: Int)
        throws(DecompressionError) -> [UInt8]
    {
        guard limit >= 0 else { throw DecompressionError(.limitExceeded, format: format, "negative limit \(limit)") }
        guard let archive = archive_read_new() else {
            throw DecompressionError(.unsupported, format: format, "archive_read_new failed (out of memory)")
        }
        defer { archive_read_free(archive) }

        // Only the one filter asked for: never let libarchive guess another format, and never
        // let it fall back to an external program (ARCHIVE_WARN means it would).
        let status = enableFilter(format, on: archive)
        guard status == ARCHIVE_OK else {
            throw DecompressionError(.unsupported, format: format,
                "this libarchive cannot decode \(format) in-process (\(errorText(archive)))")
        }
        guard archive_read_support_format_raw(archive) == ARCHIVE_OK else {
            throw DecompressionError(.unsupported, format: format, "raw format: \(errorText(archive))")
        }

        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(DecompressionError) -> [UInt8] in try run(archive, buffer, format: format, limit: limit) }
        }
        let output = try result.get()
        if format == .gzip { try verifyGzipTrailer(bytes, output) }
        return output
    }

    /// The CRC-32 gzip uses (exposed for tests).
    public static func crc32(_ bytes: [UInt8]) -> UInt32 { CRC32.checksum(bytes) }

    /// Decompresses untrusted bytes for fuzzing: any format, at most 16 MiB; true if it decoded.
    @discardableResult
    public static func fuzz(_ bytes: [UInt8]) -> Bool {
        (try? decompress(bytes[...], limit: 16 << 20)) != nil
    }

    /// Most zero bytes of padding domb looks past for the gzip trailer.
    static let maxGzipPadding = 4096

    /// libarchive's gzip reader does not check the member's CRC32 and ISIZE (RFC 1952 §2.3.1),
    /// so a corrupted stream can decode to wrong bytes silently. The trailer is the last 8
    /// bytes of the stream, which may be followed by zero padding.
    private static func verifyGzipTrailer(_ input: ArraySlice<UInt8>, _ output: [UInt8]) throws(DecompressionError) {
        let crc = CRC32.checksum(output)
        let size = UInt32(truncatingIfNeeded: output.count)
        var end = input.endIndex
        let lowest = max(input.startIndex + 18, input.endIndex - maxGzipPadding)  // 10-byte header + trailer
        while end >= lowest {
            let trailer = input[(end - 8)..<end]
            let storedCRC = trailer.prefix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let storedSize = trailer.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            if storedCRC == crc && storedSize == size { return }
            // Only zero padding may follow the trailer.
            guard input[end - 1] == 0 else { break }
            end -= 1
        }
        throw DecompressionError(.corrupt, format: .gzip,
            "CRC32/ISIZE trailer does not match the \(output.count) decompressed bytes (corrupt stream, or "
                + "several gzip members)")
    }

    private static func run(_ archive: OpaquePointer, _ buffer: UnsafeRawBufferPointer, format: CompressionFormat,
        limit: Int) throws(DecompressionError) -> [UInt8]
    {
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            throw DecompressionError(.corrupt, format: format, "empty input")
        }
        guard archive_read_open_memory(archive, base, buffer.count) == ARCHIVE_OK else {
            throw DecompressionError(.corrupt, format: format, "cannot open stream: \(errorText(archive))")
        }
        var entry: OpaquePointer?
        guard archive_read_next_header(archive, &entry) == ARCHIVE_OK else {
            throw DecompressionError(.corrupt, format: format, "not a valid stream: \(errorText(archive))")
        }
        let detected = archive_filter_code(archive, 0)
        guard detected == Self.filterCode(format) else {
            throw DecompressionError(.corrupt, format: format,
                "the data is not a \(format) stream (libarchive filter code \(detected))")
        }
        var output: [UInt8] = []
        // Kernels compress about 8:1; reserve for that (untouched pages cost nothing) to avoid regrowth.
        output.reserveCapacity(min(limit, 256 << 20, max(buffer.count * 10, 1 << 20)))
        while true {
            var block: UnsafeRawPointer?
            var size = 0
            var blockOffset: Int64 = 0
            let result = archive_read_data_block(archive, &block, &size, &blockOffset)
            if result == ARCHIVE_EOF { break }
            guard result == ARCHIVE_OK || result == ARCHIVE_WARN else {
                throw DecompressionError(.corrupt, format: format,
                    "corrupt or truncated stream after \(output.count) output bytes: \(errorText(archive))")
            }
            guard size > 0, let block else { continue }
            guard size <= limit - output.count else {
                throw DecompressionError(.limitExceeded, format: format,
                    "decompressed output exceeds the limit of \(limit) bytes")
            }
            output.append(contentsOf: UnsafeRawBufferPointer(start: block, count: size))
        }
        return output
    }

    private static func filterCode(_ format: CompressionFormat) -> Int32 {
        switch format {
        case .gzip: ARCHIVE_FILTER_GZIP
        case .bzip2: ARCHIVE_FILTER_BZIP2
        case .xz: ARCHIVE_FILTER_XZ
        case .lzma: ARCHIVE_FILTER_LZMA
        case .lzo: ARCHIVE_FILTER_LZOP
        case .lz4: ARCHIVE_FILTER_LZ4
        case .zstd: ARCHIVE_FILTER_ZSTD
        }
    }

    /// Whether this libarchive decodes `format` in-process.
    public static func supports(_ format: CompressionFormat) -> Bool {
        guard let archive = archive_read_new() else { return false }
        defer { archive_read_free(archive) }
        return enableFilter(format, on: archive) == ARCHIVE_OK
    }

    /// Enables exactly the one libarchive read filter for `format`.
    private static func enableFilter(_ format: CompressionFormat, on archive: OpaquePointer) -> Int32 {
        switch format {
        case .gzip: archive_read_support_filter_gzip(archive)
        case .bzip2: archive_read_support_filter_bzip2(archive)
        case .xz: archive_read_support_filter_xz(archive)
        case .lzma: archive_read_support_filter_lzma(archive)
        case .lzo: archive_read_support_filter_lzop(archive)
        case .lz4: archive_read_support_filter_lz4(archive)
        case .zstd: archive_read_support_filter_zstd(archive)
        }
    }
}

private func errorText(_ archive: OpaquePointer) -> String {
    guard let message = archive_error_string(archive) else { return "no detail from libarchive" }
    return String(cString: message)
}

/// CRC-32 (ISO-HDLC, as gzip uses: polynomial 0xEDB88320 reflected), slicing by 8.
enum CRC32 {
    static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            tables[0][i] = c
        }
        for i in 0..<256 {
            for t in 1..<8 { tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][Int(tables[t - 1][i] & 0xFF)] }
        }
        return tables
    }()

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        let flat = tables.flatMap { $0 }
        return flat.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { data in
                var crc: UInt32 = 0xFFFF_FFFF
                var i = 0
                let n = data.count
                while i + 8 <= n {
                    let lo = crc ^ (UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16
                        | UInt32(data[i + 3]) << 24)
                    let hi = UInt32(data[i + 4]) | UInt32(data[i + 5]) << 8 | UInt32(data[i + 6]) << 16
                        | UInt32(data[i + 7]) << 24
                    crc = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                        ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                        ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                        ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                    i += 8
                }
                while i < n {
                    crc = t[Int((crc ^ UInt32(data[i])) & 0xFF)] ^ (crc >> 8)
                    i += 1
                }
                return crc ^ 0xFFFF_FFFF
            }
        }
    }
}
