//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Foundation
import Testing

/// The conformance corpus `Fixtures/eventlogs/real-world/`: logs written by real firmware
/// and operating systems, each with the PCR values its source project took from a TPM
/// quote or its own tests. Data-driven: every `NAME.bin` with a `NAME.expected.json` is a
/// case (see the folder's README for sources and licences).
@Suite struct RealWorldEventLogTests {
    static let folder = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs/real-world"
    static let names: [String] = {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return all.filter { $0.hasSuffix(".expected.json") }.map { String($0.dropLast(".expected.json".count)) }.sorted()
    }()

    static func bytes(_ name: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name).bin")))
    }

    /// `{"<bank>": {"<pcr>": "<hex>"}}`.
    static func expected(_ name: String) throws -> PCRValues {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name).expected.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: String]])
        var values = PCRValues()
        for (bankName, pcrs) in object {
            let bank = try #require(HashAlgorithm(name: bankName), "\(name): bank \(bankName)")
            for (pcrText, hex) in pcrs {
                let pcr = try #require(Int(pcrText), "\(name): PCR \(pcrText)")
                let value = try #require([UInt8](hex: hex), "\(name): \(bankName):\(pcrText)")
                #expect(value.count == bank.digestSize, "\(name): \(bankName):\(pcrText) size")
                values[bank, pcr] = value
            }
        }
        return values
    }

    @Test func theCorpusIsComplete() throws {
        #expect(Self.names.count >= 25, "cases found: \(Self.names)")
        for name in Self.names {
            #expect(FileManager.default.fileExists(atPath: "\(Self.folder)/\(name).bin"), "\(name).bin is missing")
        }
        let readme = try String(contentsOfFile: Self.folder + "/README.md", encoding: .utf8)
        for licence in ["Apache-2.0", "LGPL-3.0", "BSD-2-Clause"] {
            #expect(readme.contains(licence))
            #expect(FileManager.default.fileExists(atPath: "\(Self.folder)/LICENSES/\(licence).txt"), "\(licence) text")
        }
    }

    /// Every log parses and replays to its expected values, bank by bank, both from the
    /// parsed records and in the streaming pass `domb log replay` uses.
    @Test(arguments: names) func replayEqualsTheQuotedPCRs(name: String) throws {
        let bytes = try Self.bytes(name)
        let expected = try Self.expected(name)
        let log = try EventLog(parsing: bytes)
        let hasher = OpenSSLPCRHasher()
        let replayed = try log.replay(using: hasher)
        let streamed = try EventLog.replay(parsing: bytes[...], using: hasher)
        #expect(streamed.values == replayed, "\(name): streaming and stored replay differ")
        #expect(streamed.quirks == log.quirks)
        var compared = 0
        for bank in expected.algorithms {
            for pcr in expected.pcrs(in: bank) {
                #expect(replayed[bank, pcr] == expected[bank, pcr], "\(name) \(bank) PCR \(pcr)")
                compared += 1
            }
        }
        #expect(compared > 0 || log.extendedPCRs.isEmpty, "\(name): the expected file gives no value for a log that extends PCRs")
        // Verification against the replay passes; one flipped bit in a quoted PCR fails.
        if let bank = expected.algorithms.first, let pcr = expected.pcrs(in: bank).first {
            var flipped = replayed
            flipped[bank, pcr]?[0] ^= 1
            guard case .failed(let failures) = log.verify(against: flipped, using: hasher) else {
                Issue.record("\(name): a flipped \(bank) PCR \(pcr) verified")
                return
            }
            #expect(failures.map(\.pcr) == [pcr])
        }
        #expect(log.verify(against: replayed, using: hasher).isVerified, "\(name)")
        // A firmware log is never read as domb's own: strict refuses every workaround.
        if log.quirks.contains(where: \.isWorkaround) {
            #expect(throws: ParseError.self, "\(name): strict reading accepted a workaround") {
                try EventLog(parsing: bytes, strict: true)
            }
        }
    }

    /// tpm2_eventlog (tpm2-tools) as a second oracle: where it reads a log, every PCR it
    /// prints equals domb's replay, except PCR 0 when the log needed a StartupLocality or
    /// an H-CRTM start value (tpm2-tools 5.4 starts PCR 0 at zero; the TPM does not).
    @Test func tpm2EventlogAgreesExceptOnPCR0StartValues() throws {
        var comparedLogs = 0
        var explainedDifferences: [String] = []
        for name in Self.names {
            let path = "\(Self.folder)/\(name).bin"
            let result = try Tools.run("tpm2_eventlog", [path], check: false)
            guard result.status == 0, let section = result.stdoutText.range(of: "\npcrs:") else { continue }
            comparedLogs += 1
            let tools = try PCRValues(parsingText: String(result.stdoutText[section.upperBound...]))
            let log = try EventLog(parsing: try Self.bytes(name))
            let domb = try log.replay(using: OpenSSLPCRHasher())
            let pcr0Start = log.pcr0StartLocality != 0
            for bank in tools.algorithms {
                for pcr in tools.pcrs(in: bank) {
                    if pcr == 0 && pcr0Start {
                        // The difference is the start value, and only that.
                        #expect(tools[bank, pcr] != domb[bank, pcr], "\(name): PCR 0 start \(log.pcr0StartLocality) changed nothing")
                        explainedDifferences.append("\(name) \(bank)")
                        continue
                    }
                    #expect(tools[bank, pcr] == domb[bank, pcr], "\(name) \(bank) PCR \(pcr): tpm2_eventlog differs")
                }
            }
        }
        #expect(comparedLogs >= 20, "tpm2_eventlog read only \(comparedLogs) logs")
        #expect(!explainedDifferences.isEmpty, "no log exercised the PCR 0 start value")
    }

    /// The kinds the corpus holds are found and named.
    @Test func theCorpusKindsAreReported() throws {
        let hcrtm = try EventLog(parsing: try Self.bytes("tpm2-tss-hcrtm"))
        #expect(hcrtm.quirks == [.hcrtmStartValue(event: 1)])
        #expect(hcrtm.headerBanks == [.sha1, .sha256, .sm3_256])
        #expect(hcrtm.pcr0StartLocality == 4)

        let bootGuard = try EventLog(parsing: try Self.bytes("keylime-bootguard"))
        #expect(bootGuard.quirks.first == .startupLocality(locality: 3, event: 1))
        #expect(bootGuard.pcr0StartLocality == 3)

        let windows = try EventLog(parsing: try Self.bytes("go-attestation-windows-option-rom"))
        #expect(windows.format == .sha1)
        #expect(windows.quirks == [.noActionOnPCRMinusOne(count: 1, first: 60, withDigests: 1)])
        #expect(!windows.extendedPCRs.contains { $0 >= 24 })
        #expect(windows.events.last?.pcr == EventLog.pcrMinusOne)

        // A TPM 1.2-era SHA-1 log needs nothing.
        let tpm12 = try EventLog(parsing: try Self.bytes("go-eventlog-linux-tpm12"))
        #expect(tpm12.format == .sha1 && tpm12.quirks.isEmpty)
    }
}
