//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombTestSupport
import Testing

@Suite struct DecompressorTests {
    /// Compressible but not trivial input.
    static let sample: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: ($0 * 7) ^ ($0 >> 5)) }

    @Test(arguments: [CompressionFormat.gzip, .bzip2, .xz, .lzma, .lz4, .zstd])
    func roundTripsTheCommandLineTools(_ format: CompressionFormat) throws {
        let compressed = try TestFiles.compress(Self.sample, format)
        #expect(CompressionFormat.detect(compressed) == format)
        let result = try Decompressor.decompress(compressed[...], limit: 1 << 20)
        #expect(result.format == format)
        #expect(result.bytes == Self.sample)
    }

    /// Every cut of a stream is refused (drip-feed at 64 points), as is a flipped byte.
    @Test(arguments: [CompressionFormat.gzip, .bzip2, .xz, .lzma, .lz4, .zstd])
    func truncatedAndCorruptStreamsAreRefused(_ format: CompressionFormat) throws {
        let compressed = try TestFiles.compress(Self.sample, format)
        let step = max(1, compressed.count / 64)
        for length in stride(from: 0, to: compressed.count, by: step) {
            do {
                let output = try Decompressor.decompress(compressed[..<length], format: format, limit: 1 << 20)
                Issue.record("\(format): prefix \(length) of \(compressed.count) gave \(output.count) bytes")
            } catch {
                #expect(error.code == .corrupt, "\(format) prefix \(length): \(error)")
            }
        }
        var flipped = compressed
        flipped[compressed.count / 2] ^= 0x55
        #expect(throws: DecompressionError.self) {
            let output = try Decompressor.decompress(flipped[...], format: format, limit: 1 << 20)
            // lzma/lz4 legacy carry no checksum: a flip may decode, but never to the original.
            if output == Self.sample { return }
            if format == .lzma || format == .lz4 { throw DecompressionError(.corrupt, format: format, "changed") }
        }
    }

    @Test func zipBombStopsAtTheLimit() throws {
        let bomb = try TestFiles.compress([UInt8](repeating: 0, count: 256 << 20), .xz)
        #expect(bomb.count < 100_000)
        #expect(throws: DecompressionError(.limitExceeded, format: .xz, "")) {
            try Decompressor.decompress(bomb[...], format: .xz, limit: 4 << 20)
        }
    }

    @Test func wrongFormatAndGarbageAreRefused() throws {
        let gzip = try TestFiles.compress(Self.sample, .gzip)
        #expect(throws: DecompressionError.self) { try Decompressor.decompress(gzip[...], format: .xz, limit: 1 << 20) }
        #expect(throws: DecompressionError(.unsupported, format: nil, "")) {
            try Decompressor.decompress([1, 2, 3, 4][...], limit: 1 << 20)
        }
        #expect(throws: DecompressionError.self) { try Decompressor.decompress([][...], format: .gzip, limit: 10) }
    }
}

@Suite struct ImageFuzzEntryTests {
    /// The fuzz entry points never trap on garbage, truncations or the test images.
    @Test func fuzzEntryPointsSurviveMutations() throws {
        var inputs: [[UInt8]] = [[], [0x7F, 0x45, 0x4C, 0x46], Array(repeating: 0xFF, count: 4096)]
        let elf = try TestFiles.bytes("pv-kernel.elf")
        let cpio = try TestFiles.bytes("ramdisk.cpio")
        inputs += [elf, cpio, TestBzImage(payload: try TestFiles.compress(TestELF(notes: TestNote.linux).bytes, .gzip)).bytes]
        var state: UInt64 = 0x1234_5678
        for base in inputs where !base.isEmpty {
            for _ in 0..<200 {
                var mutated = base
                state = state &* 6_364_136_223_846_793_005 &+ 1
                let index = Int(state >> 33) % mutated.count
                mutated[index] = UInt8(truncatingIfNeeded: state >> 13)
                _ = ImageFuzz.elf(mutated)
                _ = ImageFuzz.bzImage(mutated)
                _ = ImageFuzz.cpio(mutated)
                _ = ImageFuzz.inspect(mutated, decompressor: Decompressor())
            }
        }
        #expect(ImageFuzz.elf(elf))
        #expect(ImageFuzz.cpio(cpio))
        #expect(!ImageFuzz.elf([]))
    }

    @Test func crc32KnownAnswer() {
        #expect(Decompressor.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}
