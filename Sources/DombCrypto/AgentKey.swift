//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// The Keylime agent's own key pair (Keylime calls it the NK): an RSA 2048 key whose public
/// PEM the agent binds into PCR 16 of every quote, that a tenant may encrypt payload key
/// shares to, and that signs the agent's self-signed mutual-TLS certificate (rust-keylime
/// does the same with a CN of the agent UUID and the contact IP as subjectAltName).
public final class AgentKey: @unchecked Sendable {
    let key: OpaquePointer

    private init(owning key: OpaquePointer) { self.key = key }
    deinit { EVP_PKEY_free(key) }

    /// A new RSA 2048 key (`EVP_PKEY_keygen`).
    public static func generate() throws(CryptoError) -> AgentKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else { throw CryptoError.openSSL("EVP_PKEY_CTX_new_from_name(RSA)") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, 2048) == 1,
            EVP_PKEY_keygen(context, &key) == 1, let key
        else { throw CryptoError.openSSL("RSA 2048 key generation") }
        return AgentKey(owning: key)
    }

    /// Reads a PEM private key (`PEM_read_bio_PrivateKey`); it must be RSA.
    public convenience init(privatePEM: [UInt8]) throws(CryptoError) {
        guard !privatePEM.isEmpty, privatePEM.count <= 64 << 10 else { throw CryptoError("agent key", "not a PEM private key") }
        let parsed: OpaquePointer? = try withMemoryBIO(privatePEM) { bio in PEM_read_bio_PrivateKey(bio, nil, nil, nil) }
        guard let parsed else { throw CryptoError.openSSL("PEM_read_bio_PrivateKey") }
        guard EVP_PKEY_get_base_id(parsed) == EVP_PKEY_RSA else {
            EVP_PKEY_free(parsed)
            throw CryptoError("agent key", "the key is not RSA (Keylime encrypts key shares to it with RSA-OAEP)")
        }
        self.init(owning: parsed)
    }

    /// PKCS#8 PEM of the private key, unencrypted (the file must be mode 0600).
    public var privatePEM: [UInt8] {
        withOutputBIO { bio in PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 }
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM: the exact text the agent sends as `pubkey` and
    /// whose hash it extends into PCR 16.
    public var publicPEM: String {
        String(decoding: withOutputBIO { bio in PEM_write_bio_PUBKEY(bio, key) == 1 }, as: UTF8.self)
    }

    /// DER `SubjectPublicKeyInfo` (`i2d_PUBKEY`), to compare with a certificate's.
    public func subjectPublicKeyInfo() throws(CryptoError) -> [UInt8] {
        let length = i2d_PUBKEY(key, nil)
        guard length > 0 else { throw CryptoError.openSSL("i2d_PUBKEY") }
        var output = [UInt8](repeating: 0, count: Int(length))
        let written = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_PUBKEY(key, &cursor)
        }
        guard written == length else { throw CryptoError.openSSL("i2d_PUBKEY") }
        return output
    }

    /// A self-signed X.509 v3 certificate for this key: subject CN = `commonName`,
    /// subjectAltName IP addresses and DNS names, valid from now for `days`, SHA-256.
    public func selfSignedCertificate(commonName: String, ipAddresses: [String], dnsNames: [String], days: Int) throws(CryptoError) -> [UInt8] {
        guard let certificate = X509_new() else { throw CryptoError.openSSL("X509_new") }
        defer { X509_free(certificate) }
        guard X509_set_version(certificate, 2) == 1 else { throw CryptoError.openSSL("X509_set_version") }
        let serial = try CredentialMaker.randomBytes(16)
        guard let serialNumber = BN_bin2bn([serial[0] & 0x7F] + serial.dropFirst(), 16, nil) else { throw CryptoError.openSSL("BN_bin2bn") }
        defer { BN_free(serialNumber) }
        guard BN_to_ASN1_INTEGER(serialNumber, X509_get_serialNumber(certificate)) != nil,
            X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != nil,
            X509_gmtime_adj(X509_getm_notAfter(certificate), days * 86_400) != nil,
            X509_set_pubkey(certificate, key) == 1,
            let name = X509_get_subject_name(certificate),
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1,
            X509_set_issuer_name(certificate, name) == 1
        else { throw CryptoError.openSSL("build certificate") }
        let alternatives = (ipAddresses.map { "IP:\($0)" } + dnsNames.map { "DNS:\($0)" }).joined(separator: ",")
        var extensions: [(String, String)] = [("basicConstraints", "critical,CA:FALSE"), ("keyUsage", "critical,digitalSignature,keyEncipherment"), ("extendedKeyUsage", "serverAuth,clientAuth")]
        if !alternatives.isEmpty { extensions.append(("subjectAltName", alternatives)) }
        for (name, value) in extensions {
            var context = X509V3_CTX()
            X509V3_set_ctx(&context, certificate, certificate, nil, nil, 0)
            guard let ext = X509V3_EXT_conf(nil, &context, name, value) else { throw CryptoError.openSSL("X509V3_EXT_conf(\(name))") }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(certificate, ext, -1) == 1 else { throw CryptoError.openSSL("X509_add_ext(\(name))") }
        }
        guard let md = FetchedDigests.shared.md(for: .sha256), X509_sign(certificate, key, md) > 0 else {
            throw CryptoError.openSSL("X509_sign")
        }
        return withOutputBIO { bio in PEM_write_bio_X509(bio, certificate) == 1 }
    }
}
