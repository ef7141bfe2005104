//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombFiles
import DombTestSupport
import Foundation
import Testing

@Suite struct BzImageRamdiskTests {
    /// A Linux-style payload: the compressed ELF followed by its size as a little-endian u32
    /// (arch/x86/boot/compressed/Makefile `*_with_size`), except for gzip.
    static func payload(_ elf: [UInt8], _ format: CompressionFormat) throws -> [UInt8] {
        var payload = try TestFiles.compress(elf, format)
        if format != .gzip {
            var w = ByteWriter()
            w.writeLE(UInt32(elf.count))
            payload += w.bytes
        }
        return payload
    }

    @Test(arguments: [CompressionFormat.gzip, .xz, .zstd, .bzip2, .lzma, .lz4])
    func bzImageWithCompressedPayload(_ format: CompressionFormat) throws {
        let elf = TestELF(notes: TestNote.linux).bytes
        let image = TestBzImage(payload: try Self.payload(elf, format)).bytes
        let report = try TestFiles.inspector.inspect(image)
        #expect(report.format == .bzImage)
        #expect(report.compression == format)
        #expect(report.decompressedSize == elf.count)
        #expect(report.bzImage?.protocolText == "2.15")
        #expect(report.bzImage?.kernelVersion == "6.1.0-test")
        #expect(report.bzImage?.payloadOffset == 5 * 512)
        #expect(report.entryPoints.phys32 == 0x100040)
        #expect(report.entryPoints.bzImage64 == 0x100200)
        #expect(report.supportedModes == [.pv, .pvh])
        #expect(report.notes.count == TestNote.linux.count)
    }

    @Test func malformedBzImagesAreRefused() throws {
        let elf = TestELF(notes: TestNote.linux).bytes
        let xz = try Self.payload(elf, .xz)
        typealias Case = (name: String, image: [UInt8], text: String)
        var wrongSize = xz
        patch(&wrongSize, at: wrongSize.count - 4, UInt32(12345))
        var flipped = xz
        flipped[flipped.count / 2] ^= 0xFF
        let cases: [Case] = [
            ("protocol 2.07", TestBzImage(version: 0x0207, payload: xz).bytes, "older than 2.08"),
            ("setup_sects 0", TestBzImage(setupSectors: 0, payload: xz).bytes, "setup_sects is 0"),
            ("absurd setup_sects", TestBzImage(setupSectors: 200, payload: xz).bytes, "setup_sects 200 exceeds"),
            ("lying payload_length", TestBzImage(payload: xz, payloadLengthOverride: 1 << 30).bytes,
                "runs past the end"),
            ("lying payload_offset", TestBzImage(payload: xz, payloadOffsetOverride: 0xFFFF_FFF0).bytes,
                "runs past the end"),
            ("zero payload", TestBzImage(payload: xz, payloadLengthOverride: 0).bytes, "payload_length is 0"),
            ("unknown payload", TestBzImage(payload: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66]).bytes,
                "not a known compression magic"),
            ("payload not ELF", TestBzImage(payload: try Self.payload(Array(repeating: 7, count: 999), .gzip)).bytes,
                "not an ELF"),
            ("size trailer lies", TestBzImage(payload: wrongSize).bytes, "size trailer says 12345"),
            ("corrupt xz", TestBzImage(payload: flipped).bytes, "xz"),
            ("truncated xz", TestBzImage(payload: Array(xz.prefix(xz.count / 2)) + xz.suffix(4)).bytes, "xz"),
        ]
        for c in cases {
            do {
                _ = try TestFiles.inspector.inspect(c.image)
                Issue.record("\(c.name): inspected without error")
            } catch {
                #expect("\(error)".contains(c.text), "\(c.name): \(error)")
            }
        }
    }

    @Test func oversizePayloadIsRefused() throws {
        // 64 MiB of zeros compress to a few KiB: a zip bomb for a 1 MiB limit.
        let bomb = TestBzImage(payload: try Self.payload([UInt8](repeating: 0, count: 64 << 20), .zstd)).bytes
        let inspector = ImageInspector(decompressor: Decompressor(), maxDecompressedSize: 1 << 20)
        #expect(bomb.count < 1 << 20)
        do {
            _ = try inspector.inspect(bomb)
            Issue.record("bomb inspected")
        } catch {
            #expect("\(error)".contains("exceeds the limit of 1048576 bytes"), "\(error)")
        }
    }

    /// Drip-feed: no strict prefix of a bzImage inspects.
    @Test func noStrictPrefixOfABzImageParses() throws {
        let image = TestBzImage(payload: try Self.payload(TestELF(notes: TestNote.linux).bytes, .gzip)).bytes
        _ = try BzImageHeader(source: MemoryImageSource(image))
        for length in 0..<image.count {
            let prefix = Array(image[..<length])
            #expect(throws: ParseError.self, "prefix \(length)") { try BzImageHeader(source: MemoryImageSource(prefix)) }
            let report = try? TestFiles.inspector.inspect(prefix)
            #expect(report == nil || report?.format == .unknown, "prefix \(length) inspected as \(report?.format.rawValue ?? "")")
        }
    }

    @Test func cpioRamdiskIsRecognised() throws {
        let bytes = try TestFiles.bytes("ramdisk.cpio")
        let archive = try CPIOArchive(parsing: bytes[...])
        #expect(archive.entries.map(\.name) == ["etc", "etc/domb-test", "init"])
        #expect(archive.entries.last?.mode == 0o100755)
        let report = try TestFiles.inspector.inspect(bytes)
        #expect(report.format == .cpio && report.kind == .ramdisk)
        #expect(report.supportedModes.isEmpty)
        #expect(report.refusals["pv"] == "this is a ramdisk, not a kernel")
        // Drip-feed up to the trailer.
        for length in 0..<archive.length {
            #expect(throws: ParseError.self, "prefix \(length)") { try CPIOArchive(parsing: bytes[..<length]) }
        }
    }

    @Test(arguments: [CompressionFormat.gzip, .xz, .zstd, .bzip2, .lz4])
    func compressedAndConcatenatedRamdisks(_ format: CompressionFormat) throws {
        let cpio = try TestFiles.bytes("ramdisk.cpio")
        let compressed = try TestFiles.compress(cpio, format)
        let report = try TestFiles.inspector.inspect(compressed)
        #expect(report.format == .compressed && report.kind == .ramdisk && report.compression == format)
        #expect(report.ramdisk?.first?.entries == 3)
        // An early (uncompressed) cpio followed by a compressed one, as initramfs-tools builds.
        let both = try TestFiles.inspector.inspect(cpio + compressed)
        #expect(both.ramdisk?.map(\.entries) == [3, 3])
        #expect(both.ramdisk?.map(\.compression) == [nil, format])
    }

    @Test func malformedCPIOIsRefused() throws {
        let good = try TestFiles.bytes("ramdisk.cpio")
        var lyingSize = good
        lyingSize[6 + 6 * 8..<6 + 7 * 8] = ArraySlice("7FFFFFFF".utf8)  // c_filesize of the first entry
        var badHex = good
        badHex[6 + 11 * 8] = UInt8(ascii: "G")  // c_namesize
        var noName = good
        noName[6 + 11 * 8..<6 + 12 * 8] = ArraySlice("00000000".utf8)
        var garbage = good
        garbage[600] = 0x41  // after the trailer: neither padding nor an archive
        for (name, bytes, text) in [
            ("lying c_filesize", lyingSize, "cpio data of etc"), ("bad hex", badHex, "not 8 hex digits"),
            ("empty name", noName, "name size 0"), ("garbage after trailer", garbage, "neither cpio newc nor compressed"),
        ] {
            do {
                _ = try TestFiles.inspector.inspect(bytes)
                Issue.record("\(name): inspected")
            } catch {
                #expect("\(error)".contains(text), "\(name): \(error)")
            }
        }
    }

    @Test func firmwareIsRecognisedForHVMOnly() throws {
        let hvmloader = "/usr/lib/xen-4.17/boot/hvmloader"
        try #require(FileManager.default.fileExists(atPath: hvmloader), "install hvmloader: apt-get install xen-utils-4.17")
        let report = try TestFiles.inspector.inspect(source: try FileImageSource(path: hvmloader))
        #expect(report.kind == .firmware && report.firmware == "hvmloader")
        #expect(report.supportedModes == [.hvm])
        #expect(report.refusals["pv"]?.contains("not a Xen kernel") == true)

        let elfWithoutNotes = try TestFiles.inspector.inspect(TestELF(machine: 3).bytes)
        #expect(elfWithoutNotes.supportedModes == [.hvm])
        let unknown = try TestFiles.inspector.inspect(Array("just some text, not an image".utf8))
        #expect(unknown.format == .unknown && unknown.supportedModes.isEmpty)
    }
}

@Suite struct CompressedKernelTests {
    /// xc_dom_kernel_file gunzips a whole kernel file; other compressions stay packed.
    @Test func gzipELFIsAKernelOtherCompressionsAreRefused() throws {
        let elf = try TestFiles.bytes("pv-kernel.elf")
        let gz = try TestFiles.inspector.inspect(try TestFiles.compress(elf, .gzip))
        #expect(gz.format == .compressed && gz.kind == .kernel && gz.compression == .gzip)
        #expect(gz.supportedModes == [.pv])
        #expect(gz.decompressedSize == elf.count)
        let xz = try TestFiles.inspector.inspect(try TestFiles.compress(elf, .xz))
        #expect(xz.supportedModes.isEmpty)
        #expect(xz.refusals["pv"] == "an xz-compressed ELF: Xen only unpacks gzip kernels")
        #expect(xz.notes.count == 9)
    }
}
