//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombArchive
import DombCore
import DombCrypto
import DombLaunch
import Foundation

/// `domb predict BUNDLE`: the PCR values a bundle's launch leaves, per bank.
struct PredictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Print the PCR values a bundle's launch is predicted to leave, per bank.",
        discussion: """
            With --trust, --cert or --pubkey the bundle is verified first and nothing is printed \
            unless it verifies; without them the values are read from the manifest UNVERIFIED.

            Prints a table: one row per PCR and bank, each value in full (lower-case hex). \
            --pcrread prints tpm2_pcrread's layout instead ("sha256:" then "  13: 0xHEX"), to diff \
            with `tpm2_pcrread` on the booted host or to give to `domb log verify --pcrs`; --json \
            is the form for scripts.
            """ + "\n\n" + ExitStatus.help(success: "the values were printed", refused: "the bundle does not verify, or its manifest is malformed"))

    @Argument(help: "The bundle (tar).") var bundle: String
    @Option(help: "Trust anchors (directory or CA file) to verify a CMS bundle first.") var trust: String?
    @Option(help: "Pinned certificate to verify the bundle first.") var cert: String?
    @Option(help: "Public key to verify the bundle first.") var pubkey: String?
    @Flag(help: "Print JSON: {\"format\":…,\"pcrs\":{\"sha256\":{\"13\":\"…\"}}} (docs/json.md).") var json = false
    @Flag(help: "Print tpm2_pcrread's layout (diff it with tpm2_pcrread; `log verify --pcrs` reads it).")
    var pcrread = false
    @OptionGroup var progressOptions: ProgressOptions

    func validate() throws {
        guard !(json && pcrread) else { throw ValidationError("give --json or --pcrread, not both") }
        guard [trust, cert, pubkey].compactMap({ $0 }).count <= 1 else {
            throw ValidationError("give at most one of --trust, --cert, --pubkey")
        }
    }

    func run() async throws {
        try requireInputFile(bundle)
        let manifest: BundleManifest
        if trust != nil || cert != nil || pubkey != nil {
            var options = BundleCommand.TrustOptions()
            options.trust = trust
            options.cert = cert
            options.pubkey = pubkey
            let progress = progressOptions.progress("verifying", bundle, json: json)
            let result = BundleVerifier.verify(bundle: bundle, trust: try options.policy(), progress: progress?.bytes)
            progress?.finish()
            guard result.isVerified, let verified = result.manifest else {
                Diagnostics.refusal(bundle, reasons: result.failures.map(\.description))
                throw ExitCode(ExitStatus.refused.rawValue)
            }
            manifest = verified
        } else {
            FileHandle.standardError.write(Data("\(bundle): UNVERIFIED (give --trust, --cert or --pubkey to verify)\n".utf8))
            manifest = try BundleManifest(unverifiedFromBundle: bundle)
        }
        let pcrs = manifest.predictedPCRs
        if json {
            print(pcrs.predictionJSON.canonicalString)
            return
        }
        guard !pcrs.algorithms.isEmpty else {
            print("the bundle predicts no PCR values")
            return
        }
        print(pcrread ? pcrs.text : pcrs.table.text, terminator: "")
    }
}
