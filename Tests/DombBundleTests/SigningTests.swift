//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Foundation
import Testing

@Suite struct SigningTests {
    let message = Array(#"{"generation":1,"note":"signed by domb tests"}"#.utf8)

    @Test(arguments: TestPKI.signerNames)
    func rawSignatureVerifiesWithOpenSSL(_ name: String) throws {
        let pki = try TestPKI.shared()
        let key = try SigningKey(path: pki.key(name))
        let signature = try key.sign(message)
        let directory = try TemporaryDirectory()
        let content = try directory.write("manifest.json", message)
        let signatureFile = try directory.write("manifest.rawsig", signature)
        let publicKey = try directory.write("pub.pem", key.publicKeyPEM)
        // The exact command the README documents for this key type.
        let command = key.kind.opensslVerifyCommand(publicKey: publicKey, signature: signatureFile, content: content)
        let result = try Tools.run("bash", ["-c", command], check: false)
        #expect(result.status == 0, "\(command): \(result.stdoutText) \(result.stderrText)")
        // Ours agrees, and refuses a changed message or another key.
        let verifier = try VerificationKey(path: pki.publicKey(name))
        #expect(verifier.isValidSignature(signature, for: message))
        var changed = message
        changed[0] ^= 1
        #expect(!verifier.isValidSignature(signature, for: changed))
        let other = try VerificationKey(path: pki.publicKey(name == "p256" ? "p256b" : "p256"))
        #expect(!other.isValidSignature(signature, for: message))
        // A tampered signature is invalid, not a crash.
        var badSignature = signature
        badSignature[badSignature.count / 2] ^= 0x40
        #expect(!verifier.isValidSignature(badSignature, for: message))
        #expect(!verifier.isValidSignature([], for: message))
    }

    @Test func keyKindsAreRecognised() throws {
        let pki = try TestPKI.shared()
        #expect(try SigningKey(path: pki.key("p256")).kind == .ecP256)
        #expect(try SigningKey(path: pki.key("p384")).kind == .ecP384)
        #expect(try SigningKey(path: pki.key("rsa3072")).kind == .rsa(bits: 3072))
        #expect(try SigningKey(path: pki.key("ed25519")).kind == .ed25519)
    }

    @Test func weakUnsupportedAndEncryptedKeysAreRefused() throws {
        let pki = try TestPKI.shared()
        let rsa = #expect(throws: CryptoError.self) { try SigningKey(path: pki.key("rsa2048")) }
        #expect(rsa?.message.contains("at least 3072") == true)
        let curve = #expect(throws: CryptoError.self) { try SigningKey(path: pki.key("p521")) }
        #expect(curve?.message.contains("secp521r1") == true)
        let directory = try TemporaryDirectory()
        let encrypted = directory.file("enc.key")
        try Tools.run(
            "openssl", ["genpkey", "-algorithm", "ed25519", "-aes256", "-pass", "pass:secret", "-out", encrypted])
        #expect(throws: CryptoError.self) { try SigningKey(path: encrypted) }
        let garbage = try directory.write("garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        #expect(throws: CryptoError.self) { try SigningKey(path: garbage) }
        #expect(throws: CryptoError.self) { try SigningKey(path: directory.file("missing.key")) }
    }

    @Test(arguments: ["p256", "p384", "rsa3072"])
    func cmsSignatureVerifiesWithOpenSSLAndDomb(_ name: String) throws {
        let pki = try TestPKI.shared()
        let key = try SigningKey(path: pki.key(name))
        let certificate = try #require(try X509Certificate.load(path: pki.certificate(name)).first)
        let signature = try CMSSignature.sign(message, key: key, certificate: certificate, signingTime: 1_700_000_000)
        let directory = try TemporaryDirectory()
        let content = try directory.write("manifest.json", message)
        let signatureFile = try directory.write("manifest.sig", signature)
        let result = try Tools.run(
            "openssl",
            [
                "cms", "-verify", "-binary", "-inform", "DER", "-in", signatureFile, "-content", content, "-CAfile",
                pki.caCertificate, "-purpose", "any", "-out", "/dev/null",
            ], check: false)
        #expect(result.status == 0, "\(result.stderrText)")
        // The signingTime is the one given (reproducible builds).
        let printed = try Tools.run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", signatureFile])
        #expect(printed.stdoutText.contains("Nov 14 22:13:20 2023 GMT"))
        let anchors = try TrustAnchors.load(path: pki.trustDirectory)
        let check = CMSSignature.verify(signature, content: message, trust: .anchors(anchors))
        #expect(check.isValid, "\(check)")
        #expect(check.signer?.contains("domb test signer \(name)") == true)
        let pinned = CMSSignature.verify(signature, content: message, trust: .pinned(certificate))
        #expect(pinned.isValid, "\(pinned)")
    }

    @Test func cmsRefusalsNameTheReason() throws {
        let pki = try TestPKI.shared()
        let anchors = try TrustAnchors.load(path: pki.caCertificate)
        func sign(_ name: String) throws -> [UInt8] {
            let certificate = try #require(try X509Certificate.load(path: pki.certificate(name)).first)
            return try CMSSignature.sign(message, key: try SigningKey(path: pki.key(name)), certificate: certificate)
        }
        // Untrusted issuer.
        let untrusted = CMSSignature.verify(try sign("untrusted"), content: message, trust: .anchors(anchors))
        #expect(untrusted.signatureFailures.isEmpty)
        #expect(untrusted.trustFailures.contains { $0.contains("unable to get local issuer certificate") }, "\(untrusted)")
        // Expired signer.
        let expired = CMSSignature.verify(try sign("expired"), content: message, trust: .anchors(anchors))
        #expect(expired.trustFailures.contains { $0.contains("has expired") }, "\(expired)")
        // A valid signer checked at a time after its notAfter (365 days) has expired too.
        let later = Int64(Date().timeIntervalSince1970) + 400 * 86_400
        let future = CMSSignature.verify(try sign("p256"), content: message, trust: .anchors(anchors), time: later)
        #expect(future.trustFailures.contains { $0.contains("has expired") }, "\(future)")
        // Wrong purpose.
        let server = CMSSignature.verify(try sign("tlsserver"), content: message, trust: .anchors(anchors))
        #expect(server.trustFailures.contains { $0.contains("codeSigning") }, "\(server)")
        // Tampered content.
        var changed = message
        changed[3] ^= 0x20
        let tampered = CMSSignature.verify(try sign("p256"), content: changed, trust: .anchors(anchors))
        #expect(tampered.signatureFailures.contains { $0.contains("does not verify") }, "\(tampered)")
        // Pinned to another certificate.
        let other = try #require(try X509Certificate.load(path: pki.certificate("p256b")).first)
        let wrongPin = CMSSignature.verify(try sign("p256"), content: message, trust: .pinned(other))
        #expect(wrongPin.trustFailures.contains { $0.contains("not the pinned certificate") }, "\(wrongPin)")
        // Garbage, truncation and trailing bytes are failures, not crashes.
        let good = try sign("p256")
        #expect(!CMSSignature.verify([0x30, 0x03, 0x02, 0x01], content: message, trust: .anchors(anchors)).isValid)
        #expect(!CMSSignature.verify(Array(good.dropLast()), content: message, trust: .anchors(anchors)).isValid)
        #expect(!CMSSignature.verify(good + [0], content: message, trust: .anchors(anchors)).isValid)
        for cut in stride(from: 0, to: good.count, by: 17) {
            #expect(!CMSSignature.verify(Array(good.prefix(cut)), content: message, trust: .anchors(anchors)).isValid)
        }
    }

    @Test func cmsSigningRefusesMismatchedCertificateAndEd25519() throws {
        let pki = try TestPKI.shared()
        let certificate = try #require(try X509Certificate.load(path: pki.certificate("p256b")).first)
        let mismatch = #expect(throws: CryptoError.self) {
            try CMSSignature.sign(message, key: try SigningKey(path: pki.key("p256")), certificate: certificate)
        }
        #expect(mismatch?.message.contains("does not carry") == true)
        let edCertificate = try #require(try X509Certificate.load(path: pki.certificate("ed25519")).first)
        let ed = #expect(throws: CryptoError.self) {
            try CMSSignature.sign(message, key: try SigningKey(path: pki.key("ed25519")), certificate: edCertificate)
        }
        #expect(ed?.message.contains("raw mode") == true)
    }

    @Test func trustAnchorsLoadFromFileAndDirectoryAndRefuseEmpty() throws {
        let pki = try TestPKI.shared()
        #expect(try TrustAnchors.load(path: pki.caCertificate).count == 1)
        #expect(try TrustAnchors.load(path: pki.trustDirectory).count == 1)
        let empty = try TemporaryDirectory()
        #expect(throws: CryptoError.self) { try TrustAnchors.load(path: empty.path) }
        #expect(throws: CryptoError.self) { try TrustAnchors.load(path: empty.file("nothing")) }
        let notPEM = try empty.write("x.pem", "not a certificate")
        #expect(throws: CryptoError.self) { try TrustAnchors.load(path: notPEM) }
    }

    /// The docs promise SHA-256/384: a CMS signature with a SHA-1 digest (made by the
    /// OpenSSL CLI, as any signer could) is refused, by a trusted signer too.
    @Test(arguments: ["sha1", "sha224"])
    func weakCMSDigestsAreRefused(digest: String) throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let content = try directory.write("manifest.json", message)
        let signature = directory.file("manifest.sig")
        try Tools.run(
            "openssl",
            ["cms", "-sign", "-binary", "-nosmimecap", "-md", digest, "-signer", pki.certificate("p256"), "-inkey", pki.key("p256"),
             "-outform", "DER", "-in", content, "-out", signature])
        // OpenSSL itself accepts it: the refusal is domb's policy.
        let openssl = try Tools.run(
            "openssl", ["cms", "-verify", "-binary", "-inform", "DER", "-in", signature, "-content", content, "-CAfile", pki.caCertificate,
                        "-purpose", "any", "-out", "/dev/null"], check: false)
        #expect(openssl.status == 0, "\(openssl.stderrText)")
        let check = CMSSignature.verify(
            try [UInt8](Data(contentsOf: URL(fileURLWithPath: signature))), content: message,
            trust: .anchors(try TrustAnchors.load(path: pki.caCertificate)))
        #expect(!check.isValid)
        let name = digest == "sha1" ? "SHA-1" : "SHA-224"
        #expect(check.signatureFailures.contains { $0.contains("uses the \(name) digest, which is too weak") }, "\(check)")
    }
}
