//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// A public key held by OpenSSL (`EVP_PKEY`): built from a TPM public area or read from PEM,
/// written as PEM, and used to verify signatures (ECDSA DER, RSASSA-PKCS1-v1_5, RSASSA-PSS).
public final class PublicKey: @unchecked Sendable {
    // EVP_PKEY is reference counted and safe to use for verification from several threads.
    let key: OpaquePointer

    /// PEM files larger than this are not public keys.
    public static let maximumPEMSize = 64 << 10

    private init(owning key: OpaquePointer) { self.key = key }

    deinit { EVP_PKEY_free(key) }

    /// Reads a PEM `SubjectPublicKeyInfo` ("BEGIN PUBLIC KEY").
    /// The corresponding C function is `PEM_read_bio_PUBKEY`.
    public convenience init(pem: [UInt8]) throws(CryptoError) {
        guard !pem.isEmpty, pem.count <= Self.maximumPEMSize else {
            throw CryptoError("PEM public key", "\(pem.count) bytes: not a PEM public key")
        }
        let parsed: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let parsed else { throw CryptoError.openSSL("PEM_read_bio_PUBKEY") }
        self.init(owning: parsed)
    }

    /// Builds the key from a TPM public area.
    /// The corresponding C function is `EVP_PKEY_fromdata`.
    public convenience init(_ tpmKey: AttestationKeyPublic) throws(CryptoError) {
        guard let builder = OSSL_PARAM_BLD_new() else { throw CryptoError.openSSL("OSSL_PARAM_BLD_new") }
        defer { OSSL_PARAM_BLD_free(builder) }
        var bignums: [OpaquePointer] = []
        defer { for bn in bignums { BN_free(bn) } }
        let typeName: String
        // The builder keeps pointers to what is pushed and copies only in OSSL_PARAM_BLD_to_param,
        // so the point bytes and the group name must outlive that call.
        var point: [UInt8] = []
        // Swift hands a C function a temporary copy of a String, so every name the builder
        // keeps (parameter keys included) is duplicated here and freed after the build.
        var cStrings: [UnsafeMutablePointer<CChar>] = []
        defer { for string in cStrings { free(string) } }
        func keep(_ text: String) -> UnsafeMutablePointer<CChar>? {
            guard let copy = strdup(text) else { return nil }
            cStrings.append(copy)
            return copy
        }
        switch tpmKey {
        case .ecc(let curve, let x, let y):
            typeName = "EC"
            let size = curve.coordinateSize
            guard x.count <= size, y.count <= size, !x.isEmpty, !y.isEmpty else {
                throw CryptoError("ECC public key", "coordinates of \(x.count) and \(y.count) bytes for a \(size)-byte curve")
            }
            // SEC 1 §2.3.3 uncompressed point: 04 ‖ X ‖ Y, each left-padded to the field size.
            point = [0x04] + [UInt8](repeating: 0, count: size - x.count) + x + [UInt8](repeating: 0, count: size - y.count) + y
            let group: String =
                switch curve {
                case .nistP256: "P-256"
                case .nistP384: "P-384"
                case .nistP521: "P-521"
                }
            guard let groupKey = keep(OSSL_PKEY_PARAM_GROUP_NAME), let groupName = keep(group),
                OSSL_PARAM_BLD_push_utf8_string(builder, groupKey, groupName, 0) == 1
            else {
                throw CryptoError.openSSL("OSSL_PARAM_BLD_push_utf8_string(group)")
            }
        case .rsa(let modulus, let exponent):
            typeName = "RSA"
            guard (128...1024).contains(modulus.count) else {
                throw CryptoError("RSA public key", "a \(modulus.count * 8)-bit modulus is not supported")
            }
            let e: UInt32 = exponent == 0 ? 65537 : exponent
            guard let n = modulus.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, Int32($0.count), nil) }),
                let eBN = BN_new()
            else { throw CryptoError.openSSL("BN_bin2bn") }
            bignums += [n, eBN]
            guard BN_set_word(eBN, UInt(e)) == 1, let nKey = keep(OSSL_PKEY_PARAM_RSA_N), let eKey = keep(OSSL_PKEY_PARAM_RSA_E),
                OSSL_PARAM_BLD_push_BN(builder, nKey, n) == 1,
                OSSL_PARAM_BLD_push_BN(builder, eKey, eBN) == 1
            else { throw CryptoError.openSSL("OSSL_PARAM_BLD_push_BN(n, e)") }
        }
        let pubKey = keep(OSSL_PKEY_PARAM_PUB_KEY)
        let built: Result<OpaquePointer, CryptoError> = point.withUnsafeBytes { raw in
            if !raw.isEmpty {
                guard let pubKey, OSSL_PARAM_BLD_push_octet_string(builder, pubKey, raw.baseAddress, raw.count) == 1 else {
                    return .failure(.openSSL("OSSL_PARAM_BLD_push_octet_string(pub)"))
                }
            }
            guard let params = OSSL_PARAM_BLD_to_param(builder) else { return .failure(.openSSL("OSSL_PARAM_BLD_to_param")) }
            defer { OSSL_PARAM_free(params) }
            guard let context = EVP_PKEY_CTX_new_from_name(nil, typeName, nil) else {
                return .failure(.openSSL("EVP_PKEY_CTX_new_from_name(\(typeName))"))
            }
            defer { EVP_PKEY_CTX_free(context) }
            var result: OpaquePointer?
            let selection = Int32(OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)
            guard EVP_PKEY_fromdata_init(context) == 1, EVP_PKEY_fromdata(context, &result, selection, params) == 1,
                let result
            else {
                return .failure(.openSSL("EVP_PKEY_fromdata(\(typeName))"))
            }
            return .success(result)
        }
        self.init(owning: try built.get())
        // An EC point must lie on the curve; EVP_PKEY_fromdata alone does not check that.
        if case .ecc = tpmKey {
            guard let check = EVP_PKEY_CTX_new_from_pkey(nil, key, nil) else { throw CryptoError.openSSL("EVP_PKEY_CTX_new_from_pkey") }
            defer { EVP_PKEY_CTX_free(check) }
            guard EVP_PKEY_public_check(check) == 1 else {
                throw CryptoError("ECC public key", "the TPM's point is not on the curve")
            }
        }
    }

    /// PEM `SubjectPublicKeyInfo`, as `openssl pkey -pubout` writes it.
    /// The corresponding C function is `PEM_write_bio_PUBKEY`.
    public func pem() throws(CryptoError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CryptoError.openSSL("BIO_new") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PUBKEY(bio, key) == 1 else { throw CryptoError.openSSL("PEM_write_bio_PUBKEY") }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = COpenSSL_BIO_get_mem_data(bio, &pointer)
        guard let pointer, length > 0 else { throw CryptoError.openSSL("BIO_get_mem_data") }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
            String(decoding: UnsafeBufferPointer(start: $0, count: Int(length)), as: UTF8.self)
        }
    }

    /// DER `SubjectPublicKeyInfo`. The corresponding C function is `i2d_PUBKEY`.
    public func derSubjectPublicKeyInfo() throws(CryptoError) -> [UInt8] {
        let length = i2d_PUBKEY(key, nil)
        guard length > 0 else { throw CryptoError.openSSL("i2d_PUBKEY") }
        var out = [UInt8](repeating: 0, count: Int(length))
        let written = out.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_PUBKEY(key, &cursor)
        }
        guard written == length else { throw CryptoError.openSSL("i2d_PUBKEY") }
        return out
    }

    /// "EC" or "RSA".
    public var typeName: String {
        if EVP_PKEY_is_a(key, "EC") == 1 { return "EC" }
        if EVP_PKEY_is_a(key, "RSA") == 1 { return "RSA" }
        return "other"
    }

    /// Key size in bits.
    public var bits: Int { Int(EVP_PKEY_get_bits(key)) }

    /// Verifies `signature` over `message` (hashed here with `hash`).
    /// - Returns: nil if valid, else OpenSSL's reason.
    /// The corresponding C function is `EVP_DigestVerify`.
    public func failureToVerify(
        signature: [UInt8], over message: [UInt8], hash: HashAlgorithm, scheme: QuoteSignatureScheme
    ) -> String? {
        let isEC = EVP_PKEY_is_a(key, "EC") == 1
        let isRSA = EVP_PKEY_is_a(key, "RSA") == 1
        switch scheme {
        case .ecdsa where !isEC: return "an ECDSA signature but the key is \(typeName)"
        case .rsassa, .rsapss: if !isRSA { return "an RSA signature but the key is \(typeName)" }
        default: break
        }
        guard let md = FetchedDigests.shared.md(for: hash) else { return "OpenSSL has no \(hash)" }
        guard let context = EVP_MD_CTX_new() else { return CryptoError.openSSL("EVP_MD_CTX_new").message }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        guard EVP_DigestVerifyInit(context, &keyContext, md, nil, key) == 1 else {
            return CryptoError.openSSL("EVP_DigestVerifyInit").message
        }
        if scheme == .rsapss {
            // TPM 2.0 Part 1, §B.7: the salt is as long as the digest; accept what the block says.
            guard COpenSSL_EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                COpenSSL_EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, RSA_PSS_SALTLEN_AUTO) == 1
            else { return CryptoError.openSSL("EVP_PKEY_CTX_set_rsa_padding(PSS)").message }
        } else if scheme == .rsassa {
            guard COpenSSL_EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PADDING) == 1 else {
                return CryptoError.openSSL("EVP_PKEY_CTX_set_rsa_padding(PKCS1)").message
            }
        }
        let rc = signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestVerify(context, sig.baseAddress, sig.count, msg.baseAddress, msg.count)
            }
        }
        if rc == 1 { return nil }
        let detail = CryptoError.openSSL("EVP_DigestVerify").message
        return rc == 0 ? "bad signature" : "malformed signature (\(detail))"
    }
}

/// ECDSA signature encodings.
public enum ECDSASignature {
    /// DER `ECDSA-Sig-Value` (SEC 1 §C.5) from the TPM's r and s, as `openssl dgst -verify`
    /// and `tpm2_quote -f plain` use. The corresponding C function is `i2d_ECDSA_SIG`.
    public static func der(r: [UInt8], s: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard !r.isEmpty, !s.isEmpty, r.count <= 66, s.count <= 66 else {
            throw CryptoError("ECDSA signature", "r of \(r.count) and s of \(s.count) bytes")
        }
        guard let signature = ECDSA_SIG_new() else { throw CryptoError.openSSL("ECDSA_SIG_new") }
        defer { ECDSA_SIG_free(signature) }
        guard let rBN = r.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, Int32($0.count), nil) }) else {
            throw CryptoError.openSSL("BN_bin2bn(r)")
        }
        guard let sBN = s.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, Int32($0.count), nil) }) else {
            BN_free(rBN)
            throw CryptoError.openSSL("BN_bin2bn(s)")
        }
        guard ECDSA_SIG_set0(signature, rBN, sBN) == 1 else {
            BN_free(rBN)
            BN_free(sBN)
            throw CryptoError.openSSL("ECDSA_SIG_set0")
        }
        let length = i2d_ECDSA_SIG(signature, nil)
        guard length > 0 else { throw CryptoError.openSSL("i2d_ECDSA_SIG") }
        var out = [UInt8](repeating: 0, count: Int(length))
        let written = out.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_ECDSA_SIG(signature, &cursor)
        }
        guard written == length else { throw CryptoError.openSSL("i2d_ECDSA_SIG") }
        return out
    }
}
