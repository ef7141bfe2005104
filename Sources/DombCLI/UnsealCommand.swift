//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import DombLaunch
import DombTPM
import Foundation

/// `domb unseal`: what `domb boot --secret` does for one secret, by hand.
struct UnsealCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unseal",
        abstract: "Unseal a sealed secret with the signed PCR policy of the bundle that was launched.",
        discussion: """
            Runs TPM2_PolicyPCR → TPM2_VerifySignature → TPM2_PolicyAuthorize \
            [→ TPM2_PolicyAuthValue] → TPM2_Unseal with the bundle's pcr-policy.json: it \
            succeeds only while the TPM's launch PCRs hold the values that policy approves, \
            i.e. right after a genuine launch of a bundle signed by the secret's PCR-policy key. \
            The policy is taken from --bundle (its pcr-policy.json; the TPM checks the policy's \
            signature, the bundle's own signature is not needed) or --policy. See docs/secrets.md.
            """ + "\n\n" + ExitStatus.help(success: "the secret was unsealed", refused: "the TPM refused: the PCRs are not those of a signed launch, or the policy or sealed object was refused"))

    @Argument(help: "The sealed file (`domb seal` output).") var sealed: String
    @Option(help: "The launched bundle, whose pcr-policy.json is used.") var bundle: String?
    @Option(help: "A pcr-policy.json (extracted from a bundle).") var policy: String?
    @OptionGroup var pin: PINOptions
    @Option(name: .shortAndLong, help: "Where to write the secret (mode 0600), or - for standard output.") var output: String
    @OptionGroup var tpm: TPMOptions

    func validate() throws {
        guard (bundle == nil) != (policy == nil) else { throw ValidationError("give exactly one of --bundle and --policy") }
    }

    func run() async throws {
        let inputs = [sealed] + [bundle, policy, pin.file].compactMap { $0 }
        if output != "-" { try OutputTarget.check(output, inputs: OutputTarget.identities(inputs)) }
        let secret = try SecretRelease.readSealed(sealed)
        let policyBytes: [UInt8]
        if let bundle {
            policyBytes = try SecretRelease.signedPolicy(inBundle: bundle)
        } else {
            policyBytes = try readSmallFile(policy ?? "", limit: SignedPCRPolicy.maximumSize, what: "the PCR policy")
        }
        let signedPolicy = try ContextError.wrap(bundle ?? policy ?? "") { try SignedPCRPolicy(canonicalBytes: policyBytes) }
        let pinBytes = try pin.read(confirm: false)
        let connection = try tpm.open()
        let bytes = try TPMSecretUnsealer(tpm: connection).unseal(secret, policy: signedPolicy, pin: pinBytes)
        if output == "-" {
            FileHandle.standardOutput.write(Data(bytes))
        } else {
            try AtomicFile.write(bytes, to: output, inputs: inputs, mode: 0o600)
            FileHandle.standardError.write(Data("unsealed \(bytes.count) bytes to \(output)\n".utf8))
        }
    }
}
