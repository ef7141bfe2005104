//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombCrypto
import DombFiles
import DombLaunch
import DombTPM
import Foundation

/// `domb seal`: seal a secret once, to a PCR-policy signing key.
struct SealCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Seal a secret in this host's TPM so that any launch signed by a PCR-policy key unseals it.",
        discussion: """
            Creates a TPM sealed data object under the storage root key whose only \
            authorisation is TPM2_PolicyAuthorize(PCR-policy key, policy reference) — with \
            --pin, then TPM2_PolicyAuthValue. No PCR value is needed: every bundle built with \
            `domb build --pcr-key` and that key carries a signed policy for its own predicted \
            PCRs, and a launch of it unseals the secret (`domb boot --secret`, `domb unseal`). \
            The secret (1 to 128 bytes, from a file or - for standard input) reaches the TPM \
            encrypted. The output (mode 0600) holds the object as tpm2-tools writes it, and can \
            only be loaded by this TPM. See docs/secrets.md.
            """ + "\n\n" + ExitStatus.help(success: "the secret was sealed", refused: "an input was refused"))

    @Argument(help: "The secret: a file of 1 to 128 bytes, or - for standard input.") var secret: String
    @Option(name: .customLong("pcr-pubkey"), help: "The PCR-policy public key (PEM, or a certificate holding it).")
    var pcrPublicKey: String
    @Option(name: .customLong("policy-ref"), help: "Policy reference the build must sign for too (text, at most 64 bytes; default empty).")
    var policyRef: String = ""
    @OptionGroup var pin: PINOptions
    @Option(name: .shortAndLong, help: "The sealed file to write.") var output: String
    @OptionGroup var tpm: TPMOptions

    func validate() throws {
        guard policyRef.utf8.count <= PolicyDigest.maximumPolicyRefSize else {
            throw ValidationError("--policy-ref is at most \(PolicyDigest.maximumPolicyRefSize) bytes")
        }
    }

    func run() async throws {
        let inputs = [secret, pcrPublicKey] + [pin.file].compactMap { $0 }
        try OutputTarget.check(output, inputs: OutputTarget.identities(inputs))
        let secretBytes = try readSmallFile(secret, limit: SealedSecret.maximumSecretSize, what: "the secret")
        guard !secretBytes.isEmpty else { throw ValidationError("the secret \(secret) is empty") }
        let key = try VerificationKey(path: pcrPublicKey)
        let pinBytes = try pin.read(confirm: true)
        let connection = try tpm.open()
        let sealed = try SecretRelease.seal(
            secretBytes, policyKey: key, policyRef: Array(policyRef.utf8), pin: pinBytes, tpm: connection)
        try AtomicFile.write(sealed.fileBytes, to: output, inputs: inputs, mode: 0o600)
        print("sealed \(secretBytes.count) bytes to \(output)")
        print("  PCR-policy key: \(sealed.policyKeyFingerprint.hexString) (TPM name \(sealed.policyKeyName.hexString))")
        print("  policyRef:      \(describePolicyRef(sealed.policyRef))\(sealed.requiresPIN ? ", PIN required" : "")")
        print("  authPolicy:     \(sealed.authPolicy.hexString)")
        switch sealed.parent {
        case .storageRootKey(let name): print("  parent:         storage root key \(name.hexString) on \(connection.configuration)")
        }
    }
}
