//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto

/// What `domb build --pcr-key` signs (docs/secrets.md, "Building").
public struct PCRPolicySigningOptions: Sendable {
    /// The PCR-policy key: a PEM file, a PKCS#11 object or a TPM key.
    public var key: SigningKey
    /// The banks to sign a policy for; nil signs one for every bank of the bundle.
    public var banks: [HashAlgorithm]?
    /// The policy references to sign for; `[[]]` (the empty reference) by default.
    public var policyRefs: [[UInt8]]

    public init(key: SigningKey, banks: [HashAlgorithm]? = nil, policyRefs: [[UInt8]] = [[]]) {
        self.key = key
        self.banks = banks
        self.policyRefs = policyRefs
    }
}

/// Signs and checks the PCR policy of a bundle (DESIGN decision 12): the `TPM2_PolicyPCR`
/// digest of the launch's predicted PCRs, signed for `TPM2_PolicyAuthorize`.
public enum PCRPolicySigner {
    /// The signed policy for `predicted` (the manifest's predicted PCRs: every PCR the launch
    /// extends, in each bank).
    ///
    /// Each signature is checked with OpenSSL right after it is made, so a token that signs
    /// wrongly stops the build rather than the boot.
    /// - Throws: an error naming a bank without predicted values, a key a TPM cannot verify
    ///   with (Ed25519), or a signature that does not verify.
    public static func sign(predicted: PCRValues, options: PCRPolicySigningOptions) throws -> SignedPCRPolicy {
        let hashing = OpenSSLHashing()
        let verification = try options.key.verificationKey
        let external = try ExternalSigningKey(try verification.tpmPublicKey)
        let banks = options.banks ?? predicted.algorithms
        guard !banks.isEmpty else { throw ParseError.invalid("the bundle predicts no PCR values to sign a policy for") }
        guard !options.policyRefs.isEmpty else { throw ParseError.invalid("no policy reference to sign for") }
        var policies: [SignedPCRPolicy.Policy] = []
        for bank in banks {
            let pcrs = predicted.pcrs(in: bank)
            guard !pcrs.isEmpty else {
                throw ParseError.invalid(
                    "the bundle predicts no \(bank) PCR values (its banks: \(predicted.algorithms.map(\.name).joined(separator: ", ")))")
            }
            var values: [Int: [UInt8]] = [:]
            for pcr in pcrs { values[pcr] = predicted[bank, pcr] }
            for policyRef in options.policyRefs {
                guard policyRef.count <= PolicyDigest.maximumPolicyRefSize else {
                    throw ParseError.invalid("a policy reference is at most \(PolicyDigest.maximumPolicyRefSize) bytes")
                }
                var policy = SignedPCRPolicy.Policy(
                    bank: bank, pcrs: pcrs, pcrValues: values, policyRef: policyRef, policyDigest: [], signature: [])
                policy.policyDigest = try policy.computedPolicyDigest(hashing: hashing)
                policy.signature = try options.key.sign(policy.signedMessage, digestName: "sha256")
                guard verification.isValidSignature(policy.signature, for: policy.signedMessage, digestName: "sha256") else {
                    throw CryptoError("sign the PCR policy", "\(options.key.source) made a signature its own public key does not verify")
                }
                policies.append(policy)
            }
        }
        return SignedPCRPolicy(
            publicKeyPEM: String(decoding: verification.pem, as: UTF8.self), keyName: try external.name(hashing: hashing),
            keyFingerprint: try verification.fingerprint, policies: policies)
    }

    /// Everything wrong with a signed policy: a key that is not the one named, a digest that
    /// does not follow from its PCR values, a signature that does not verify, and — given the
    /// manifest — PCR values other than the ones predicted. Empty when it is sound.
    public static func failures(of policy: SignedPCRPolicy, manifest: BundleManifest?) -> [String] {
        let hashing = OpenSSLHashing()
        let key: VerificationKey
        do {
            key = try VerificationKey(pem: Array(policy.publicKeyPEM.utf8), source: BundleLayout.signedPCRPolicy)
            guard try ExternalSigningKey(try key.tpmPublicKey).name(hashing: hashing) == policy.keyName else {
                return ["keyName is not the TPM name of publicKey"]
            }
            guard try key.fingerprint == policy.keyFingerprint else { return ["keyFingerprint is not the SHA-256 of publicKey"] }
        } catch {
            return ["publicKey: \(error)"]
        }
        var failures: [String] = []
        for item in policy.policies {
            let label = "the \(item.bank) policy\(item.policyRef.isEmpty ? "" : " for policyRef \(item.policyRef.hexString)")"
            if let manifest {
                if !manifest.banks.contains(item.bank) { failures.append("\(label): the bundle has no \(item.bank) bank") }
                let predicted = manifest.predictedPCRs.pcrs(in: item.bank)
                if item.pcrs != predicted {
                    failures.append("\(label) covers PCRs \(item.pcrs), the launch extends \(predicted)")
                }
                for pcr in item.pcrs where manifest.predictedPCRs[item.bank, pcr] != item.pcrValues[pcr] {
                    failures.append("\(label): PCR \(pcr) is not the predicted value")
                }
            }
            if (try? item.computedPolicyDigest(hashing: hashing)) != item.policyDigest {
                failures.append("\(label): policyDigest is not TPM2_PolicyPCR of its PCR values")
            }
            if !key.isValidSignature(item.signature, for: item.signedMessage, digestName: "sha256") {
                failures.append("\(label): the signature does not verify with publicKey")
            }
        }
        return failures
    }
}
