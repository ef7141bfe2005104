//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

@Suite struct CLITests {
    @Test func versionAndHelp() throws {
        let version = try DombBinary.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == DombVersion.current)
        let help = try DombBinary.run(["--help"])
        #expect(help.status == 0)
        #expect(help.stdoutText.contains("tpm"))
    }

    @Test func tpmInfoAndPCRReadAgainstSwtpm() throws {
        try Swtpm.with { swtpm in
            let info = try DombBinary.run(["tpm", "info", "--tpm", swtpm.tcti, "--json"])
            #expect(info.status == 0, "\(info.stderrText)")
            #expect(info.stdoutText.contains("\"sha256\""))
            let read = try DombBinary.run(["tpm", "pcrread", "--tpm", swtpm.tcti, "--pcrs", "17", "--banks", "sha256"])
            #expect(read.status == 0, "\(read.stderrText)")
            #expect(read.stdoutText.contains("17: 0x" + String(repeating: "F", count: 64)))
        }
    }

    @Test func unreachableTPMIsAClearErrorNotACrash() throws {
        let result = try DombBinary.run(["tpm", "info", "--tpm", "swtpm:host=127.0.0.1,port=1"])
        #expect(result.status != 0)
        #expect(result.stderrText.contains("swtpm:host=127.0.0.1,port=1"))
    }

    @Test func badPCRListIsRejected() throws {
        let result = try DombBinary.run(["tpm", "pcrread", "--pcrs", "30", "--tpm", "swtpm:port=1"])
        #expect(result.status != 0)
        #expect(result.stderrText.contains("PCRs are 0 to 23"))
    }
}
