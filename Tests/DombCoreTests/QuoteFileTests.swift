//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation
import Testing

@Suite struct QuoteFileTests {
    static func sample(eventLog: [UInt8]? = [1, 2, 3]) -> QuoteFile {
        var values = PCRValues()
        values[.sha256, 12] = [UInt8](repeating: 0x12, count: 32)
        values[.sha256, 13] = [UInt8](repeating: 0x13, count: 32)
        return QuoteFile(
            attest: TPMSAttestTests.swtpmQuote,
            signature: QuoteSignature(scheme: .ecdsa, hash: .sha256, bytes: [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]),
            selection: PCRSelection([.init(.sha256, [12, 13])]), pcrValues: values, nonce: [0xAB, 0xCD],
            akPublicKey: "-----BEGIN PUBLIC KEY-----\n", akName: [0x00, 0x0B], eventLog: eventLog)
    }

    @Test func roundTripsThroughJSON() throws {
        let file = Self.sample()
        let json = try file.jsonBytes()
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains("\"format\" : \"domb-quote/1\""))
        #expect(text.contains("\"selection\" : \"sha256:12,13\""))
        #expect(text.contains("\"encoding\" : \"der\""))
        let decoded = try QuoteFile(json: json)
        #expect(decoded == file)
        let evidence = try decoded.evidence()
        #expect(evidence.attest == TPMSAttestTests.swtpmQuote)
        #expect(evidence.signature.bytes.count == 8)
        #expect(evidence.pcrValues[.sha256, 13] == [UInt8](repeating: 0x13, count: 32))
        #expect(evidence.eventLog == [1, 2, 3])
        #expect(evidence.pcrFileBytes(for: PCRSelection([.init(.sha256, [12, 13])]))?.count == 64)
        #expect(evidence.pcrFileBytes(for: PCRSelection([.init(.sha256, [14])])) == nil)
        #expect(try QuoteFile(json: Self.sample(eventLog: nil).jsonBytes()).evidence().eventLog == nil)
    }

    @Test func refusesBadFilesWithAReason() throws {
        func expectRefused(_ edit: (inout QuoteFile) -> Void, _ fragment: String) throws {
            var file = Self.sample()
            edit(&file)
            do {
                _ = try QuoteFile(json: file.jsonBytes()).evidence()
                Issue.record("expected \(fragment)")
            } catch let error as ParseError {
                #expect(error.reason.contains(fragment), "\(error)")
            }
        }
        try expectRefused({ $0.format = "domb-quote/9" }, "domb-quote/9")
        try expectRefused({ $0.attest = "***" }, "attest is not base64")
        try expectRefused({ $0.attest = Data(count: 4000).base64EncodedString() }, "attest is longer")
        try expectRefused({ $0.signature.value = Data(count: 2000).base64EncodedString() }, "signature.value is longer")
        try expectRefused({ $0.pcrs[0].digest = "abcd" }, "sha256:12 is not a sha256 digest")
        try expectRefused({ $0.pcrs[0].pcr = 24 }, "PCR 24 is outside")
        try expectRefused({ $0.pcrs[1].pcr = 12 }, "listed twice")
        try expectRefused({ $0.eventLog = "%%" }, "eventLog is not base64")
        #expect(throws: ParseError.self) { try QuoteFile(json: Array("{}".utf8)) }
        #expect(throws: ParseError.self) { try QuoteFile(json: []) }
    }

    @Test func stateRoundTripsAndJudgesClocks() throws {
        let attest = try TPMSAttest(parsing: TPMSAttestTests.swtpmQuote)
        var state = AttestationState()
        #expect(state.record(for: attest) == nil)
        state.update(with: attest)
        let decoded = try AttestationState(json: state.jsonBytes())
        #expect(decoded == state)
        #expect(decoded.record(for: attest)?.clock == 55842)
        #expect(throws: ParseError.self) { try AttestationState(json: Array("{\"format\":\"x\",\"signers\":{}}".utf8)) }

        let previous = AttestationState.Record(clock: 1000, resetCount: 5, restartCount: 2, firmwareVersion: 0)
        func codes(_ clock: UInt64, _ reset: UInt32, _ restart: UInt32, safe: Bool = true) -> [AttestationFailure.Code] {
            AttestationState.check(
                ClockInfo(clock: clock, resetCount: reset, restartCount: restart, safe: safe), against: previous, requireSafe: true
            ).map(\.code)
        }
        #expect(codes(1001, 5, 2) == [])
        #expect(codes(1001, 6, 0) == [], "a reset restarts the restart count")
        #expect(codes(1000, 5, 2) == [.clockWentBack])
        #expect(codes(1001, 4, 9) == [.resetCountWentBack])
        #expect(codes(1001, 5, 1) == [.restartCountWentBack])
        #expect(codes(1001, 5, 2, safe: false) == [.clockUnsafe])
        #expect(AttestationState.check(ClockInfo(clock: 1, resetCount: 0, restartCount: 0, safe: true), against: nil, requireSafe: true).isEmpty)
    }

    /// The structure checks need no hashing: judged on types and order alone.
    @Test func eventStructureWithoutGoldenValues() {
        var digests = DigestSet()
        digests[.sha256] = [UInt8](repeating: 1, count: 32)
        func event(_ pcr: Int, _ type: EventType) -> AttestedEvent { AttestedEvent(pcr: pcr, eventType: type, digests: digests) }
        let structure = GoldenEventPolicy(events: nil)
        let good = [event(13, .eventTag), event(12, .ipl), event(13, .separator), event(12, .separator)]
        #expect(structure.check(events: good, banks: [.sha256]).failures.isEmpty)
        let bad = [event(13, .eventTag), event(13, .separator), event(13, .eventTag), event(13, .separator), event(12, .postCode)]
        let codes = structure.check(events: bad, banks: [.sha256]).failures.map(\.code)
        // PCR 12 first: EV_POST_CODE is not domb's; PCR 13: a module after the separator, a second separator.
        #expect(codes == [.unknownEventType, .outOfPlaceEvent, .duplicateEvent])
    }
}
