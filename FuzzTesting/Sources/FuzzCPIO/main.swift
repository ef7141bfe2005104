// Fuzzes the cpio newc reader and the initramfs walk (concatenated, padded and compressed
// segments, decompressed under a 1 MiB cap).
import DombArchive
import DombCore

private let inspector = ImageInspector(decompressor: Decompressor(), maxDecompressedSize: 1 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCPIO(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    if let archive = try? CPIOArchive(parsing: bytes[...]) {
        precondition(archive.length <= bytes.count, "cpio length past the input")
    }
    _ = try? inspector.inspect(bytes)
    return 0
}
