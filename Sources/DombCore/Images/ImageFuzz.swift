//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Entry points for fuzzing the image parsers (`FuzzTesting/`, libFuzzer's
/// `LLVMFuzzerTestOneInput`). Each parses untrusted bytes, swallows the expected
/// ``ParseError``, and returns whether the input parsed; a trap is a bug.
public enum ImageFuzz {
    /// ELF header, program and section headers, and Xen notes.
    @discardableResult
    public static func elf(_ bytes: [UInt8]) -> Bool {
        guard let elf = try? ELFImage(parsing: bytes) else { return false }
        _ = ImageCapabilities(elf: elf).supportedTypes
        _ = elf.xenNotes.map(\.readnotesLine)
        return true
    }

    /// The bzImage setup header (no decompression).
    @discardableResult
    public static func bzImage(_ bytes: [UInt8]) -> Bool {
        (try? BzImageHeader(source: MemoryImageSource(bytes))) != nil
    }

    /// A cpio newc archive.
    @discardableResult
    public static func cpio(_ bytes: [UInt8]) -> Bool {
        (try? CPIOArchive(parsing: bytes[...])) != nil
    }

    /// The whole inspection, with decompression bounded to 16 MiB.
    @discardableResult
    public static func inspect(_ bytes: [UInt8], decompressor: (any Decompressing)? = nil) -> Bool {
        let inspector = ImageInspector(decompressor: decompressor, maxDecompressedSize: 16 << 20)
        return (try? inspector.inspect(bytes)) != nil
    }
}
