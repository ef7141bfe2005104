//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Foundation
import Testing

/// Replay of the tpm2-tools fixture logs equals tpm2_eventlog's `pcrs:` section, bank by bank.
@Suite struct EventLogReplayTests {
    static let fixtures = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs/tpm2-tools"
    static let names: [String] = {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? []
        return all.filter { $0.hasSuffix(".bin") }.sorted()
    }()

    @Test func thereAreTwelveFixtures() {
        #expect(Self.names.count == 12)
    }

    @Test(arguments: names) func replayEqualsTpm2EventlogPCRs(name: String) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/\(name)")))
        let log = try EventLog(parsing: bytes)
        let yaml = try String(contentsOfFile: "\(Self.fixtures)/expected-raw/\(name).yaml", encoding: .utf8)
        let section = try #require(yaml.range(of: "\npcrs:"))
        let expected = try PCRValues(parsingText: String(yaml[section.upperBound...]))
        let replayed = try log.replay(using: OpenSSLPCRHasher())
        // tpm2_eventlog prints only PCRs that have events; so does domb.
        #expect(replayed.algorithms == expected.algorithms, "\(name): banks")
        for bank in expected.algorithms {
            #expect(replayed.pcrs(in: bank) == expected.pcrs(in: bank), "\(name) \(bank): PCR set")
            for pcr in expected.pcrs(in: bank) {
                #expect(replayed[bank, pcr] == expected[bank, pcr], "\(name) \(bank) PCR \(pcr)")
            }
        }
        // Verification against the expected values succeeds, and fails once one PCR is off.
        #expect(log.verify(against: expected, using: OpenSSLPCRHasher()).isVerified || expected.algorithms.isEmpty)
        if let bank = expected.algorithms.first, let pcr = expected.pcrs(in: bank).first {
            var tampered = expected
            tampered[bank, pcr] = [UInt8](repeating: 0x42, count: bank.digestSize ?? 0)
            guard case .failed(let failures) = log.verify(against: tampered, using: OpenSSLPCRHasher()) else {
                Issue.record("tampered PCR verified")
                return
            }
            #expect(failures.count == 1)
            #expect(failures.first?.pcr == pcr)
        }
    }

    @Test(arguments: names) func serialisingAParsedLogGivesTheSameBytes(name: String) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/\(name)")))
        let log = try EventLog(parsing: bytes)
        // The vendor-info quirk is read, not reproduced: domb writes vendor info inside the event.
        if log.quirks.contains(.vendorInfoOutsideEventSize) {
            let rewritten = try EventLog(parsing: log.serialized(), strict: true)
            #expect(rewritten.specID == log.specID)
        } else {
            #expect(log.serialized() == bytes)
        }
    }

    @Test func extendMatchesOpenSSLCommandLine() throws {
        let directory = try TemporaryDirectory()
        let old = [UInt8](repeating: 0x11, count: 32)
        let new = [UInt8](repeating: 0x22, count: 32)
        let file = try directory.write("concat", old + new)
        for bank in HashAlgorithm.known where MultiHasher.supports(bank) {
            let size = bank.digestSize ?? 0
            let o = [UInt8](repeating: 0x11, count: size)
            let n = [UInt8](repeating: 0x22, count: size)
            let path = try directory.write("c-\(bank.name)", o + n)
            let name = bank == .sm3_256 ? "sm3" : bank.name
            let expected = try Tools.run("openssl", ["dgst", "-\(name)", "-binary", path]).stdout
            #expect(try OpenSSLPCRHasher().extend(bank, o, with: n) == expected, "\(bank)")
        }
        _ = file
    }
}
