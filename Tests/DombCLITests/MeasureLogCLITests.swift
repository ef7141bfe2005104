//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// `domb measure --log` appends only to a log that explains the TPM's PCRs.
@Suite struct MeasureLogCLITests {
    static let tss = ["TSS2_LOG": "all+none"]

    static func pcr13(_ swtpm: Swtpm) throws -> String {
        try Tools.run("tpm2_pcrread", ["-T", swtpm.tcti, "sha256:13"], environment: tss).stdoutText
    }

    @Test func aLogOfAnotherTPMOrBootIsNeverAppendedTo() throws {
        let directory = try TemporaryDirectory()
        let kernel = try directory.write("vmlinuz", (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 3) })
        let initrd = try directory.write("initrd", (0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 5) })
        let log = directory.file("launch.log")
        try Swtpm.with { first in
            let measured = try DombBinary.run(
                ["measure", "--tpm", first.tcti, "--log", log, "--lock-dir", directory.file("locks"), kernel], environment: Self.tss)
            #expect(measured.status == 0, "\(measured.stderrText)")
            let before = try Data(contentsOf: URL(fileURLWithPath: log))

            // Another TPM (a reboot, another host): its PCR 13 is at reset, the log is not.
            try Swtpm.with { second in
                let reset = try Self.pcr13(second)
                let refused = try DombBinary.run(
                    ["measure", "--tpm", second.tcti, "--log", log, "--lock-dir", directory.file("locks"), initrd], environment: Self.tss)
                #expect(refused.status != 0)
                #expect(refused.stderrText.contains("does not replay to this TPM's PCRs"), "\(refused.stderrText)")
                #expect(refused.stderrText.contains("PCR 13 (sha256) holds"))
                #expect(try Data(contentsOf: URL(fileURLWithPath: log)) == before, "the log is untouched")
                #expect(try Self.pcr13(second) == reset, "nothing was extended")
            }

            // A new log onto a PCR that already holds measurements could never replay either.
            let fresh = directory.file("fresh.log")
            let orphan = try DombBinary.run(
                ["measure", "--tpm", first.tcti, "--log", fresh, "--lock-dir", directory.file("locks"), initrd], environment: Self.tss)
            #expect(orphan.status != 0)
            #expect(orphan.stderrText.contains("a new log cannot explain PCRs that are not in their reset state"), "\(orphan.stderrText)")
            #expect(!FileManager.default.fileExists(atPath: fresh))

            // Continuing the log that explains the PCRs works, and it still replays (domb and
            // tpm2_eventlog agree with the TPM).
            let continued = try DombBinary.run(
                ["measure", "--tpm", first.tcti, "--log", log, "--lock-dir", directory.file("locks"), initrd, "--close"],
                environment: Self.tss)
            #expect(continued.status == 0, "\(continued.stderrText)")
            let verify = try DombBinary.run(["log", "verify", log, "--tpm", first.tcti], environment: Self.tss)
            #expect(verify.status == 0, "\(verify.stderrText)")
        }
    }

    @Test func aRunningLaunchOnTheTPMHoldsOffMeasure() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("file", [1, 2, 3])
        try Swtpm.with { swtpm in
            let tcti = try #require(swtpm.tcti.split(separator: ":", maxSplits: 1).last.map(String.init))
            // The lock `domb boot` takes for this TPM (docs/boot.md: launch-<TPM>.lock, the
            // TCTI's options sorted, other characters as "_"), held by another process (flock).
            let name = tcti.split(separator: ",").sorted().joined(separator: "-").replacingOccurrences(of: "=", with: "_")
            let lockPath = directory.file("locks/launch-swtpm-\(name).lock")
            try FileManager.default.createDirectory(atPath: directory.file("locks"), withIntermediateDirectories: true)
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: try Tools.require("flock"))
            holder.arguments = [lockPath, "sleep", "30"]
            try holder.run()
            defer { holder.terminate() }
            for _ in 0..<500 where !FileManager.default.fileExists(atPath: lockPath) { usleep(10_000) }
            usleep(200_000)
            let refused = try DombBinary.run(
                ["measure", "--tpm", swtpm.tcti, "--log", directory.file("log"), "--lock-dir", directory.file("locks"), file],
                environment: Self.tss)
            #expect(refused.status != 0)
            #expect(refused.stderrText.contains("lock: held by another process"), "\(refused.stderrText)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("log")))
        }
    }
}
