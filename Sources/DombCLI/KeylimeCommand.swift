//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombCrypto
import DombLaunch
import DombFiles
import Foundation

/// `domb keylime …`: what Keylime needs to attest a domb host.
struct KeylimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keylime",
        abstract: "Keylime policies for a domb launch (docs/keylime.md).",
        subcommands: [Policy.self]
    )

    struct Policy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the Keylime policy that admits exactly this bundle's launch.",
            discussion: """
                Verifies the bundle (signature, trust) and prints {"12": ["<hex>"], "13": ["<hex>"]}: \
                the bundle's predicted values of the PCRs it measures, in one bank (Keylime quotes one \
                bank, its tpm_hash_alg). Load it with \
                `keylime_tenant -c add -u UUID --tpm_policy "$(domb keylime policy BUNDLE --trust DIR)"`, \
                or update a running agent with `keylime_tenant -c update`. The PCRs must be ones \
                Keylime compares against a tpm_policy: not 10 (IMA) or 16 (Keylime's key binding).

                With --measured-boot it prints instead the reference state of the "domb-launch" \
                measured-boot policy (policies/keylime/domb_keylime_policy.py, loaded by the verifier's \
                measured_boot_imports): the bundle's golden events on PCRs 12 and 13, which the \
                verifier compares with the agent's event log. Load it with \
                `keylime_tenant -c add -u UUID --mb-policy FILE` (no --tpm_policy for PCRs 12 and 13: \
                Keylime replays them from the log).
                """ + "\n\n" + ExitStatus.help(success: "the policy was printed", refused: "the bundle did not verify, or measures what Keylime or the domb-launch policy cannot check"))

        @Argument(help: "The signed launch bundle.") var bundle: String
        @Option(help: "Trust anchors for its CMS signature (a directory or CA file).") var trust: String?
        @Option(help: "Its pinned signer certificate.") var cert: String?
        @Option(help: "The public key of its raw signature.") var pubkey: String?
        @Option(help: "The PCR bank Keylime quotes (tenant/verifier accept_tpm_hash_algs; the agent's tpm_hash_alg).")
        var bank: String = "sha256"
        @Flag(help: "Print the measured-boot reference state (keylime_tenant --mb-policy), every bank, instead of the tpm_policy.")
        var measuredBoot = false
        @Option(help: ArgumentHelp(
            "With --measured-boot: Keylime's own measured-boot reference state for the firmware's events, to judge them too.",
            discussion: "Made by `keylime-policy create measured-boot -e /sys/kernel/security/tpm0/binary_bios_measurements`.",
            valueName: "file"))
        var firmwareRefstate: String?
        @Option(name: .shortAndLong, help: "Write the JSON here instead of standard output.") var output: String?

        func validate() throws {
            guard measuredBoot || firmwareRefstate == nil else { throw ValidationError("--firmware-refstate needs --measured-boot") }
        }

        func run() async throws {
            guard let algorithm = HashAlgorithm(name: bank) else { throw ValidationError("unknown bank \(bank)") }
            let trustPolicy = try bundleTrustPolicy(trust: trust, cert: cert, pubkey: pubkey)
            let json: String
            if measuredBoot {
                let firmware = try firmwareRefstate.map { path in
                    let bytes = try InputFile.read(path, limit: JSONValue.maximumSize)
                    do { return try JSONValue(parsing: bytes) } catch { throw AttestationCLIError("\(path): \(error)") }
                }
                let golden = try BundleGoldenValues(bundle: bundle, trust: trustPolicy)
                json = try KeylimeMeasuredBootReference(events: golden.events, firmware: firmware).json.canonicalString
            } else {
                let loaded = try LoadedBundle.load(path: bundle, trust: trustPolicy, minimumGeneration: 0)
                json = try Self.tpmPolicy(loaded.manifest.predictedPCRs, bank: algorithm)
            }
            if let output {
                try AtomicFile.write(Array((json + "\n").utf8), to: output, inputs: [bundle] + (firmwareRefstate.map { [$0] } ?? []))
            } else {
                print(json)
            }
        }

        /// `{"12": ["hex"], …}` for every predicted PCR of `bank`.
        static func tpmPolicy(_ predicted: PCRValues, bank: HashAlgorithm) throws -> String {
            let pcrs = predicted.pcrs(in: bank)
            guard !pcrs.isEmpty else { throw AttestationCLIError("the bundle predicts no PCR in the \(bank) bank (build it with --banks including \(bank))") }
            if let reserved = pcrs.first(where: { $0 == 10 || $0 == 16 }) {
                throw AttestationCLIError("the bundle measures PCR \(reserved), which Keylime reserves (10 IMA, 16 key binding)")
            }
            let entries = pcrs.map { pcr in "\"\(pcr)\": [\"\((predicted[bank, pcr] ?? []).hexString)\"]" }
            return "{" + entries.joined(separator: ", ") + "}"
        }
    }
}
