//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import Foundation

extension LogCommand {
    struct Combine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append domb's launch events to the firmware's event log: one crypto-agile log for the whole host.",
            discussion: """
                The firmware log (/sys/kernel/security/tpm0/binary_bios_measurements) is kept byte for \
                byte up to its last event (trailing fill is dropped); the launch log's events follow, \
                re-encoded with the firmware log's Spec ID header. Both must list the same PCR banks. \
                tpm2_eventlog then replays every PCR from the one file, as Keylime's measured-boot \
                parser does (it reads one log, measuredboot_ml_path; `domb agent --eventlog`).
                """ + "\n\n" + ExitStatus.help(success: "the combined log was written", refused: "a log is malformed or the two list different PCR banks"))

        @Argument(help: "The firmware's binary event log.") var firmware: String
        @Argument(help: "domb's launch event log (domb boot --eventlog).") var launch: String
        @Option(name: .shortAndLong, help: "Where to write the combined log (replaced atomically).") var output: String

        func run() async throws {
            let limit = EventLog.Limits.default.maximumLogSize
            let firmwareBytes = try AttestationIO.readFile(firmware, limit: limit, what: "firmware event log")
            let launchBytes = try AttestationIO.readFile(launch, limit: limit, what: "launch event log")
            let combined = try ContextError.wrap("\(firmware) + \(launch)") {
                try EventLogCombination.combine(firmware: firmwareBytes, launch: launchBytes)
            }
            guard combined.count <= limit else { throw AttestationCLIError("the combined log would exceed \(limit) bytes") }
            try AtomicFile.write(combined, to: output, inputs: [firmware, launch])
            print("combined \(firmwareBytes.count)-byte firmware log and the launch events into \(output) (\(combined.count) bytes)")
        }
    }
}
