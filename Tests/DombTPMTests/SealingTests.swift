//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTPM
import DombTestSupport
import Foundation
import Testing

/// Sealing to a PCR-policy key and unsealing with PolicyPCR → VerifySignature →
/// PolicyAuthorize → Unseal on a real swtpm; the software policy digests against
/// tpm2-tools' trial sessions.
@Suite struct SealingTests {
    let hashing = OpenSSLHashing()

    /// A signed PCR policy for `values` as `domb build` makes one.
    func signedPolicy(
        key: SigningKey, selection: PCRSelection, values: PCRValues, policyRef: [UInt8] = []
    ) throws -> (approved: PolicyDigest, signature: [UInt8]) {
        var approved = try PolicyDigest()
        let pcrDigest = try PolicyDigest.pcrDigest(values, selection: selection, algorithm: .sha256, hashing: hashing)
        try approved.extendPolicyPCR(selection: selection, pcrDigest: pcrDigest, hashing: hashing)
        return (approved, try key.sign(approved.approvalMessage(policyRef: policyRef), digestName: "sha256"))
    }

    func request(
        sealed: SealedObject, key: VerificationKey, selection: PCRSelection, values: PCRValues, approved: PolicyDigest,
        signature: [UInt8], policyRef: [UInt8] = [], pin: [UInt8]? = nil
    ) throws -> AuthorizedUnsealRequest {
        let external = try ExternalSigningKey(try key.tpmPublicKey)
        let (r, s) = try ECDSASignature.components(der: signature, size: 32)
        return AuthorizedUnsealRequest(
            publicArea: sealed.publicArea, privateArea: sealed.privateArea, parentName: sealed.parentName,
            policyKey: external.tpmtPublic, policyKeyName: try external.name(hashing: hashing), selection: selection,
            pcrDigest: try PolicyDigest.pcrDigest(values, selection: selection, algorithm: .sha256, hashing: hashing),
            approvedPolicy: approved.bytes, policyRef: policyRef,
            approvalDigest: try approved.approvalDigest(policyRef: policyRef, keyNameAlgorithm: .sha256, hashing: hashing),
            signatureScheme: .ecdsa, signature: .ecdsa(r: r, s: s), pin: pin)
    }

    @Test func sealOnceUnsealForEverySignedPolicyAndNothingElse() throws {
        let pki = try TestPKI.shared()
        let key = try SigningKey(path: pki.key("p256"))
        let otherKey = try SigningKey(path: pki.key("p256b"))
        let verification = try key.verificationKey
        let external = try ExternalSigningKey(try verification.tpmPublicKey)
        let keyName = try external.name(hashing: hashing)
        let secret = Array("disk key of the storage domain".utf8)
        let selection = PCRSelection([.init(.sha256, [12, 13])])
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            #expect(try tpm.checkPolicyKey(external.tpmtPublic) == keyName, "the TPM names the key as domb does")
            let authPolicy = try SealedSecret.authPolicy(keyName: keyName, policyRef: [], requiresPIN: false, hashing: hashing)
            let sealed = try tpm.seal(secret, authPolicy: authPolicy, pin: nil)
            #expect(try SealedSecret.authPolicy(ofPublicArea: sealed.publicArea) == authPolicy)

            // Launch A.
            try tpm.extend(pcr: 13, digests: try MultiHasher.digest(Array("release A".utf8), algorithms: try tpm.activeBanks()))
            let valuesA = try tpm.readPCRs([12, 13], banks: [.sha256])
            let policyA = try signedPolicy(key: key, selection: selection, values: valuesA)
            let unsealedA = try tpm.unsealAuthorized(
                try request(sealed: sealed, key: verification, selection: selection, values: valuesA, approved: policyA.approved,
                    signature: policyA.signature))
            #expect(unsealedA == secret)

            // A later release (PCR 13 differs), signed by the same key: same sealed object.
            try tpm.extend(pcr: 13, digests: try MultiHasher.digest(Array("release B".utf8), algorithms: try tpm.activeBanks()))
            let valuesB = try tpm.readPCRs([12, 13], banks: [.sha256])
            #expect(valuesB[.sha256, 13] != valuesA[.sha256, 13])
            let policyB = try signedPolicy(key: key, selection: selection, values: valuesB)
            #expect(
                try tpm.unsealAuthorized(
                    try request(sealed: sealed, key: verification, selection: selection, values: valuesB,
                        approved: policyB.approved, signature: policyB.signature)) == secret)

            // Release A's policy no longer matches the PCRs: refused at PolicyPCR.
            let stale = #expect(throws: UnsealFailure.self) {
                _ = try tpm.unsealAuthorized(
                    try request(sealed: sealed, key: verification, selection: selection, values: valuesA,
                        approved: policyA.approved, signature: policyA.signature))
            }
            #expect(stale?.step.hasPrefix("TPM2_PolicyPCR") == true, "\(String(describing: stale))")
            #expect(stale?.description.contains("do not hold the values the signed policy approves") == true)

            // The right PCRs, signed by another key, presented as the sealing key's: the TPM
            // refuses the signature.
            let forged = try signedPolicy(key: otherKey, selection: selection, values: valuesB)
            let badSignature = #expect(throws: UnsealFailure.self) {
                _ = try tpm.unsealAuthorized(
                    try request(sealed: sealed, key: verification, selection: selection, values: valuesB,
                        approved: forged.approved, signature: forged.signature))
            }
            #expect(badSignature?.step == "TPM2_VerifySignature", "\(String(describing: badSignature))")

            // Another key's own valid approval does not open an object sealed to the first key.
            let otherVerification = try otherKey.verificationKey
            let wrongKey = #expect(throws: UnsealFailure.self) {
                var other = try request(
                    sealed: sealed, key: otherVerification, selection: selection, values: valuesB, approved: forged.approved,
                    signature: forged.signature)
                other.policyKeyName = try ExternalSigningKey(try otherVerification.tpmPublicKey).name(hashing: hashing)
                _ = try tpm.unsealAuthorized(other)
            }
            #expect(wrongKey?.step == "TPM2_Unseal", "\(String(describing: wrongKey))")
            #expect(wrongKey?.reason.contains("sealed to another key") == true, "\(String(describing: wrongKey))")
        }
    }

    /// Several objects in one call share the storage root key and one check of the signed
    /// policy; each result stands alone (a bad object does not stop the others).
    @Test func aBatchSharesTheStorageRootKeyAndTheTicket() throws {
        let pki = try TestPKI.shared()
        let key = try SigningKey(path: pki.key("p256"))
        let verification = try key.verificationKey
        let keyName = try ExternalSigningKey(try verification.tpmPublicKey).name(hashing: hashing)
        let selection = PCRSelection([.init(.sha256, [12, 13])])
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let authPolicy = try SealedSecret.authPolicy(keyName: keyName, policyRef: [], requiresPIN: false, hashing: hashing)
            let first = try tpm.seal([1], authPolicy: authPolicy, pin: nil)
            let second = try tpm.seal([2, 2], authPolicy: authPolicy, pin: nil)
            let values = try tpm.readPCRs([12, 13], banks: [.sha256])
            let policy = try signedPolicy(key: key, selection: selection, values: values)
            let requests = try [first, second].map { sealed in
                try request(sealed: sealed, key: verification, selection: selection, values: values, approved: policy.approved,
                    signature: policy.signature)
            }
            var broken = requests[0]
            broken.privateArea = requests[1].privateArea  // another object's private part: integrity fails
            let before = tpm.commandCount
            let results = tpm.unsealAuthorized([requests[0], broken, requests[1]])
            let commands = tpm.commandCount - before
            #expect(try results[0].get() == [1])
            #expect(try results[2].get() == [2, 2])
            guard case .failure(let failure) = results[1] else {
                Issue.record("a mismatched object unsealed")
                return
            }
            #expect(failure.step == "TPM2_Load (sealed object)", "\(failure)")
            // CreatePrimary; LoadExternal, VerifySignature, flush (once); per object Load,
            // StartAuthSession, PolicyPCR, PolicyAuthorize, Unseal and two flushes (7, the
            // broken one 1: its Load fails); the final flush of the storage root key.
            #expect(commands == 1 + 3 + 7 + 1 + 7 + 1, "\(commands) TPM commands")
        }
    }

    @Test func pinIsRequiredAndPolicyRefIsBound() throws {
        let pki = try TestPKI.shared()
        let key = try SigningKey(path: pki.key("p256"))
        let verification = try key.verificationKey
        let keyName = try ExternalSigningKey(try verification.tpmPublicKey).name(hashing: hashing)
        let selection = PCRSelection([.init(.sha256, [12, 13])])
        let policyRef = Array("storage".utf8)
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let authPolicy = try SealedSecret.authPolicy(keyName: keyName, policyRef: policyRef, requiresPIN: true, hashing: hashing)
            let sealed = try tpm.seal([1, 2, 3, 4], authPolicy: authPolicy, pin: Array("1234".utf8))
            let values = try tpm.readPCRs([12, 13], banks: [.sha256])
            let policy = try signedPolicy(key: key, selection: selection, values: values, policyRef: policyRef)
            let good = try request(
                sealed: sealed, key: verification, selection: selection, values: values, approved: policy.approved,
                signature: policy.signature, policyRef: policyRef, pin: Array("1234".utf8))
            #expect(try tpm.unsealAuthorized(good) == [1, 2, 3, 4])

            var wrongPIN = good
            wrongPIN.pin = Array("4321".utf8)
            let badPIN = #expect(throws: UnsealFailure.self) { _ = try tpm.unsealAuthorized(wrongPIN) }
            #expect(badPIN?.reason.contains("wrong PIN") == true, "\(String(describing: badPIN))")

            var noPIN = good
            noPIN.pin = nil
            #expect(throws: UnsealFailure.self) { _ = try tpm.unsealAuthorized(noPIN) }

            // A policy signed for the empty reference does not open an object bound to "storage".
            let unreferenced = try signedPolicy(key: key, selection: selection, values: values)
            let wrongRef = #expect(throws: UnsealFailure.self) {
                _ = try tpm.unsealAuthorized(
                    try request(sealed: sealed, key: verification, selection: selection, values: values,
                        approved: unreferenced.approved, signature: unreferenced.signature, pin: Array("1234".utf8)))
            }
            #expect(wrongRef?.step == "TPM2_Unseal", "\(String(describing: wrongRef))")
        }
    }

    @Test func sealRefusesOversizedSecretsAndAnotherTPMIsNamed() throws {
        let pki = try TestPKI.shared()
        let verification = try SigningKey(path: pki.key("p256")).verificationKey
        let keyName = try ExternalSigningKey(try verification.tpmPublicKey).name(hashing: hashing)
        let authPolicy = try SealedSecret.authPolicy(keyName: keyName, policyRef: [], requiresPIN: false, hashing: hashing)
        let sealed = try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let tooLong = #expect(throws: TPMError.self) { _ = try tpm.seal([UInt8](repeating: 7, count: 129), authPolicy: authPolicy, pin: nil) }
            #expect(tooLong?.message.contains("1 to 128") == true)
            return try tpm.seal([9], authPolicy: authPolicy, pin: nil)
        }
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let selection = PCRSelection([.init(.sha256, [12, 13])])
            let values = try tpm.readPCRs([12, 13], banks: [.sha256])
            let key = try SigningKey(path: pki.key("p256"))
            let policy = try signedPolicy(key: key, selection: selection, values: values)
            let other = #expect(throws: UnsealFailure.self) {
                _ = try tpm.unsealAuthorized(
                    try request(sealed: sealed, key: verification, selection: selection, values: values, approved: policy.approved,
                        signature: policy.signature))
            }
            #expect(other?.step == "storage root key", "\(String(describing: other))")
            #expect(other?.reason.contains("sealed on another TPM") == true)
        }
    }

    /// The software digests equal what tpm2-tools' trial sessions compute: PolicyPCR over
    /// the current PCRs, PolicyAuthorize for the key tpm2_loadexternal loads, the key's name.
    @Test func policyDigestsMatchTpm2ToolsTrialSessions() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let verification = try SigningKey(path: pki.key("p256")).verificationKey
        let external = try ExternalSigningKey(try verification.tpmPublicKey)
        let keyName = try external.name(hashing: hashing)
        let policyRef = Array("domb".utf8)
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            try tpm.extend(pcr: 12, digests: try MultiHasher.digest([1], algorithms: try tpm.activeBanks()))
            let values = try tpm.readPCRs([12, 13], banks: [.sha1, .sha256])
            tpm.close()
            let env = ["TPM2TOOLS_TCTI": swtpm.tcti, "TSS2_LOG": "all+none"]
            func tool(_ name: String, _ arguments: [String]) throws {
                try Tools.run(name, arguments, environment: env)
            }
            for bank in [HashAlgorithm.sha1, .sha256] {
                let selection = PCRSelection([.init(bank, [12, 13])])
                var ours = try PolicyDigest()
                try ours.extendPolicyPCR(
                    selection: selection,
                    pcrDigest: try PolicyDigest.pcrDigest(values, selection: selection, algorithm: .sha256, hashing: hashing),
                    hashing: hashing)
                let session = directory.file("trial-\(bank.name).ctx")
                let output = directory.file("policypcr-\(bank.name).bin")
                try tool("tpm2_startauthsession", ["-S", session])
                try tool("tpm2_policypcr", ["-S", session, "-l", "\(bank.name):12,13", "-L", output])
                try tool("tpm2_flushcontext", [session])
                #expect(Array(try Data(contentsOf: URL(fileURLWithPath: output))) == ours.bytes, "PolicyPCR \(bank)")
            }
            let pem = try directory.write("key.pem", verification.pem)
            let name = directory.file("key.name")
            try tool("tpm2_loadexternal", ["-C", "o", "-G", "ecc", "-u", pem, "-c", directory.file("key.ctx"), "-n", name])
            try tool("tpm2_flushcontext", ["-t"])
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: name))) == keyName, "tpm2_loadexternal names the key as domb does")
            let ref = try directory.write("ref.bin", policyRef)
            let session = directory.file("trial-authorize.ctx")
            let output = directory.file("authorize.bin")
            try tool("tpm2_startauthsession", ["-S", session])
            try tool("tpm2_policyauthorize", ["-S", session, "-n", name, "-q", ref, "-L", output])
            try tool("tpm2_policyauthvalue", ["-S", session, "-L", directory.file("authvalue.bin")])
            try tool("tpm2_flushcontext", [session])
            #expect(
                Array(try Data(contentsOf: URL(fileURLWithPath: output)))
                    == (try SealedSecret.authPolicy(keyName: keyName, policyRef: policyRef, requiresPIN: false, hashing: hashing)))
            #expect(
                Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("authvalue.bin"))))
                    == (try SealedSecret.authPolicy(keyName: keyName, policyRef: policyRef, requiresPIN: true, hashing: hashing)))
        }
    }
}
