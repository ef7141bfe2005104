//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import DombCrypto
import DombLaunch
import DombTPM
import Foundation

/// `domb log …`: read, replay, verify and export TCG event logs.
struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Read, replay, verify and export TCG PC Client event logs (crypto-agile or SHA-1).",
        discussion: "Reads firmware logs (/sys/kernel/security/tpm0/binary_bios_measurements) and domb's own. See docs/eventlog.md.",
        subcommands: [Show.self, Replay.self, Verify.self, Export.self, Combine.self]
    )

    /// Reads and parses LOG, naming the file in any error.
    static func load(_ path: String) throws -> EventLog {
        let bytes = try InputFile.read(path, limit: MeasurementLogFile.maximumSize)
        return try ContextError.wrap("\(path): not a readable TCG event log") { try EventLog(parsing: bytes) }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every record of a log (unverified: types and data are claims).",
            discussion: """
                One row per record: number (tpm2_eventlog's EventNum), PCR (-1: Windows' records on \
                PCR 0xFFFFFFFF, never extended), event type, a prefix of its SHA-256 digest (or of the \
                log's first bank), and what it is: domain and role of domb's records, the UEFI variable \
                name of EV_EFI_VARIABLE_* records, strings, sizes. --verbose prints every bank's full \
                digest and the data in full, record by record.
                """ + "\n\n" + ExitStatus.help(success: "the log was read", refused: "it is malformed"))

        @Argument(help: "The event log file.") var log: String
        @Flag(name: .shortAndLong, help: "Every record in full: each bank's whole digest and all its data, not a table.")
        var verbose = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if json && verbose { throw ValidationError("give --json or --verbose, not both") }
        }

        func run() async throws {
            let parsed = try LogCommand.load(log)
            if json {
                print(try jsonText(EventLogReport(parsed), format: .eventLog))
            } else {
                print(EventLogRendering.text(parsed, verbose: verbose), terminator: "")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the PCR values the log replays to, per bank (the format --pcrs reads).",
            discussion: ExitStatus.help(success: "the log was replayed", refused: "it is malformed"))

        @Argument(help: "The event log file.") var log: String
        @OptionGroup var progressOptions: ProgressOptions

        func run() async throws {
            // Streaming: parse and replay in one pass without keeping the records.
            let bytes = try InputFile.read(log, limit: MeasurementLogFile.maximumSize)
            let progress = progressOptions.progress("replaying", log)
            let replay: EventLogReplay
            do {
                defer { progress?.finish() }
                replay = try ContextError.wrap(log) {
                    try EventLog.replay(parsing: bytes[...], using: OpenSSLPCRHasher(), progress: progress?.bytes)
                }
            }
            // stdout stays the PCR values (the --pcrs format); what the log needed goes to stderr.
            for quirk in replay.quirks { FileHandle.standardError.write(Data("\(log): quirk: \(quirk)\n".utf8)) }
            for coverage in replay.untrusted {
                FileHandle.standardError.write(Data(
                    "\(log): \(coverage.bank.name) PCR \(coverage.untrustedPCRs.map(String.init).joined(separator: ",")) not replayed: records without a \(coverage.bank.name) digest (untrusted in that bank)\n".utf8))
            }
            print(replay.values.text, terminator: "")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that the log replays to the TPM's PCRs (or to PCR values in a file).",
            discussion: """
                Every PCR the log extends must replay to the given value in every bank of the log, \
                and every active bank must be covered by the log. The records are checked by the \
                rules `domb attest verify` applies (docs/attestation.md): an EV_NO_ACTION record \
                carries no digest, domb's records are consistent with their digests, and on the PCRs \
                carrying domb's records only domb's event types appear, with one EV_SEPARATOR, last.
                """ + "\n\n" + ExitStatus.help(success: "the log verifies", refused: "it does not (every reason is printed)"))

        @Argument(help: "The event log file.") var log: String
        @OptionGroup var tpm: TPMOptions
        @Option(help: "PCR values file (tpm2_pcrread / domb log replay format) instead of a TPM.") var pcrs: String?

        func validate() throws {
            if pcrs != nil && tpm.tcti != nil { throw ValidationError("give either --tpm or --pcrs, not both") }
        }

        func run() async throws {
            let parsed = try LogCommand.load(log)
            let values: PCRValues
            if let pcrs {
                let text = try InputFile.read(pcrs, limit: 1 << 20)
                values = try ContextError.wrap(pcrs) { try PCRValues(parsingText: String(decoding: text, as: UTF8.self)) }
            } else {
                let connection = try tpm.open()
                let banks = try connection.activeBanks()
                let pcrList = parsed.extendedPCRs
                values = pcrList.isEmpty ? PCRValues() : try connection.readPCRs(pcrList, banks: banks)
            }
            let hasher = OpenSSLPCRHasher()
            var problems: [String] = []
            switch parsed.verify(against: values, using: hasher) {
            case .verified:
                break
            case .failed(let failures):
                problems += failures.map(\.description)
            }
            // The record rules attest verify applies, on every record; the launch rules on the
            // PCRs that carry domb's records (a firmware log's other PCRs follow firmware rules).
            let events = parsed.events.map(AttestedEvent.init)
            let rules = LaunchLogRules.domb
            problems += rules.violations(events, launchPCRs: LaunchLogRules.pcrsWithDombRecords(events), using: hasher).map(\.message)
            guard problems.isEmpty else {
                Diagnostics.refusal(log, reasons: problems)
                throw ExitCode(ExitStatus.refused.rawValue)
            }
            let pcrText = parsed.extendedPCRs.map(String.init).joined(separator: ",")
            let verifiedBanks = Set(parsed.headerBanks).intersection(values.algorithms).sorted()
            print(
                "\(log): verified: \(parsed.events.count) events, PCRs \(pcrText.isEmpty ? "none" : pcrText) in \(verifiedBanks.map(\.name).joined(separator: ", "))"
            )
            for quirk in parsed.quirks { print("\(log): quirk: \(quirk)") }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a log as TCG Canonical Event Log JSON (the tpm2-tss FAPI / systemd-pcrlock form).",
            discussion: ExitStatus.help(success: "the log was exported", refused: "it is malformed"))

        @Argument(help: "The event log file.") var log: String
        @Flag(name: .customLong("cel-json"), help: "CEL-JSON (the only export format so far).") var celJSON = false

        func validate() throws {
            guard celJSON else { throw ValidationError("choose an export format: --cel-json") }
        }

        func run() async throws {
            print(try LogCommand.load(log).celJSON(), terminator: "")
        }
    }
}

/// The text rendering of a log for `domb log show`: the header facts, then a table of
/// the records (or, verbose, each record in full).
enum EventLogRendering {
    static func text(_ log: EventLog, verbose: Bool = false) -> String {
        var out = "format: \(log.format.rawValue)\nbanks:  \(log.headerBanks.map(\.name).joined(separator: ", "))\n"
        if let specID = log.specID {
            out += "spec:   Spec ID Event03, platform class \(specID.platformClass), version \(specID.specVersionMajor).\(specID.specVersionMinor) errata \(specID.specErrata), uintn \(specID.uintnSize)"
            if !specID.vendorInfo.isEmpty { out += ", vendor info \(specID.vendorInfo.hexString)" }
            out += "\n"
        }
        for quirk in log.quirks { out += "quirk:  \(quirk)\n" }
        guard verbose else { return out + "\n" + log.summaryTable.text }
        for event in log.events {
            let pcr = event.pcr == EventLog.pcrMinusOne ? "0xFFFFFFFF (never extended)" : "\(event.pcr)"
            out += "#\(event.number) PCR \(pcr) \(event.type) (\(event.data.count) bytes)\n"
            for digest in event.digests.digests { out += "    \(digest.algorithm.name): \(digest.bytes.hexString)\n" }
            out += "    \(TerminalText.escape(EventSummary.describe(event, long: true)))\n"
        }
        return out
    }
}
