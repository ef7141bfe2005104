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

/// EK reading, software MakeCredential and TPM ActivateCredential on a manufactured swtpm,
/// each direction cross-checked with tpm2-tools.
@Suite(.serialized) struct CredentialTests {
    /// A host: a manufactured swtpm with an AK at domb's default handle (0x81000100), away
    /// from the TCG's reserved EK handles (0x81010000–0x8101FFFF; 0x81010002 is the ECC P-256
    /// EK's).
    final class Host {
        let swtpm: Swtpm
        let tpm: TPM
        let ak: AttestationKeyInfo
        let akPublic: TPMPublicArea
        static let akHandle = TPM.defaultAttestationKeyHandle

        init(ak algorithm: AttestationKeyAlgorithm = .eccP256) throws {
            swtpm = try ProvisionedSwtpm.start()
            tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            ak = try tpm.createAttestationKey(algorithm: algorithm, hierarchy: .endorsement)
            akPublic = try TPMPublicArea(tpm2bPublic: try tpm.publicArea(persistent: Self.akHandle))
        }

        deinit {
            tpm.close()
            swtpm.stop()
        }
    }

    @Test func readsTheManufacturedEKsAndCertificates() throws {
        let host = try Host()
        let anchors = try TrustAnchors.load(path: try ProvisionedSwtpm.manufactured().caDirectory)
        for type in [EndorsementKeyType.rsa2048, .eccP384] {
            let ek = try host.tpm.readEndorsementKey(type)
            #expect(ek.source == .persistent(type.persistentHandle))
            let area = try TPMPublicArea(tpm2bPublic: ek.publicArea)
            #expect(area.endorsementKeyProblem == nil)
            let der = try EndorsementCertificate.trimmedDER(try #require(ek.certificate))
            let certificate = try X509Certificate(der: der)
            #expect(EndorsementCertificate.failures(certificate: certificate, endorsementKey: area, anchors: anchors) == [])
        }
        // The P-256 EK is not provisioned by swtpm: recreated from template L-2, no certificate.
        // Its reserved handle 0x81010002 is free beside an AK at domb's default handle (with
        // the AK there, this read refused it as "not an endorsement key").
        let p256 = try host.tpm.readEndorsementKey(.eccP256)
        #expect(p256.source == .template)
        #expect(p256.certificate == nil)
        let p256Area = try TPMPublicArea(tpm2bPublic: p256.publicArea)
        #expect(p256Area.endorsementKeyProblem == nil)
        // The template is deterministic: the same TPM yields the same key.
        #expect(try host.tpm.readEndorsementKey(.eccP256).publicArea == p256.publicArea)
        // The AK is what a verifier requires of one, the EK is not.
        #expect(host.akPublic.attestationKeyProblem == nil)
        #expect(p256Area.attestationKeyProblem != nil)
    }

    @Test func certificateChecksRefuseAForeignCAAndAnotherKey() throws {
        let host = try Host()
        let rsa = try host.tpm.readEndorsementKey(.rsa2048)
        let p384 = try host.tpm.readEndorsementKey(.eccP384)
        let certificate = try X509Certificate(der: try EndorsementCertificate.trimmedDER(try #require(rsa.certificate)))
        // An unrelated CA: a fresh TestPKI root.
        let pki = try TestPKI.shared()
        let foreign = try TrustAnchors.load(path: pki.caCertificate)
        let untrusted = EndorsementCertificate.failures(
            certificate: certificate, endorsementKey: try TPMPublicArea(tpm2bPublic: rsa.publicArea), anchors: foreign)
        #expect(untrusted.count == 1)
        #expect(untrusted.first?.contains("does not verify against the trusted manufacturer CAs") == true)
        // The right CA, but the certificate of the RSA EK presented with the P-384 EK.
        let anchors = try TrustAnchors.load(path: try ProvisionedSwtpm.manufactured().caDirectory)
        let swapped = EndorsementCertificate.failures(
            certificate: certificate, endorsementKey: try TPMPublicArea(tpm2bPublic: p384.publicArea), anchors: anchors)
        #expect(swapped.count == 1)
        #expect(swapped.first?.contains("certifies another public key") == true)
    }

    @Test(arguments: [EndorsementKeyType.rsa2048, .eccP256, .eccP384])
    func dombMakesAndDombActivates(ekType: EndorsementKeyType) throws {
        let host = try Host()
        let ek = try TPMPublicArea(tpm2bPublic: try host.tpm.readEndorsementKey(ekType).publicArea)
        let secret = try CredentialMaker.randomBytes(32)
        let name = try #require(host.akPublic.name(hashing: OpenSSLHashing()))
        #expect(name == host.ak.name)
        let made = try CredentialMaker.makeCredential(endorsementKey: ek, secret: secret, objectName: name)
        let recovered = try host.tpm.activateCredential(
            attestationKey: Host.akHandle, endorsementKey: ekType, credential: made.credential, encryptedSecret: made.encryptedSecret)
        #expect(recovered == secret)
    }

    @Test func aCredentialForAnotherNameIsRefusedByTheTPM() throws {
        let host = try Host()
        let ek = try TPMPublicArea(tpm2bPublic: try host.tpm.readEndorsementKey(.rsa2048).publicArea)
        var otherName = try #require(host.akPublic.name(hashing: OpenSSLHashing()))
        otherName[otherName.count - 1] ^= 0x01
        let made = try CredentialMaker.makeCredential(endorsementKey: ek, secret: Array("not for you".utf8), objectName: otherName)
        #expect {
            try host.tpm.activateCredential(
                attestationKey: Host.akHandle, endorsementKey: .rsa2048, credential: made.credential, encryptedSecret: made.encryptedSecret)
        } throws: { error in
            "\(error)".contains("TPM_RC_INTEGRITY")
        }
    }

    @Test func secretSizesAreChecked() throws {
        let host = try Host()
        let ek = try TPMPublicArea(tpm2bPublic: try host.tpm.readEndorsementKey(.rsa2048).publicArea)
        let name = try #require(host.akPublic.name(hashing: OpenSSLHashing()))
        #expect(throws: CryptoError.self) { try CredentialMaker.makeCredential(endorsementKey: ek, secret: [], objectName: name) }
        #expect(throws: CryptoError.self) {
            try CredentialMaker.makeCredential(endorsementKey: ek, secret: [UInt8](repeating: 1, count: 33), objectName: name)
        }
        // An AK is not an EK: it cannot protect a credential.
        #expect(throws: CryptoError.self) {
            try CredentialMaker.makeCredential(endorsementKey: host.akPublic, secret: [1], objectName: name)
        }
    }

    /// tpm2-tools' credential file: 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    static func toolsBlob(_ made: MadeCredential) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeBE(UInt32(0xBADC_C0DE))
        writer.writeBE(UInt32(1))
        writer.writeBytes(made.credential)
        writer.writeBE(UInt16(made.encryptedSecret.count))
        writer.writeBytes(made.encryptedSecret)
        return writer.bytes
    }

    @Test(arguments: [EndorsementKeyType.rsa2048, .eccP256])
    func tpm2ActivatecredentialRecoversADombCredential(ekType: EndorsementKeyType) throws {
        let host = try Host()
        let ekRead = try host.tpm.readEndorsementKey(ekType)
        let ek = try TPMPublicArea(tpm2bPublic: ekRead.publicArea)
        let secret = Array("a secret for tpm2-tools".utf8)
        let made = try CredentialMaker.makeCredential(
            endorsementKey: ek, secret: secret, objectName: try #require(host.akPublic.name(hashing: OpenSSLHashing())))
        let work = try TemporaryDirectory(prefix: "domb-credential")
        let blob = try work.write("blob", Self.toolsBlob(made))
        host.tpm.close()
        let env = ["TPM2TOOLS_TCTI": host.swtpm.tcti]
        // The EK as tpm2-tools would load it: persistent RSA, or the P-256 template (-G ecc).
        let ekContext: String
        if case .persistent(let handle) = ekRead.source {
            ekContext = "0x" + String(handle, radix: 16)
        } else {
            try Tools.run("tpm2_createek", ["-c", work.file("ek.ctx"), "-G", "ecc", "-u", work.file("ek.pub")], environment: env)
            // The key tpm2-tools made from its template is the key domb made from its own.
            #expect(try Array(Data(contentsOf: URL(fileURLWithPath: work.file("ek.pub")))) == ekRead.publicArea)
            ekContext = work.file("ek.ctx")
        }
        try Tools.run("tpm2_startauthsession", ["--policy-session", "-S", work.file("session.ctx")], environment: env)
        try Tools.run("tpm2_policysecret", ["-S", work.file("session.ctx"), "-c", "e"], environment: env)
        try Tools.run(
            "tpm2_activatecredential",
            [
                "-c", "0x" + String(Host.akHandle, radix: 16), "-C", ekContext, "-i", blob, "-o", work.file("secret.out"),
                "-P", "session:" + work.file("session.ctx"),
            ], environment: env)
        try Tools.run("tpm2_flushcontext", [work.file("session.ctx")], environment: env)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: work.file("secret.out")))) == secret)
    }

    @Test(arguments: [EndorsementKeyType.rsa2048, .eccP384])
    func dombActivatesATpm2MakecredentialBlob(ekType: EndorsementKeyType) throws {
        let host = try Host()
        let ek = try host.tpm.readEndorsementKey(ekType)
        let work = try TemporaryDirectory(prefix: "domb-credential")
        let ekFile = try work.write("ek.pub", ek.publicArea)
        let secret = Array("made by tpm2_makecredential".utf8)
        let secretFile = try work.write("secret", secret)
        let name = try #require(host.akPublic.name(hashing: OpenSSLHashing()))
        // -T none: no TPM; the tool does the same software MakeCredential.
        try Tools.run(
            "tpm2_makecredential",
            ["-T", "none", "-u", ekFile, "-s", secretFile, "-n", name.hexString, "-o", work.file("blob")])
        let blob = try Array(Data(contentsOf: URL(fileURLWithPath: work.file("blob"))))
        var reader = ByteReader(blob)
        #expect(try reader.readBE(UInt32.self) == 0xBADC_C0DE)
        #expect(try reader.readBE(UInt32.self) == 1)
        let credential = try reader.readLengthPrefixed(UInt16.self, endianness: .big)
        let encrypted = try reader.readLengthPrefixed(UInt16.self, endianness: .big)
        var credentialWithSize = ByteWriter()
        credentialWithSize.writeBE(UInt16(credential.count))
        credentialWithSize.writeBytes(credential)
        let recovered = try host.tpm.activateCredential(
            attestationKey: Host.akHandle, endorsementKey: ekType, credential: credentialWithSize.bytes, encryptedSecret: Array(encrypted))
        #expect(recovered == secret)
    }
}
