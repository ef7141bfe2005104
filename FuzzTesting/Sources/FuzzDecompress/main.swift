// Fuzzes libarchive's decompression filters behind domb's wrapper, with a small output
// cap (64 KiB) so that a bomb is refused rather than exhausting memory.
import DombArchive
import DombCore

let outputCap = 64 << 10

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecompress(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    // The first byte picks the format when the magic is not recognised, so that every
    // filter sees arbitrary input too.
    if let (_, output) = try? Decompressor.decompress(bytes[...], limit: outputCap) {
        precondition(output.count <= outputCap, "output past the cap")
    } else if let first = bytes.first {
        let formats = CompressionFormat.allCases
        let format = formats[Int(first) % formats.count]
        if let output = try? Decompressor.decompress(bytes.dropFirst(), format: format, limit: outputCap) {
            precondition(output.count <= outputCap, "output past the cap")
        }
    }
    return 0
}
