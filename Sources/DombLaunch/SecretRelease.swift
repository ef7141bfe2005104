//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombCrypto
import DombFiles
import DombTPM
import Foundation

/// Unseals a sealed secret with a bundle's signed PCR policy. The TPM implementation runs
/// `PolicyPCR → VerifySignature → PolicyAuthorize [→ PolicyAuthValue] → Unseal`.
public protocol SecretUnsealing {
    /// Unseals every secret with `policy`, sharing what the secrets share (one storage root
    /// key, one check of the signed policy).
    /// - Parameter pin: the PIN, given to the secrets sealed with one.
    /// - Returns: one result per secret, in order; a failure says why in terms of keys,
    ///   PCRs and policy references.
    /// - Throws: what stops every secret (the TPM unreachable).
    func unseal(_ secrets: [SealedSecret], policy: SignedPCRPolicy, pin: [UInt8]?) throws -> [Result<[UInt8], any Error>]
}

extension SecretUnsealing {
    /// One secret (`domb unseal`).
    public func unseal(_ sealed: SealedSecret, policy: SignedPCRPolicy, pin: [UInt8]?) throws -> [UInt8] {
        guard let result = try unseal([sealed], policy: policy, pin: pin).first else {
            throw SecretReleaseError("the unsealer returned no result")
        }
        return try result.get()
    }
}

/// Why a secret was not released, before the TPM was asked (wrong key, no policy for the
/// reference or the TPM's banks, a PIN missing).
public struct SecretReleaseError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The unseal on a real TPM (docs/secrets.md, "Unsealing").
public struct TPMSecretUnsealer: SecretUnsealing {
    public let tpm: TPM

    public init(tpm: TPM) { self.tpm = tpm }

    public func unseal(_ secrets: [SealedSecret], policy: SignedPCRPolicy, pin: [UInt8]?) throws -> [Result<[UInt8], any Error>] {
        let banks = try tpm.activeBanks()
        let requests = secrets.map { sealed in
            Result { try SecretRelease.request(for: sealed, policy: policy, activeBanks: banks, pin: sealed.requiresPIN ? pin : nil) }
        }
        let valid = requests.compactMap { try? $0.get() }
        var unsealed = tpm.unsealAuthorized(valid).makeIterator()
        return requests.map { request in
            switch request {
            case .failure(let error): .failure(error)
            case .success: unsealed.next().map { $0.mapError { $0 as any Error } } ?? .failure(SecretReleaseError("the TPM returned no result"))
            }
        }
    }
}

/// Matches a sealed secret with a signed policy and builds the TPM request.
public enum SecretRelease {
    /// Bank preference when the policy and the TPM share several: SHA-256 first (the bank
    /// every TPM 2.0 has), then the longer digests, SHA-1 last.
    public static let bankPreference: [HashAlgorithm] = [.sha256, .sha384, .sha512, .sm3_256, .sha1]

    /// The request for `sealed` under `policy`, on a TPM whose active banks are `activeBanks`.
    ///
    /// Checks, before any TPM command: the object is bound to the key that signed this policy
    /// (fingerprints named otherwise), the policy has an entry for the object's `policyRef` in
    /// a bank the TPM has, the signature verifies with OpenSSL, and a PIN is given exactly
    /// when the object needs one.
    /// - Throws: ``SecretReleaseError``.
    public static func request(
        for sealed: SealedSecret, policy: SignedPCRPolicy, activeBanks: [HashAlgorithm], pin: [UInt8]?
    ) throws -> AuthorizedUnsealRequest {
        let hashing = OpenSSLHashing()
        guard sealed.policyKeyName == policy.keyName else {
            throw SecretReleaseError(
                "the secret is sealed to the PCR-policy key with fingerprint \(sealed.policyKeyFingerprint.hexString), but this bundle's PCR policy is signed by \(policy.keyFingerprint.hexString)")
        }
        try sealed.checkConsistency(hashing: hashing)
        let candidates = policy.policies.filter { $0.policyRef == sealed.policyRef }
        guard !candidates.isEmpty else {
            throw SecretReleaseError(
                "the bundle's PCR policy is signed for policyRef \(policy.policies.map { "\"\($0.policyRef.hexString)\"" }.joined(separator: ", ")), the secret needs \"\(sealed.policyRef.hexString)\"")
        }
        let ordered = bankPreference.filter { bank in activeBanks.contains(bank) }
        guard let chosen = ordered.lazy.compactMap({ bank in candidates.first { $0.bank == bank } }).first else {
            throw SecretReleaseError(
                "the PCR policy is signed for bank(s) \(candidates.map(\.bank.name).joined(separator: ", ")), the TPM has \(activeBanks.map(\.name).joined(separator: ", ")) active")
        }
        if sealed.requiresPIN && pin == nil { throw SecretReleaseError("the secret was sealed with a PIN and none was given") }
        if !sealed.requiresPIN && pin != nil { throw SecretReleaseError("the secret was sealed without a PIN, yet one was given") }

        let key = try VerificationKey(pem: Array(policy.publicKeyPEM.utf8), source: BundleLayout.signedPCRPolicy)
        guard key.isValidSignature(chosen.signature, for: chosen.signedMessage, digestName: "sha256") else {
            throw SecretReleaseError("the \(chosen.bank) policy's signature does not verify with the PCR-policy key")
        }
        let external = try ExternalSigningKey(try key.tpmPublicKey)
        let approved = try PolicyDigest(algorithm: SignedPCRPolicy.policyAlgorithm, bytes: chosen.policyDigest)
        let scheme: QuoteSignatureScheme
        let signature: TPMSignatureValue
        switch key.kind {
        case .ecP256, .ecP384:
            let size = key.kind == .ecP256 ? 32 : 48
            let (r, s) = try ECDSASignature.components(der: chosen.signature, size: size)
            scheme = .ecdsa
            signature = .ecdsa(r: r, s: s)
        case .rsa:
            scheme = .rsapss
            signature = .rsa(chosen.signature)
        case .ed25519:
            throw SecretReleaseError("a TPM cannot verify an Ed25519 PCR-policy key")
        }
        guard case .storageRootKey(let parentName) = sealed.parent else { throw SecretReleaseError("unknown parent") }
        return AuthorizedUnsealRequest(
            publicArea: sealed.publicArea, privateArea: sealed.privateArea, parentName: parentName,
            policyKey: external.tpmtPublic, policyKeyName: policy.keyName, selection: chosen.selection,
            pcrDigest: try PolicyDigest.pcrDigest(
                chosen.values, selection: chosen.selection, algorithm: SignedPCRPolicy.policyAlgorithm, hashing: hashing),
            approvedPolicy: chosen.policyDigest, policyRef: chosen.policyRef,
            approvalDigest: try approved.approvalDigest(
                policyRef: chosen.policyRef, keyNameAlgorithm: ExternalSigningKey.nameAlgorithm, hashing: hashing),
            signatureScheme: scheme, signature: signature, pin: pin)
    }

    /// Seals `secret` in `tpm` to `policyKey` and `policyRef` (`domb seal`): the object's only
    /// authorisation is `PolicyAuthorize(key, policyRef)` (then `PolicyAuthValue` with a PIN).
    ///
    /// The TPM loads the key first (`TPM2_LoadExternal`), so a key it cannot verify with is
    /// refused now rather than at boot, and its name for the key must equal domb's.
    public static func seal(
        _ secret: [UInt8], policyKey: VerificationKey, policyRef: [UInt8], pin: [UInt8]?, tpm: TPM
    ) throws -> SealedSecret {
        let hashing = OpenSSLHashing()
        let external = try ExternalSigningKey(try policyKey.tpmPublicKey)
        let keyName = try external.name(hashing: hashing)
        let tpmName = try tpm.checkPolicyKey(external.tpmtPublic)
        guard tpmName == keyName else {
            throw SecretReleaseError("the TPM names the PCR-policy key \(tpmName.hexString), domb \(keyName.hexString)")
        }
        let authPolicy = try SealedSecret.authPolicy(keyName: keyName, policyRef: policyRef, requiresPIN: pin != nil, hashing: hashing)
        let object = try tpm.seal(secret, authPolicy: authPolicy, pin: pin)
        return SealedSecret(
            parent: .storageRootKey(name: object.parentName), policyKeyName: keyName, policyKeyFingerprint: try policyKey.fingerprint,
            policyRef: policyRef, requiresPIN: pin != nil, authPolicy: authPolicy, publicArea: object.publicArea,
            privateArea: object.privateArea)
    }

    /// The bytes of `pcr-policy.json` in `bundle`, unverified: the TPM checks the policy's
    /// signature, and `domb unseal` needs nothing else from the bundle.
    public static func signedPolicy(inBundle bundle: String) throws -> [UInt8] {
        let reader = try TarReader(path: bundle, policy: BundleVerifier.readPolicy)
        while let member = try reader.next() {
            if member.path == BundleLayout.signedPCRPolicy { return try reader.readAll(limit: SignedPCRPolicy.maximumSize) }
        }
        throw ContextError(bundle, ParseError.invalid("the bundle has no \(BundleLayout.signedPCRPolicy): it was built without --pcr-key"))
    }

    /// Reads and parses a sealed file (at most ``SealedSecret/maximumFileSize`` bytes).
    public static func readSealed(_ path: String) throws -> SealedSecret {
        let bytes = try InputFile.read(path, limit: SealedSecret.maximumFileSize)
        return try ContextError.wrap(path) { try SealedSecret(fileBytes: bytes) }
    }
}
