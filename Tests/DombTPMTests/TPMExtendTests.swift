//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTPM
import DombTestSupport
import Foundation
import Testing

@Suite struct TPMExtendTests {
    @Test func activeBanksOfAFreshSwtpm() throws {
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let banks = try tpm.activeBanks()
            #expect(banks.contains(.sha256))
            #expect(banks == banks.sorted())
        }
    }

    /// Extends PCR 12 in every active bank with one command and checks the value three ways:
    /// read back through domb, recomputed with `openssl dgst` over old‖digest, and read by
    /// `tpm2_pcrread` on the same swtpm.
    @Test func extendAllBanksMatchesOpenSSLAndTpm2Tools() throws {
        let directory = try TemporaryDirectory()
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let banks = try tpm.activeBanks()
            let before = try tpm.readPCRs([12], banks: banks)
            let event = Array("domb extend test".utf8)
            let digests = try MultiHasher.digest(event, algorithms: banks)

            let commandsBefore = tpm.commandCount
            try tpm.extend(pcr: 12, digests: digests)
            #expect(tpm.commandCount == commandsBefore + 1, "one TPM2_PCR_Extend for all banks")

            let after = try tpm.readPCRs([12], banks: banks)
            tpm.close()  // swtpm serves one client at a time; tpm2_pcrread is next
            for bank in banks {
                let old = try #require(before[bank, 12])
                #expect(old == [UInt8](repeating: 0, count: bank.digestSize ?? 0), "fresh PCR 12 is zero")
                let concatenated = try directory.write("concat-\(bank.name)", old + (digests[bank] ?? []))
                let expected = try Tools.run("openssl", ["dgst", "-\(bank.name)", "-binary", concatenated]).stdout
                #expect(after[bank, 12] == expected, "\(bank) matches openssl dgst over old‖digest")

                let output = directory.file("pcrread-\(bank.name).bin")
                try Tools.run(
                    "tpm2_pcrread", ["-T", swtpm.tcti, "\(bank.name):12", "-o", output],
                    environment: ["TSS2_LOG": "all+none"])
                let fromTools = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
                #expect(after[bank, 12] == fromTools, "\(bank) matches tpm2_pcrread")
            }
        }
    }

    @Test func readsMoreThanEightPCRsAcrossCommands() throws {
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let values = try tpm.readPCRs(Array(0..<24), banks: [.sha256])
            #expect(values.pcrs(in: .sha256) == Array(0..<24))
            // PC Client: PCRs 17–22 reset to all ones, the rest to zeros.
            #expect(values[.sha256, 17] == [UInt8](repeating: 0xFF, count: 32))
            #expect(values[.sha256, 0] == [UInt8](repeating: 0, count: 32))
        }
    }

    @Test func rejectsBadRequestsBeforeTalkingToTheTPM() throws {
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            var wrongSize = DigestSet()
            wrongSize[.sha256] = [1, 2, 3]
            #expect(throws: TPMError.self) { try tpm.extend(pcr: 12, digests: wrongSize) }
            #expect(throws: TPMError.self) { try tpm.extend(pcr: 24, digests: wrongSize) }
            #expect(tpm.commandCount == 0)
        }
    }

    @Test func unreachableTPMGivesDecodedError() throws {
        do {
            _ = try TPM(try TCTIConfiguration(parsing: "swtpm:host=127.0.0.1,port=1"))
            Issue.record("expected an error")
        } catch {
            #expect(error.returnCode != 0)
            #expect(error.description.contains("swtpm:host=127.0.0.1,port=1"))
        }
    }

    @Test func tctiStrings() throws {
        #expect(try TCTIConfiguration(parsing: "/dev/tpmrm0") == .defaultDevice)
        #expect(try TCTIConfiguration(parsing: "swtpm:port=2321").name == "swtpm")
        #expect(try TCTIConfiguration.resolve(nil, environment: ["TPM2TOOLS_TCTI": "mssim:port=1"]).name == "mssim")
        #expect(try TCTIConfiguration.resolve(nil, environment: [:]) == .defaultDevice)
        #expect(throws: TPMError.self) { try TCTIConfiguration(parsing: "  ") }
        #expect(throws: TPMError.self) { try TCTIConfiguration(parsing: "a b:c") }
    }
}
