//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation
import Testing

@Suite struct TPMSAttestTests {
    /// A 133-byte quote as swtpm produced it for `domb quote --pcrs sha256:12,13`
    /// (measured-boot.md §3 gives the same layout for tpm2_quote).
    static let swtpmQuote: [UInt8] = [UInt8](
        base64Encoded:
            "/1RDR4AYACIAC71oDj5/6cgpfHnzetxpOYQfbbme1q+aTe3VRXX+BGXcABTsDIwrMAg5uamgLNkMlnKZzjpXaQAAAAAAANoiAAAAAQAAAAABIBkQIwAWNjYAAAABAAsDADAAACD1pf1C0WogMCeY727TCZebQwA9IyDZ8OjqmDGpJ1n7Sw=="
    )

    /// Builds a quote field by field.
    static func quote(
        magic: UInt32 = 0xFF54_4347, type: UInt16 = 0x8018, signer: [UInt8] = [0x00, 0x0B] + [UInt8](repeating: 0xAA, count: 32),
        nonce: [UInt8] = [1, 2, 3, 4], clock: UInt64 = 1000, resetCount: UInt32 = 1, restartCount: UInt32 = 0,
        safe: UInt8 = 1, firmware: UInt64 = 0x2019_1023_0016_3636, selection: [UInt8]? = nil,
        digest: [UInt8] = [UInt8](repeating: 0x55, count: 32)
    ) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeBE(magic)  // magic: TPM_GENERATED_VALUE
        writer.writeBE(type)  // type: TPM_ST_ATTEST_QUOTE
        writer.writeBE(UInt16(signer.count))  // qualifiedSigner: TPM2B_NAME
        writer.writeBytes(signer)
        writer.writeBE(UInt16(nonce.count))  // extraData: TPM2B_DATA
        writer.writeBytes(nonce)
        writer.writeBE(clock)  // clockInfo.clock
        writer.writeBE(resetCount)  // clockInfo.resetCount
        writer.writeBE(restartCount)  // clockInfo.restartCount
        writer.writeBE(safe)  // clockInfo.safe
        writer.writeBE(firmware)  // firmwareVersion
        // TPML_PCR_SELECTION: count 1, sha256, sizeofSelect 3, PCRs 12 and 13.
        writer.writeBytes(selection ?? [0, 0, 0, 1, 0x00, 0x0B, 3, 0x00, 0x30, 0x00])
        writer.writeBE(UInt16(digest.count))  // pcrDigest: TPM2B_DIGEST
        writer.writeBytes(digest)
        return writer.bytes
    }

    @Test func parsesARealSwtpmQuote() throws {
        #expect(Self.swtpmQuote.count == 133)
        let attest = try TPMSAttest(parsing: Self.swtpmQuote)
        #expect(attest.magic == TPMSAttest.generatedValue)
        #expect(attest.type == TPMSAttest.quoteType)
        #expect(attest.qualifiedSigner.count == 34 && attest.qualifiedSigner.prefix(2) == [0x00, 0x0B])
        #expect(attest.extraData.hexString == "ec0c8c2b300839b9a9a02cd90c967299ce3a5769")
        #expect(attest.clockInfo == ClockInfo(clock: 55842, resetCount: 1, restartCount: 0, safe: true))
        let quote = try #require(attest.quote)
        #expect(quote.pcrSelection == PCRSelection([.init(.sha256, [12, 13])]))
        #expect(quote.pcrDigest.hexString == "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b")
        #expect(attest.bytes == Self.swtpmQuote)
    }

    @Test func parsesEveryFieldOfAHandBuiltQuote() throws {
        let bytes = Self.quote(selection: [0, 0, 0, 2, 0x00, 0x04, 3, 0x01, 0x00, 0x80, 0x00, 0x0B, 3, 0xFF, 0x00, 0x00])
        let attest = try TPMSAttest(parsing: bytes)
        #expect(attest.extraData == [1, 2, 3, 4])
        #expect(attest.clockInfo.clock == 1000)
        #expect(attest.firmwareVersion == 0x2019_1023_0016_3636)
        let selection = try #require(attest.quote?.pcrSelection)
        #expect(selection.banks == [.init(.sha1, [0, 23]), .init(.sha256, Array(0...7))])
        #expect(selection.description == "sha1:0,23+sha256:0,1,2,3,4,5,6,7")
        #expect(selection.pairs.count == 10)
    }

    /// No strict prefix of a valid quote may parse.
    @Test(arguments: [swtpmQuote, quote()]) func dripFeed(bytes: [UInt8]) throws {
        for length in 0..<bytes.count {
            #expect(throws: ParseError.self, "prefix of \(length) bytes") { try TPMSAttest(parsing: Array(bytes.prefix(length))) }
        }
        _ = try TPMSAttest(parsing: bytes)
    }

    @Test func rejectsMalformedFields() throws {
        #expect(throws: ParseError(.trailingBytes, "")) { try TPMSAttest(parsing: Self.quote() + [0]) }
        #expect(throws: ParseError(.invalidValue, "")) { try TPMSAttest(parsing: Self.quote(safe: 2)) }
        #expect(throws: ParseError(.invalidValue, "")) { try TPMSAttest(parsing: Self.quote(nonce: [UInt8](repeating: 0, count: 65))) }
        #expect(throws: ParseError(.invalidValue, "")) { try TPMSAttest(parsing: Self.quote(signer: [UInt8](repeating: 0, count: 67))) }
        #expect(throws: ParseError(.invalidValue, "")) { try TPMSAttest(parsing: Self.quote(digest: [UInt8](repeating: 0, count: 65))) }
        // 17 banks, and a 5-byte bitmap.
        #expect(throws: ParseError(.invalidValue, "")) { try TPMSAttest(parsing: Self.quote(selection: [0, 0, 0, 17])) }
        #expect(throws: ParseError(.invalidValue, "")) {
            try TPMSAttest(parsing: Self.quote(selection: [0, 0, 0, 1, 0, 0x0B, 5, 0, 0, 0, 0, 0]))
        }
        // A huge count must fail on the count, not try to allocate.
        #expect(throws: ParseError(.invalidValue, "")) { try TPMSAttest(parsing: Self.quote(selection: [0xFF, 0xFF, 0xFF, 0xFF])) }
        #expect(throws: ParseError(.limitExceeded, "")) { try TPMSAttest(parsing: [UInt8](repeating: 0, count: 4096)) }
    }

    @Test func errorsNameTheFieldAndOffset() throws {
        do {
            // magic 4 + type 2 + signer 2+34 + nonce 2+4 = 48: clockInfo.clock starts there.
            _ = try TPMSAttest(parsing: Array(Self.quote().prefix(50)))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .truncated)
            #expect(error.reason.contains("clockInfo.clock"))
            #expect(error.offset == 48)
        }
    }

    /// Magic and type are for the verifier to judge; the parser keeps them.
    @Test func keepsBadMagicAndOtherTypesForTheVerifier() throws {
        let badMagic = try TPMSAttest(parsing: Self.quote(magic: 0x1234_5678))
        #expect(badMagic.magic == 0x1234_5678 && badMagic.quote != nil)
        let certify = try TPMSAttest(parsing: Self.quote(type: 0x8017))
        #expect(certify.quote == nil)
        #expect(!certify.otherAttested.isEmpty)
    }

    @Test func selectionSyntax() throws {
        let selection = try PCRSelection(parsing: "sha256:12,13+sha1:0-2")
        #expect(selection.banks == [.init(.sha256, [12, 13]), .init(.sha1, [0, 1, 2])])
        #expect(selection.description == "sha256:12,13+sha1:0,1,2")
        #expect(selection.selectsSamePCRs(as: try PCRSelection(parsing: "sha1:0,1,2+sha256:13,12")))
        #expect(!selection.selectsSamePCRs(as: try PCRSelection(parsing: "sha256:12+sha1:0-2")))
        for bad in ["", "sha256", "sha256:24", "md5:1", "sha256:3-1", "sha256:1+sha256:2", "sha256:a"] {
            #expect(throws: ParseError.self, "\(bad)") { try PCRSelection(parsing: bad) }
        }
        // Marshalling round-trips through the parser.
        let attest = try TPMSAttest(parsing: Self.quote(selection: selection.marshalled))
        #expect(attest.quote?.pcrSelection == selection)
    }

    /// The fuzz entry point over deterministic mutations of real quotes: never a crash.
    @Test func fuzzEntryPointSurvivesMutations() {
        var generator = SplitMix64(seed: 0xD0B)
        var parsed = 0
        for round in 0..<20_000 {
            var bytes = round % 2 == 0 ? Self.swtpmQuote : Self.quote()
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let index = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: index)
                }
            }
            if TPMSAttest.fuzz(bytes) { parsed += 1 }
        }
        #expect(parsed > 0, "some mutations (inside digests, nonces) still parse")
        #expect(parsed < 20_000, "most structural mutations are refused")
    }
}

/// A small deterministic generator, so fuzz-style tests repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    init(base64Encoded text: String) {
        self = Data(base64Encoded: text).map(Array.init) ?? []
    }
}
