// Fuzzes the bzImage setup header and the whole bzImage path of the inspector (payload
// located, decompressed under a 1 MiB cap, parsed as ELF).
import DombArchive
import DombCore

private let inspector = ImageInspector(decompressor: Decompressor(), maxDecompressedSize: 1 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBzImage(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard (try? BzImageHeader(source: MemoryImageSource(bytes))) != nil else { return 0 }
    _ = try? inspector.inspect(bytes)
    return 0
}
