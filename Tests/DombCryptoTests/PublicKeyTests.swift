//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Foundation
import Testing

/// Public keys built from raw TPM-style parts must equal what the openssl CLI makes, and
/// verify what `openssl dgst -sign` signs.
@Suite struct PublicKeyTests {
    /// The bytes after a "pub:" (EC) or "Modulus:" (RSA) heading of `openssl pkey -text`.
    static func hexBlock(_ text: String, after heading: String) -> [UInt8] {
        var collecting = false
        var hex = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(heading) {
                collecting = true
                continue
            }
            if collecting {
                guard line.hasPrefix("    ") else { break }
                hex += line.filter { $0.isHexDigit }
            }
        }
        return [UInt8](hex: hex) ?? []
    }

    @Test func eccP256FromPointMatchesOpenSSLAndVerifiesItsSignature() throws {
        let directory = try TemporaryDirectory()
        let privateKey = directory.file("ec.key")
        try Tools.run("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", privateKey])
        let pubPEM = try Tools.run("openssl", ["pkey", "-in", privateKey, "-pubout"]).stdoutText
        let text = try Tools.run("openssl", ["pkey", "-in", privateKey, "-pubin", "-noout", "-text"], check: false)
        let textOut = text.status == 0 ? text.stdoutText : try Tools.run("openssl", ["pkey", "-in", privateKey, "-text_pub", "-noout"]).stdoutText
        var point = Self.hexBlock(textOut, after: "pub:")
        #expect(point.count == 65 && point.first == 0x04)
        point.removeFirst()
        let key = try PublicKey(.ecc(curve: .nistP256, x: Array(point.prefix(32)), y: Array(point.suffix(32))))
        #expect(try key.pem() == pubPEM)
        #expect(key.typeName == "EC")
        #expect(key.bits == 256)

        let message = Array("attest bytes".utf8)
        let messagePath = try directory.write("msg", message)
        let signaturePath = directory.file("sig")
        try Tools.run("openssl", ["dgst", "-sha256", "-sign", privateKey, "-out", signaturePath, messagePath])
        let signature = try [UInt8](Data(contentsOf: URL(fileURLWithPath: signaturePath)))
        #expect(key.failureToVerify(signature: signature, over: message, hash: .sha256, scheme: .ecdsa) == nil)
        #expect(key.failureToVerify(signature: signature, over: message + [0], hash: .sha256, scheme: .ecdsa) != nil)
        #expect(key.failureToVerify(signature: signature, over: message, hash: .sha384, scheme: .ecdsa) != nil)
        #expect(key.failureToVerify(signature: signature, over: message, hash: .sha256, scheme: .rsassa) != nil)
        #expect(key.failureToVerify(signature: Array(signature.dropLast()), over: message, hash: .sha256, scheme: .ecdsa) != nil)

        // The PEM reads back to the same key.
        let reread = try PublicKey(pem: Array(pubPEM.utf8))
        #expect(try reread.derSubjectPublicKeyInfo() == key.derSubjectPublicKeyInfo())
    }

    @Test(arguments: [2048, 3072]) func rsaFromModulusMatchesOpenSSLAndVerifiesPKCS1AndPSS(bits: Int) throws {
        let directory = try TemporaryDirectory()
        let privateKey = directory.file("rsa.key")
        try Tools.run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)", "-out", privateKey])
        let pubPEM = try Tools.run("openssl", ["pkey", "-in", privateKey, "-pubout"]).stdoutText
        let textOut = try Tools.run("openssl", ["pkey", "-in", privateKey, "-text_pub", "-noout"]).stdoutText
        var modulus = Self.hexBlock(textOut, after: "Modulus:")
        if modulus.first == 0 { modulus.removeFirst() }
        #expect(modulus.count == bits / 8)
        let key = try PublicKey(.rsa(modulus: modulus, exponent: 0))
        #expect(try key.pem() == pubPEM)
        #expect(key.bits == bits)

        let message = Array("attest bytes".utf8)
        let messagePath = try directory.write("msg", message)
        let pkcs1 = directory.file("pkcs1.sig")
        try Tools.run("openssl", ["dgst", "-sha256", "-sign", privateKey, "-out", pkcs1, messagePath])
        let pss = directory.file("pss.sig")
        try Tools.run("openssl", [
            "dgst", "-sha256", "-sign", privateKey, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
            "-out", pss, messagePath,
        ])
        let pkcs1Bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pkcs1)))
        let pssBytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pss)))
        #expect(key.failureToVerify(signature: pkcs1Bytes, over: message, hash: .sha256, scheme: .rsassa) == nil)
        #expect(key.failureToVerify(signature: pssBytes, over: message, hash: .sha256, scheme: .rsapss) == nil)
        #expect(key.failureToVerify(signature: pssBytes, over: message, hash: .sha256, scheme: .rsassa) != nil)
        #expect(key.failureToVerify(signature: pkcs1Bytes, over: message, hash: .sha256, scheme: .ecdsa) != nil)
        #expect(key.failureToVerify(signature: pkcs1Bytes, over: Array("other".utf8), hash: .sha256, scheme: .rsassa) != nil)
    }

    @Test func ecdsaDEREncodingVerifiesWithOpenSSL() throws {
        // r and s with their top bit set need a leading zero in DER; short ones must not be padded.
        let der = try ECDSASignature.der(r: [0x80] + [UInt8](repeating: 1, count: 31), s: [0x01, 0x02])
        #expect(der == [0x30, 0x27, 0x02, 0x21, 0x00, 0x80] + [UInt8](repeating: 1, count: 31) + [0x02, 0x02, 0x01, 0x02])
        #expect(throws: CryptoError.self) { try ECDSASignature.der(r: [], s: [1]) }
    }

    @Test func rejectsBadKeysWithoutCrashing() throws {
        #expect(throws: CryptoError.self) { try PublicKey(pem: Array("not a key".utf8)) }
        #expect(throws: CryptoError.self) { try PublicKey(pem: []) }
        // A point that is not on the curve.
        #expect(throws: CryptoError.self) {
            try PublicKey(.ecc(curve: .nistP256, x: [UInt8](repeating: 1, count: 32), y: [UInt8](repeating: 2, count: 32)))
        }
        #expect(throws: CryptoError.self) { try PublicKey(.rsa(modulus: [1, 2, 3], exponent: 0)) }
    }
}
