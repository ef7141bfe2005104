//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2
import DombCore

extension TPM {
    /// `TPM2_ActivateCredential` (TPM 2.0 Part 3, §12.5): recovers the secret a verifier
    /// wrapped for `attestationKey`'s name with the EK's public key (MakeCredential). The TPM
    /// releases it only if the named object is loaded in this TPM and the EK can decrypt the
    /// seed, which is what proves the AK and the EK share a TPM.
    ///
    /// The EK is authorised as its template requires: with a policy session satisfying
    /// `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)` (policy A of the low-range templates), or with
    /// its (empty) password when the key has `userWithAuth` (swtpm's P-384 EK).
    ///
    /// - Parameters:
    ///   - credential: the `TPM2B_ID_OBJECT` (`u16` size ‖ integrity HMAC ‖ encrypted identity).
    ///   - encryptedSecret: the `TPM2B_ENCRYPTED_SECRET` contents (the seed under the EK).
    /// - Returns: the credential (the verifier's secret, at most one digest long).
    public func activateCredential(
        attestationKey handle: UInt32, endorsementKey type: EndorsementKeyType, endorsementHandle: UInt32? = nil,
        credential: [UInt8], encryptedSecret: [UInt8]
    ) throws(TPMError) -> [UInt8] {
        var idObject = TPM2B_ID_OBJECT()
        guard credential.count >= 2, credential.count - 2 <= MemoryLayout.size(ofValue: idObject.credential) else {
            throw .usage("ActivateCredential", "the credential is \(credential.count) bytes, not a TPM2B_ID_OBJECT")
        }
        let declared = Int(credential[0]) << 8 | Int(credential[1])
        guard declared == credential.count - 2 else {
            throw .usage("ActivateCredential", "the credential's size field says \(declared) bytes, \(credential.count - 2) follow")
        }
        idObject.size = UInt16(declared)
        withUnsafeMutableBytes(of: &idObject.credential) { $0.copyBytes(from: credential.dropFirst(2)) }
        var secret = TPM2B_ENCRYPTED_SECRET()
        guard !encryptedSecret.isEmpty, encryptedSecret.count <= MemoryLayout.size(ofValue: secret.secret) else {
            throw .usage("ActivateCredential", "the encrypted secret is \(encryptedSecret.count) bytes")
        }
        secret.size = UInt16(encryptedSecret.count)
        withUnsafeMutableBytes(of: &secret.secret) { $0.copyBytes(from: encryptedSecret) }

        let ak = try objectHandle(persistent: handle)
        let ek = try loadEndorsementKey(type, handle: endorsementHandle ?? type.persistentHandle)
        defer { ek.release(self) }

        var session: ESYS_TR = UInt32(ESYS_TR_PASSWORD)
        var policySession: ESYS_TR?
        if ek.attributes & UInt32(TPMA_OBJECT_USERWITHAUTH) == 0 {
            session = try endorsementPolicySession(hash: ek.nameAlgorithm)
            policySession = session
        }
        defer {
            if let policySession { try? command("Esys_FlushContext(policy session)") { esys in Esys_FlushContext(esys, policySession) } }
        }
        var certInfo: UnsafeMutablePointer<TPM2B_DIGEST>?
        do {
            try command("Esys_ActivateCredential(AK 0x\(String(handle, radix: 16)), \(type) EK)") { esys in
                Esys_ActivateCredential(
                    esys, ak, ek.object, UInt32(ESYS_TR_PASSWORD), session, UInt32(ESYS_TR_NONE),
                    &idObject, &secret, &certInfo)
            }
        } catch {
            // TPM_RC_INTEGRITY (0x09F) with a parameter number: the HMAC did not match — the
            // credential was made for another object's name, or for another EK.
            if error.baseCode & 0x0BF == 0x09F {
                throw .usage(
                    "ActivateCredential",
                    "the TPM refused the credential (TPM_RC_INTEGRITY): it was not made for this AK's name with this TPM's EK")
            }
            throw error
        }
        defer { Esys_Free(certInfo) }
        guard let certInfo else { throw .usage("Esys_ActivateCredential", "TPM returned no credential") }
        return certInfo.pointee.bytes
    }

    /// A policy session that satisfies `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)` with the
    /// endorsement hierarchy's (empty) password, as `tpm2_policysecret -c e` does.
    func endorsementPolicySession(hash: UInt16) throws(TPMError) -> ESYS_TR {
        var symmetric = TPMT_SYM_DEF()
        symmetric.algorithm = UInt16(TPM2_ALG_NULL)
        var session: ESYS_TR = UInt32(ESYS_TR_NONE)
        try command("Esys_StartAuthSession(policy)") { esys in
            Esys_StartAuthSession(
                esys, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                UInt32(ESYS_TR_NONE), nil, UInt8(TPM2_SE_POLICY), &symmetric, hash, &session)
        }
        var timeout: UnsafeMutablePointer<TPM2B_TIMEOUT>?
        var ticket: UnsafeMutablePointer<TPMT_TK_AUTH>?
        do {
            try command("Esys_PolicySecret(TPM_RH_ENDORSEMENT)") { esys in
                Esys_PolicySecret(
                    esys, UInt32(ESYS_TR_RH_ENDORSEMENT), session, UInt32(ESYS_TR_PASSWORD), UInt32(ESYS_TR_NONE),
                    UInt32(ESYS_TR_NONE), nil, nil, nil, 0, &timeout, &ticket)
            }
        } catch {
            try? command("Esys_FlushContext(policy session)") { esys in Esys_FlushContext(esys, session) }
            throw error
        }
        Esys_Free(timeout)
        Esys_Free(ticket)
        return session
    }

    /// `TPM2_PCR_Reset` of a resettable PCR (16 and 23 at locality 0; the debug PCR 16 is
    /// what Keylime binds the agent's key to).
    public func resetPCR(_ pcr: Int) throws(TPMError) {
        guard pcr == 16 || pcr == 23 else {
            throw .usage("PCR_Reset", "PCR \(pcr) is not resettable from locality 0 (16 and 23 are)")
        }
        try command("Esys_PCR_Reset(PCR \(pcr))") { esys in
            Esys_PCR_Reset(esys, UInt32(ESYS_TR_PCR0) + UInt32(pcr), UInt32(ESYS_TR_PASSWORD), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE))
        }
    }
}
