//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Foundation
import Testing

/// Builds small TCG PC Client logs byte by byte (PFP §10.2): a crypto-agile log (Spec ID
/// Event03 header, then `TCG_PCR_EVENT2` records) or a SHA-1 format log.
struct LogBuilder {
    private(set) var bytes: [UInt8] = []
    let banks: [HashAlgorithm]
    let cryptoAgile: Bool

    /// A crypto-agile log whose header lists `banks`.
    init(banks: [HashAlgorithm]) {
        self.banks = banks
        cryptoAgile = true
        var spec = ByteWriter()
        spec.writeBytes(SpecIDEvent.signature)
        spec.writeLE(UInt32(0))  // platformClass
        spec.writeBytes([0, 2, 0, 2] as [UInt8])  // specVersionMinor, Major, errata, uintnSize
        spec.writeLE(UInt32(banks.count))
        for bank in banks {
            spec.writeLE(bank.rawValue)
            spec.writeLE(UInt16(bank.digestSize ?? 0))
        }
        spec.writeLE(UInt8(0))  // vendorInfoSize
        var header = ByteWriter()
        header.writeLE(UInt32(0))  // pcrIndex
        header.writeLE(EventType.noAction.rawValue)
        header.writeZeros(20)
        header.writeLE(UInt32(spec.bytes.count))
        header.writeBytes(spec.bytes)
        bytes = header.bytes
    }

    /// A SHA-1 format log (no header).
    init(sha1Format: Void) {
        banks = [.sha1]
        cryptoAgile = false
    }

    /// Appends a record whose digests are `H(data)` in `banks` (default: the log's), or
    /// zeros for EV_NO_ACTION unless `zeroDigests` is false. Returns the digests.
    @discardableResult
    mutating func add(
        pcr: UInt32, _ type: EventType, _ data: [UInt8], banks only: [HashAlgorithm]? = nil, zeroDigests: Bool? = nil
    ) throws -> DigestSet {
        var digests = DigestSet()
        let zero = zeroDigests ?? (type == .noAction)
        for bank in only ?? banks {
            digests[bank] = zero ? [UInt8](repeating: 0, count: bank.digestSize ?? 0) : try OpenSSLPCRHasher().digest(bank, data[...])
        }
        var w = ByteWriter()
        w.writeLE(pcr)
        w.writeLE(type.rawValue)
        if cryptoAgile {
            w.writeLE(UInt32(digests.count))
            for digest in digests.digests {
                w.writeLE(digest.algorithm.rawValue)
                w.writeBytes(digest.bytes)
            }
        } else {
            w.writeBytes(digests[.sha1] ?? [])
        }
        w.writeLE(UInt32(data.count))
        w.writeBytes(data)
        bytes += w.bytes
        return digests
    }

    mutating func startupLocality(_ locality: UInt8, pcr: UInt32 = 0) throws {
        try add(pcr: pcr, .noAction, EventLog.startupLocalitySignature + [locality])
    }

    mutating func append(_ raw: [UInt8]) { bytes += raw }
}

/// PCR values computed with the openssl command line, independently of domb's hasher:
/// `start`, then `value = H(value ‖ digest)` for each digest (TPM 2.0 Part 1 §17.2).
enum OpenSSLExtend {
    static func value(_ bank: HashAlgorithm, start: [UInt8], _ digests: [[UInt8]]) throws -> [UInt8] {
        var value = start
        let name = bank == .sm3_256 ? "sm3" : bank.name
        for digest in digests {
            value = try Tools.run("openssl", ["dgst", "-\(name)", "-binary"], input: value + digest).stdout
        }
        return value
    }

    static func zeros(_ bank: HashAlgorithm, last: UInt8 = 0) -> [UInt8] {
        var value = [UInt8](repeating: 0, count: bank.digestSize ?? 0)
        value[value.count - 1] = last
        return value
    }
}

/// One test per kind of quirk real logs have, on logs built here: the value the rule gives,
/// and the opposite case refused.
@Suite struct EventLogQuirkTests {
    let hasher = OpenSSLPCRHasher()
    static let banks: [HashAlgorithm] = MultiHasher.supports(.sm3_256) ? [.sha1, .sha256, .sm3_256] : [.sha1, .sha256]

    // MARK: PCR 0 start value (H-CRTM, StartupLocality) and PCRs 17–22

    /// TPM 2.0 Part 1 §34.3: an H-CRTM log without StartupLocality starts PCR 0 at …04,
    /// in every bank.
    @Test func hcrtmWithoutStartupLocalityStartsPCR0AtFour() throws {
        var log = LogBuilder(banks: Self.banks)
        let hcrtm = try log.add(pcr: 0, .efiHCRTMEvent, Array("HCRTM".utf8))
        let version = try log.add(pcr: 0, .sCRTMVersion, Array("1.0".utf8))
        let parsed = try EventLog(parsing: log.bytes)
        #expect(parsed.quirks == [.hcrtmStartValue(event: 1)])
        #expect(!parsed.quirks[0].isWorkaround)
        #expect(parsed.pcr0StartLocality == 4)
        let replayed = try parsed.replay(using: hasher)
        for bank in Self.banks {
            let expected = try OpenSSLExtend.value(
                bank, start: OpenSSLExtend.zeros(bank, last: 4), [hcrtm[bank] ?? [], version[bank] ?? []])
            #expect(replayed[bank, 0] == expected, "\(bank)")
            #expect(replayed[bank, 0] != (try OpenSSLExtend.value(bank, start: OpenSSLExtend.zeros(bank), [hcrtm[bank] ?? [], version[bank] ?? []])))
        }
        // Streaming replay and strict reading agree (the rule is the spec's, not a workaround).
        #expect(try EventLog.replay(parsing: log.bytes[...], using: hasher).values == replayed)
        #expect(try EventLog(parsing: log.bytes, strict: true).replay(using: hasher) == replayed)
    }

    /// The opposite cases: an H-CRTM event that is not PCR 0's first record changes
    /// nothing; an explicit StartupLocality record wins.
    @Test func hcrtmOnlyCountsAsPCR0sFirstRecord() throws {
        var late = LogBuilder(banks: [.sha256])
        let version = try late.add(pcr: 0, .sCRTMVersion, [1])
        let hcrtm = try late.add(pcr: 0, .efiHCRTMEvent, [2])
        let lateLog = try EventLog(parsing: late.bytes)
        #expect(lateLog.quirks.isEmpty)
        #expect(try lateLog.replay(using: hasher)[.sha256, 0]
            == OpenSSLExtend.value(.sha256, start: OpenSSLExtend.zeros(.sha256), [version[.sha256] ?? [], hcrtm[.sha256] ?? []]))

        var withLocality = LogBuilder(banks: [.sha256])
        try withLocality.startupLocality(3)
        let first = try withLocality.add(pcr: 0, .efiHCRTMEvent, [3])
        let localityLog = try EventLog(parsing: withLocality.bytes)
        #expect(localityLog.quirks == [.startupLocality(locality: 3, event: 1)])
        #expect(try localityLog.replay(using: hasher)[.sha256, 0]
            == OpenSSLExtend.value(.sha256, start: OpenSSLExtend.zeros(.sha256, last: 3), [first[.sha256] ?? []]))
    }

    /// PFP §10.4.5.3: StartupLocality 3 sets PCR 0's last byte; the record must be on PCR 0,
    /// 17 bytes, locality 0–4, once, before any PCR 0 measurement.
    @Test func startupLocalityRecords() throws {
        var log = LogBuilder(banks: [.sha1, .sha256])
        try log.startupLocality(3)
        let crtm = try log.add(pcr: 0, .sCRTMVersion, [9])
        let parsed = try EventLog(parsing: log.bytes)
        #expect(parsed.quirks == [.startupLocality(locality: 3, event: 1)])
        for bank in [HashAlgorithm.sha1, .sha256] {
            #expect(try parsed.replay(using: hasher)[bank, 0]
                == OpenSSLExtend.value(bank, start: OpenSSLExtend.zeros(bank, last: 3), [crtm[bank] ?? []]))
        }
        // The StartupLocality record is a verified event (it set PCR 0's start); its digests are not.
        guard case .verified(let events, _) = parsed.verify(against: try parsed.replay(using: hasher), using: hasher) else {
            Issue.record("not verified")
            return
        }
        #expect(events.map(\.number) == [1, 2])
        #expect(events[0].digests.isEmpty)

        func refused(_ build: (inout LogBuilder) throws -> Void, _ reason: String) throws {
            var bad = LogBuilder(banks: [.sha256])
            try build(&bad)
            #expect { try EventLog(parsing: bad.bytes) } throws: { "\($0)".contains(reason) && ($0 as? ParseError)?.offset != nil }
        }
        try refused({ try $0.add(pcr: 0, .sCRTMVersion, [1]); try $0.startupLocality(3) }, "before any PCR 0 measurement")
        try refused({ try $0.startupLocality(3); try $0.startupLocality(3) }, "must come once")
        try refused({ try $0.startupLocality(5) }, "StartupLocality 5 is not 0 to 4")
        try refused({ try $0.startupLocality(3, pcr: 1) }, "must be on PCR 0")
        try refused({ try $0.startupLocality(3, pcr: EventLog.pcrMinusOne) }, "must be on PCR 0")
        try refused({ try $0.add(pcr: 0, .noAction, EventLog.startupLocalitySignature + [3, 0]) }, "17 bytes")
    }

    /// PC Client PTP §4.5.2: PCRs 17–22 reset to all ones; 16 and 23 to zeros.
    @Test func drtmPCRsStartAtAllOnes() throws {
        var log = LogBuilder(banks: [.sha256])
        var digests: [Int: [UInt8]] = [:]
        for pcr in [16, 17, 22, 23] { digests[pcr] = try log.add(pcr: UInt32(pcr), .ipl, [UInt8(pcr)])[.sha256] }
        let replayed = try EventLog(parsing: log.bytes).replay(using: hasher)
        let ones = [UInt8](repeating: 0xFF, count: 32)
        for pcr in [16, 17, 22, 23] {
            let start = (17...22).contains(pcr) ? ones : OpenSSLExtend.zeros(.sha256)
            #expect(replayed[.sha256, pcr] == (try OpenSSLExtend.value(.sha256, start: start, [digests[pcr] ?? []])), "PCR \(pcr)")
        }
    }

    // MARK: Fill after the last record

    @Test(arguments: [UInt8(0x00), 0xFF]) func fillAfterTheLastRecordEndsTheLog(byte: UInt8) throws {
        var clean = LogBuilder(banks: [.sha1, .sha256])
        try clean.add(pcr: 4, .efiBootServicesApplication, [1, 2, 3])
        var padded = clean
        padded.append([UInt8](repeating: byte, count: 4096))
        let log = try EventLog(parsing: padded.bytes)
        let fill = TrailingFill(offset: clean.bytes.count, count: 4096, byte: byte)
        #expect(log.quirks == [.trailingFill(fill)])
        #expect(log.trailingFill == fill)
        #expect(log.events.count == 1)
        #expect(try log.replay(using: hasher) == EventLog(parsing: clean.bytes).replay(using: hasher))
        #expect(try EventLog.replay(parsing: padded.bytes[...], using: hasher).quirks == [.trailingFill(fill)])
        // Refused when strict (domb's own logs), and when anything but the fill byte follows.
        #expect { try EventLog(parsing: padded.bytes, strict: true) } throws: { error in
            "\(error)".contains("strict") && (error as? ParseError)?.offset == clean.bytes.count
        }
        var dirty = padded.bytes
        dirty[clean.bytes.count + 100] = byte == 0 ? 0x01 : 0xFE
        #expect { try EventLog(parsing: dirty) } throws: { error in
            (error as? ParseError)?.offset == clean.bytes.count + 100 && "\(error)".contains("follows the")
        }
        var mixed = clean
        mixed.append([UInt8](repeating: byte, count: 32) + [UInt8](repeating: ~byte, count: 32))
        #expect(throws: ParseError.self) { try EventLog(parsing: mixed.bytes) }
        // Less than an empty record of fill is a truncated record, as before.
        var short = clean
        short.append([UInt8](repeating: byte, count: 15))
        #expect { try EventLog(parsing: short.bytes) } throws: { ($0 as? ParseError)?.offset ?? 0 >= clean.bytes.count }
    }

    /// The SHA-1 format stops at an empty `TCG_PCR_EVENT` (type 0, zero digest, size 0),
    /// as Linux's tpm1_bios_measurements_start does; a file of fill alone is no log.
    @Test func fillInSHA1FormatLogs() throws {
        var clean = LogBuilder(sha1Format: ())
        let crtm = try clean.add(pcr: 0, .sCRTMVersion, [7])
        var padded = clean
        padded.append([UInt8](repeating: 0, count: 96))
        let log = try EventLog(parsing: padded.bytes)
        #expect(log.format == .sha1)
        #expect(log.trailingFill == TrailingFill(offset: clean.bytes.count, count: 96, byte: 0))
        // tpm2_eventlog 5.4 extends PCR 0 with the zero records; the TPM did not.
        #expect(try log.replay(using: hasher)[.sha1, 0]
            == OpenSSLExtend.value(.sha1, start: OpenSSLExtend.zeros(.sha1), [crtm[.sha1] ?? []]))
        #expect { try EventLog(parsing: [UInt8](repeating: 0, count: 4096)) } throws: { "\($0)".contains("no record") }
        #expect { try EventLog(parsing: [UInt8](repeating: 0xFF, count: 64)) } throws: { "\($0)".contains("no record") }
        // A crypto-agile header followed by fill is an empty log.
        var empty = LogBuilder(banks: [.sha256])
        empty.append([UInt8](repeating: 0, count: 64))
        let emptyLog = try EventLog(parsing: empty.bytes)
        #expect(emptyLog.events.isEmpty && emptyLog.trailingFill?.count == 64)
    }

    // MARK: Records on PCR 0xFFFFFFFF

    @Test(arguments: [true, false]) func noActionOnPCRMinusOneIsNeverExtended(cryptoAgile: Bool) throws {
        var log = cryptoAgile ? LogBuilder(banks: [.sha1, .sha256]) : LogBuilder(sha1Format: ())
        let ipl = try log.add(pcr: 8, .ipl, Array("grub".utf8))
        try log.add(pcr: EventLog.pcrMinusOne, .noAction, Array("SIPA boot counter".utf8), zeroDigests: false)
        try log.add(pcr: EventLog.pcrMinusOne, .noAction, Array("SIPA".utf8))
        let parsed = try EventLog(parsing: log.bytes)
        let first = cryptoAgile ? 2 : 1
        #expect(parsed.quirks == [.noActionOnPCRMinusOne(count: 2, first: first, withDigests: 1)])
        #expect(parsed.events.count == 3)
        #expect(parsed.extendedPCRs == [8])
        let replayed = try parsed.replay(using: hasher)
        #expect(replayed.algorithms.allSatisfy { replayed.pcrs(in: $0) == [8] })
        #expect(replayed[.sha1, 8] == (try OpenSSLExtend.value(.sha1, start: OpenSSLExtend.zeros(.sha1), [ipl[.sha1] ?? []])))
        // Never a verified event: no PCR covers them.
        guard case .verified(let verified, _) = parsed.verify(against: replayed, using: hasher) else {
            Issue.record("not verified")
            return
        }
        #expect(verified.map(\.pcr) == [8])
        // Strict reading refuses them.
        #expect { try EventLog(parsing: log.bytes, strict: true) } throws: { "\($0)".contains("strict") }
    }

    /// Only EV_NO_ACTION may name PCR 0xFFFFFFFF, and nothing may name 24 to 0xFFFFFFFE.
    @Test func otherRecordsBeyondPCR23AreRefused() throws {
        let cases: [(UInt32, EventType)] = [(EventLog.pcrMinusOne, .ipl), (EventLog.pcrMinusOne, .separator), (24, .noAction), (0xFFFF_FFFE, .noAction), (30, .ipl)]
        for (pcr, type) in cases {
            for cryptoAgile in [true, false] {
                var log = cryptoAgile ? LogBuilder(banks: [.sha256]) : LogBuilder(sha1Format: ())
                try log.add(pcr: 4, .ipl, [1])
                let offset = log.bytes.count
                try log.add(pcr: pcr, type, [2])
                #expect {
                    try EventLog(parsing: log.bytes)
                } throws: { error in
                    (error as? ParseError)?.offset == offset && "\(error)".contains("\(type) on PCR \(pcr)")
                }
            }
        }
    }

    // MARK: Records carrying a subset of the header's banks

    /// Each bank replays from the records that carry it; a PCR with a record lacking the
    /// bank is untrusted there, and `verify` fails if the TPM has that bank.
    @Test func bankSubsetsAreReplayedPerBank() throws {
        var log = LogBuilder(banks: [.sha1, .sha256, .sha384])
        let a = try log.add(pcr: 4, .ipl, [1], banks: [.sha1, .sha256])
        let b = try log.add(pcr: 4, .ipl, [2], banks: [.sha256])
        let c = try log.add(pcr: 5, .ipl, [3], banks: [.sha1, .sha256])
        let parsed = try EventLog(parsing: log.bytes)
        let sha1 = BankCoverage(bank: .sha1, recordsWith: 2, recordsWithout: 1, untrustedPCRs: [4])
        let sha384 = BankCoverage(bank: .sha384, recordsWith: 0, recordsWithout: 3, untrustedPCRs: [4, 5])
        #expect(parsed.quirks == [.bankSubset([sha1, sha384])])
        #expect(parsed.banks == [.sha256])
        let replayed = try parsed.replay(using: hasher)
        let zero256 = OpenSSLExtend.zeros(.sha256)
        #expect(replayed[.sha256, 4] == (try OpenSSLExtend.value(.sha256, start: zero256, [a[.sha256] ?? [], b[.sha256] ?? []])))
        #expect(replayed[.sha256, 5] == (try OpenSSLExtend.value(.sha256, start: zero256, [c[.sha256] ?? []])))
        #expect(replayed[.sha1, 5] == (try OpenSSLExtend.value(.sha1, start: OpenSSLExtend.zeros(.sha1), [c[.sha1] ?? []])))
        #expect(replayed[.sha1, 4] == nil, "tpm2_eventlog's value here is one no TPM could hold")
        #expect(replayed.algorithms == [.sha1, .sha256])
        let streamed = try EventLog.replay(parsing: log.bytes[...], using: hasher)
        #expect(streamed.values == replayed && streamed.untrusted == [sha1, sha384])

        // PCR values for what replays (no sha1 value for PCR 4, no sha384): verified, and
        // each verified event keeps only the digests of the banks checked on its PCR.
        guard case .verified(let events, _) = parsed.verify(against: replayed, using: hasher) else {
            Issue.record("the replayable banks did not verify")
            return
        }
        #expect(events.map(\.digests.algorithms) == [[.sha256], [.sha256], [.sha1, .sha256]])
        // A TPM with sha1 on PCR 4 and sha384: PCR 4 sha1 and PCRs 4, 5 sha384 are unexplained.
        var all = replayed
        all[.sha1, 4] = [UInt8](repeating: 1, count: 20)
        all[.sha384, 4] = [UInt8](repeating: 1, count: 48)
        all[.sha384, 5] = [UInt8](repeating: 1, count: 48)
        guard case .failed(let failures) = parsed.verify(against: all, using: hasher) else {
            Issue.record("unreplayable banks verified")
            return
        }
        #expect(Set(failures) == [
            VerificationFailure(pcr: 4, bank: .sha1, kind: .digestsMissing(records: 1)),
            VerificationFailure(pcr: 4, bank: .sha384, kind: .bankNotInLog),
            VerificationFailure(pcr: 5, bank: .sha384, kind: .bankNotInLog),
        ])
        // Strict reading (domb's own logs) refuses subsets.
        #expect(throws: ParseError.self) { try EventLog(parsing: log.bytes, strict: true) }
    }

    // MARK: The attestation verifier never sees any of it

    /// domb's attestation decoder parses strictly: a genuine domb log with fill, a PCR −1
    /// record or a bank subset appended is refused, so nothing there can pose as a launch
    /// event.
    @Test func theAttestationDecoderRefusesEveryWorkaround() throws {
        var base = LogBuilder(banks: [.sha1, .sha256])
        try base.add(pcr: 13, .eventTag, [1, 2, 3])
        let decode = EventLogPolicy.tcg(golden: nil).decode
        #expect(try decode(base.bytes).count == 1)
        var fill = base
        fill.append([UInt8](repeating: 0, count: 64))
        var minusOne = base
        try minusOne.add(pcr: EventLog.pcrMinusOne, .noAction, Array("dmbM".utf8))
        var subset = base
        try subset.add(pcr: 13, .eventTag, [4], banks: [.sha256])
        for bytes in [fill.bytes, minusOne.bytes, subset.bytes] {
            #expect(throws: ParseError.self) { try decode(bytes) }
            #expect(!(try EventLog(parsing: bytes).quirks.isEmpty))
        }
    }
}
