//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombTPM
import Foundation

/// `domb tpm …`: look at the TPM domb would measure into.
struct TPMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tpm",
        abstract: "Inspect the TPM: active PCR banks and PCR values.",
        subcommands: [Info.self, PCRRead.self]
    )

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the TPM connection and its active PCR banks (every bank domb extends).",
            discussion: ExitStatus.help(success: "the TPM's banks were read", refused: "the TPM refused the query"))

        @OptionGroup var tpm: TPMOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let configuration = try tpm.resolve()
            let connection = try TPM(configuration)
            let banks = try connection.activeBanks()
            if json {
                print(try jsonText(TPMInfoReport(tcti: configuration.description, activeBanks: banks.map(\.name)), format: .tpmInfo))
            } else {
                print("TPM: \(TerminalText.escape(configuration.description))")
                print("active PCR banks (each extended by domb):")
                print(HashAlgorithm.bankTable(banks).text, terminator: "")
            }
        }
    }

    struct PCRRead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pcrread", abstract: "Read PCRs in every active bank (or the banks given).",
            discussion: ExitStatus.help(success: "the PCRs were read", refused: "the TPM refused the read"))

        @OptionGroup var tpm: TPMOptions
        @Option(help: "PCRs to read, e.g. 12,13 or 0-23.") var pcrs: String = "0-23"
        @Option(help: "Banks, e.g. sha1,sha256 (default: every active bank).") var banks: String?

        func validate() throws {
            _ = try parsePCRList(pcrs)
            _ = try banks.map(parseBankList)
        }

        func run() async throws {
            let pcrList = try parsePCRList(pcrs)
            let requestedBanks = try banks.map(parseBankList)
            let connection = try tpm.open()
            let selectedBanks = try requestedBanks ?? connection.activeBanks()
            let values = try connection.readPCRs(pcrList, banks: selectedBanks)
            for algorithm in values.algorithms {
                print("\(algorithm.name):")
                for pcr in values.pcrs(in: algorithm) {
                    let padded = pcr < 10 ? " \(pcr)" : "\(pcr)"
                    print("  \(padded): 0x\((values[algorithm, pcr] ?? []).hexString.uppercased())")
                }
            }
        }
    }
}

