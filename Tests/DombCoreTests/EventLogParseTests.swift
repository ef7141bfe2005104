//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation
import Testing

@Suite struct EventLogParseTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let url = try #require(
            Bundle.module.url(forResource: "Fixtures/eventlogs/tpm2-tools/\(name)", withExtension: nil))
        return try [UInt8](Data(contentsOf: url))
    }

    static let names = [
        "event-arch-linux.bin", "event-bootorder.bin", "event-gce-ubuntu-2104-log.bin", "event-moklisttrusted.bin",
        "event-postcode.bin", "event-sd-boot-fedora37.bin", "event-uefi-sha1-log.bin", "event-uefiaction.bin",
        "event-uefiservices.bin", "event-uefivar.bin", "event.bin", "specid-vendordata.bin",
    ]

    @Test(arguments: names) func everyFixtureParses(name: String) throws {
        let log = try EventLog(parsing: try Self.fixture(name))
        #expect(log.format == (name == "event-uefi-sha1-log.bin" ? .sha1 : .cryptoAgile))
    }

    @Test func specIDWithVendorInfo() throws {
        let log = try EventLog(parsing: try Self.fixture("specid-vendordata.bin"))
        #expect(log.specID?.vendorInfo == [0xde, 0xad, 0xbe, 0xef])
        #expect(log.banks == [.sha1, .sha256])
        #expect(log.events.isEmpty)
    }

    @Test func eventTypesAreNamed() throws {
        let log = try EventLog(parsing: try Self.fixture("event-gce-ubuntu-2104-log.bin"))
        #expect(log.events.allSatisfy { $0.type.isKnown })
        #expect(EventType(rawValue: 0x1234).description == "EventType(0x00001234)")
        #expect(EventType.efiAction.description == "EV_EFI_ACTION")
        #expect(EventType(name: "EV_IPL") == .ipl)
    }

    /// No strict prefix of a valid log parses (a cut on a record boundary is a shorter
    /// but valid log, so the test cuts inside records only).
    @Test(arguments: ["event.bin", "event-uefivar.bin", "event-uefi-sha1-log.bin", "specid-vendordata.bin"])
    func dripFeedTruncation(name: String) throws {
        let bytes = try Self.fixture(name)
        let log = try EventLog(parsing: bytes)
        var boundaries: Set<Int> = [bytes.count]
        if let specID = log.specID { boundaries.insert(EventLog.headerRecord(specID).count) }
        for event in log.events { boundaries.insert(event.offset) }
        for length in 0..<bytes.count where !boundaries.contains(length) {
            do {
                _ = try EventLog(parsing: bytes[..<length])
                Issue.record("\(name): prefix of \(length) bytes parsed")
            } catch {
                #expect(error.code == .truncated || error.code == .invalidValue, "\(name) at \(length): \(error)")
                #expect(error.offset != nil)
            }
        }
    }

    /// A two-bank header and one record, every field labelled.
    static func handBuilt(
        headerAlgorithms: [(UInt16, UInt16)] = [(0x0004, 20), (0x000B, 32)],
        recordDigests: [(UInt16, Int)] = [(0x0004, 20), (0x000B, 32)],
        eventSize: UInt32? = nil, extraHeader: Bool = false, secondRecordDigests: [(UInt16, Int)]? = nil
    ) -> [UInt8] {
        var w = ByteWriter()
        var spec = ByteWriter()
        spec.writeBytes(Array("Spec ID Event03".utf8) + [0])  // signature
        spec.writeLE(UInt32(0))  // platformClass
        spec.writeLE(UInt8(0))  // specVersionMinor
        spec.writeLE(UInt8(2))  // specVersionMajor
        spec.writeLE(UInt8(0))  // specErrata
        spec.writeLE(UInt8(2))  // uintnSize
        spec.writeLE(UInt32(headerAlgorithms.count))  // numberOfAlgorithms
        for (id, size) in headerAlgorithms {
            spec.writeLE(id)  // algorithmId
            spec.writeLE(size)  // digestSize
        }
        spec.writeLE(UInt8(0))  // vendorInfoSize
        w.writeLE(UInt32(0))  // pcrIndex
        w.writeLE(UInt32(3))  // EV_NO_ACTION
        w.writeZeros(20)  // SHA-1 digest
        w.writeLE(UInt32(spec.bytes.count))  // eventSize
        w.writeBytes(spec.bytes)
        if extraHeader {
            w.writeLE(UInt32(0))  // pcrIndex
            w.writeLE(UInt32(3))  // EV_NO_ACTION
            w.writeLE(UInt32(headerAlgorithms.count))  // digest count
            for (id, size) in headerAlgorithms {
                w.writeLE(id)
                w.writeZeros(Int(size))
            }
            w.writeLE(UInt32(spec.bytes.count))
            w.writeBytes(spec.bytes)  // a second Spec ID
        }
        w.writeLE(UInt32(12))  // pcrIndex
        w.writeLE(UInt32(0xD))  // EV_IPL
        w.writeLE(UInt32(recordDigests.count))  // digest count
        for (id, size) in recordDigests {
            w.writeLE(id)  // hashAlg
            w.writeBytes([UInt8](repeating: 0xAB, count: size))  // digest
        }
        w.writeLE(eventSize ?? 3)  // eventSize
        w.writeBytes([0x61, 0x62, 0x63])  // "abc"
        if let secondRecordDigests {
            w.writeLE(UInt32(13))  // pcrIndex
            w.writeLE(UInt32(0x6))  // EV_EVENT_TAG
            w.writeLE(UInt32(secondRecordDigests.count))  // digest count
            for (id, size) in secondRecordDigests {
                w.writeLE(id)  // hashAlg
                w.writeBytes([UInt8](repeating: 0xCD, count: size))  // digest
            }
            w.writeLE(UInt32(0))  // eventSize
        }
        return w.bytes
    }

    @Test func handBuiltLogParses() throws {
        let log = try EventLog(parsing: Self.handBuilt())
        #expect(log.events.count == 1)
        #expect(log.events[0].pcr == 12)
        #expect(log.events[0].data == Array("abc".utf8))
        #expect(log.serialized() == Self.handBuilt())
    }

    @Test func duplicatedSpecIDIsRefused() {
        #expect {
            try EventLog(parsing: Self.handBuilt(extraHeader: true))
        } throws: { error in
            "\(error)".contains("second Spec ID header") && (error as? ParseError)?.offset == 69
        }
    }

    @Test func unknownAlgorithmInARecordIsRefused() {
        let bytes = Self.handBuilt(recordDigests: [(0x0004, 20), (0x0099, 32)])
        #expect {
            try EventLog(parsing: bytes)
        } throws: { error in
            "\(error)".contains("does not list") && (error as? ParseError)?.offset != nil
        }
    }

    @Test func unknownAlgorithmInTheHeaderIsRefused() {
        #expect {
            try EventLog(parsing: Self.handBuilt(headerAlgorithms: [(0x0099, 32)], recordDigests: [(0x0099, 32)]))
        } throws: { error in
            (error as? ParseError)?.code == .unsupported && "\(error)".contains("unknown hash algorithm")
        }
    }

    @Test func bankSubsetsAreRefusedWhenStrictAndReportedOtherwise() throws {
        // The header lists sha1 and sha256, the record carries only sha256: refused when strict.
        let subset = Self.handBuilt(recordDigests: [(0x000B, 32)])
        #expect {
            try EventLog(parsing: subset, strict: true)
        } throws: { error in
            "\(error)".contains("carries 1 digests but the Spec ID header lists 2") && "\(error)".contains("strict")
                && (error as? ParseError)?.offset == 77
        }
        // Firmware-quirk mode accepts it and says which bank is untrusted where…
        let lenient = try EventLog(parsing: subset)
        let sha1 = BankCoverage(bank: .sha1, recordsWith: 0, recordsWithout: 1, untrustedPCRs: [12])
        #expect(lenient.quirks == [.bankSubset([sha1])])
        #expect(lenient.banks == [.sha256])
        #expect(lenient.headerBanks == [.sha1, .sha256])
        // …also when records disagree with each other (EV_IPL on 12 with sha256 only,
        // EV_EVENT_TAG on 13 with both): sha1 is untrusted on PCR 12 only.
        let mixed = Self.handBuilt(recordDigests: [(0x000B, 32)], secondRecordDigests: [(0x0004, 20), (0x000B, 32)])
        let mixedLog = try EventLog(parsing: mixed)
        #expect(mixedLog.quirks == [.bankSubset([BankCoverage(bank: .sha1, recordsWith: 1, recordsWithout: 1, untrustedPCRs: [12])])])
        #expect(mixedLog.bankCoverage.map(\.isComplete) == [false, true])
        #expect(throws: ParseError.self) { try EventLog(parsing: mixed, strict: true) }
        // Same count, a bank repeated.
        #expect {
            try EventLog(parsing: Self.handBuilt(recordDigests: [(0x000B, 32), (0x000B, 32)]))
        } throws: { error in
            "\(error)".contains("two sha256 digests")
        }
        // No digest at all.
        #expect {
            try EventLog(parsing: Self.handBuilt(recordDigests: []))
        } throws: { error in
            "\(error)".contains("carries 0 digests") && (error as? ParseError)?.offset == 77
        }
    }

    @Test func oversizedEventIsRefused() {
        #expect {
            try EventLog(parsing: Self.handBuilt(eventSize: 0xFFFF_FFF0))
        } throws: { error in
            (error as? ParseError)?.code == .limitExceeded && (error as? ParseError)?.offset != nil
        }
        let limits = EventLog.Limits(maximumLogSize: 64, maximumEventCount: 10, maximumEventDataSize: 10)
        #expect { try EventLog(parsing: Self.handBuilt(), limits: limits) } throws: { error in
            (error as? ParseError)?.code == .limitExceeded && "\(error)".contains("64-byte limit")
        }
    }

    @Test func garbageIsRefusedWithOffset() {
        var bytes = Self.handBuilt()
        bytes.append(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF, 0x01])  // a record with PCR 0xFFFFFFFF, cut short
        #expect { try EventLog(parsing: bytes) } throws: { error in
            (error as? ParseError)?.offset == Self.handBuilt().count + 4 && "\(error)".contains("event 2 eventType")
        }
        #expect(throws: ParseError.self) { try EventLog(parsing: []) }
        // A record on PCR 30.
        var pcr30 = Self.handBuilt()
        pcr30[69] = 30
        #expect { try EventLog(parsing: pcr30) } throws: { error in "\(error)".contains("EV_IPL on PCR 30") }
    }

    @Test func fuzzEntryPointSurvivesMutations() throws {
        var generator = SystemRandomNumberGenerator()
        let seeds = try Self.names.map(Self.fixture)
        for seed in seeds {
            for _ in 0..<200 {
                var bytes = seed
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes[index] = UInt8.random(in: 0...255, using: &generator)
                }
                EventLogFuzz.parse(bytes)
            }
        }
        #expect(EventLogFuzz.parse(Self.handBuilt()))
        #expect(!EventLogFuzz.parse([1, 2, 3]))
    }

    @Test func pcrValuesText() throws {
        let values = try PCRValues(parsingText: "sha256:\n  12: 0x" + String(repeating: "AB", count: 32) + "\n")
        #expect(values[.sha256, 12] == [UInt8](repeating: 0xAB, count: 32))
        #expect(try PCRValues(parsingText: values.text) == values)
        #expect(throws: ParseError.self) { try PCRValues(parsingText: "sha256:\n  12: 0x12\n") }
        #expect(throws: ParseError.self) { try PCRValues(parsingText: "  12: 0x12\n") }
        #expect(throws: ParseError.self) { try PCRValues(parsingText: "md5:\n") }
    }
}
