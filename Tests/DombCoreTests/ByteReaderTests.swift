//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Testing

@Suite struct ByteReaderTests {
    @Test func readsBothEndiannesses() throws {
        var reader = ByteReader([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])
        #expect(try reader.readLE(UInt16.self) == 0x0201)
        #expect(try reader.readBE(UInt16.self) == 0x0304)
        #expect(try reader.readLE(UInt32.self) == 0x0807_0605)
        #expect(reader.isEmpty)
        #expect(reader.offset == 8)
    }

    @Test func shortReadThrowsAndDoesNotMove() throws {
        var reader = ByteReader([0xAA, 0xBB, 0xCC])
        _ = try reader.readBytes(1)
        #expect(throws: ParseError(.truncated, "")) { try reader.readLE(UInt32.self, "field") }
        #expect(reader.offset == 1)
        #expect(reader.remaining == 2)
        do {
            _ = try reader.readLE(UInt32.self, "eventSize")
            Issue.record("expected a truncation error")
        } catch {
            #expect(error.offset == 1)
            #expect(error.reason.contains("eventSize"))
        }
    }

    @Test func lengthPrefixedRejectsLyingLengthWithoutConsuming() throws {
        // length 0x00000010 (16) but only 2 bytes follow
        var reader = ByteReader([0x10, 0x00, 0x00, 0x00, 0x01, 0x02])
        #expect(throws: ParseError(.truncated, "")) {
            try reader.readLengthPrefixed(UInt32.self, endianness: .little, field: "event")
        }
        #expect(reader.offset == 0)
    }

    @Test func subReaderKeepsAbsoluteOffsets() throws {
        var reader = ByteReader([0, 0, 0, 0, 9, 9, 9])
        try reader.skip(4)
        var sub = try reader.readReader(2)
        #expect(sub.offset == 4)
        _ = try sub.readBytes(2)
        #expect(throws: ParseError(.truncated, "")) { try sub.readLE(UInt8.self) }
        do { _ = try sub.readLE(UInt8.self) } catch { #expect(error.offset == 6) }
        #expect(throws: ParseError(.trailingBytes, "")) { try reader.expectEnd("record") }
    }

    @Test func dripFeedNoPrefixParses() throws {
        // A tiny length-prefixed record: u16 BE length, then payload.
        let full: [UInt8] = [0x00, 0x03, 0x61, 0x62, 0x63]
        for end in 0...full.count {
            var reader = ByteReader(slice: full[..<end])
            let parsed = try? reader.readLengthPrefixed(UInt16.self, endianness: .big)
            #expect((parsed != nil) == (end == full.count), "prefix of \(end) bytes")
        }
    }

    @Test func writerRoundTrips() throws {
        var writer = ByteWriter()
        writer.writeLE(UInt32(0xDEAD_BEEF))
        writer.writeBE(UInt16(0x0102))
        writer.writeZeros(2)
        #expect(writer.bytes == [0xEF, 0xBE, 0xAD, 0xDE, 0x01, 0x02, 0x00, 0x00])
        var reader = ByteReader(writer.bytes)
        #expect(try reader.readLE(UInt32.self) == 0xDEAD_BEEF)
        #expect(try reader.readBE(UInt16.self) == 0x0102)
    }
}

@Suite struct HashAlgorithmTests {
    @Test(arguments: [
        ("sha1", HashAlgorithm.sha1, 20), ("SHA256", .sha256, 32), ("sha-384", .sha384, 48),
        ("sha512", .sha512, 64), ("sm3_256", .sm3_256, 32), ("0x000b", .sha256, 32),
    ])
    func parsesNames(name: String, algorithm: HashAlgorithm, size: Int) {
        #expect(HashAlgorithm(name: name) == algorithm)
        #expect(algorithm.digestSize == size)
    }

    @Test func unknownAlgorithmHasNoSize() {
        let unknown = HashAlgorithm(rawValue: 0x0099)
        #expect(unknown.digestSize == nil)
        #expect(unknown.name == "0x0099")
        #expect(HashAlgorithm(name: "md5") == nil)
    }

    @Test func hexRoundTrip() {
        #expect([0x00, 0xAB, 0xFF].hexString == "00abff")
        #expect([UInt8](hex: "0x00ABff") == [0x00, 0xAB, 0xFF])
        #expect([UInt8](hex: "abc") == nil)
        #expect([UInt8](hex: "zz") == nil)
    }

    @Test func digestSetKeepsAlgorithmOrder() {
        var set = DigestSet()
        set[.sha256] = [1]
        set[.sha1] = [2]
        #expect(set.algorithms == [.sha1, .sha256])
        set[.sha1] = nil
        #expect(set.algorithms == [.sha256])
    }
}
