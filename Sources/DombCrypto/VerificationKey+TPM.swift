//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

extension VerificationKey {
    /// The key as a TPM public key (`TPMS_ECC_POINT` coordinates or RSA modulus and
    /// exponent), from which ``ExternalSigningKey`` builds the area `TPM2_LoadExternal`
    /// takes. Ed25519 has no TPM form.
    /// The corresponding C function is `EVP_PKEY_get_bn_param`.
    public var tpmPublicKey: AttestationKeyPublic {
        get throws(CryptoError) {
            func number(_ name: String) throws(CryptoError) -> OpaquePointer {
                var value: OpaquePointer?
                guard EVP_PKEY_get_bn_param(pointer, name, &value) == 1, let value else {
                    throw CryptoError.openSSL("EVP_PKEY_get_bn_param(\(name))")
                }
                return value
            }
            func bytes(_ value: OpaquePointer, size: Int) throws(CryptoError) -> [UInt8] {
                var out = [UInt8](repeating: 0, count: size)
                guard BN_bn2binpad(value, &out, Int32(size)) == Int32(size) else {
                    throw CryptoError("public key", "a value does not fit \(size) bytes")
                }
                return out
            }
            switch kind {
            case .ecP256, .ecP384:
                let curve: AttestationKeyPublic.ECCCurve = kind == .ecP256 ? .nistP256 : .nistP384
                let x = try number(OSSL_PKEY_PARAM_EC_PUB_X)
                defer { BN_free(x) }
                let y = try number(OSSL_PKEY_PARAM_EC_PUB_Y)
                defer { BN_free(y) }
                return .ecc(curve: curve, x: try bytes(x, size: curve.coordinateSize), y: try bytes(y, size: curve.coordinateSize))
            case .rsa(let bits):
                let n = try number(OSSL_PKEY_PARAM_RSA_N)
                defer { BN_free(n) }
                let e = try number(OSSL_PKEY_PARAM_RSA_E)
                defer { BN_free(e) }
                guard BN_num_bits(e) <= 32 else { throw CryptoError("public key", "the RSA exponent is longer than 32 bits") }
                let exponent = try bytes(e, size: 4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                return .rsa(modulus: try bytes(n, size: (bits + 7) / 8), exponent: exponent)
            case .ed25519:
                throw CryptoError("public key", "a TPM cannot verify Ed25519 signatures: use an EC P-256 key for PCR policies")
            }
        }
    }

    /// SHA-256 of the DER `SubjectPublicKeyInfo`: systemd's `pkfp`, and
    /// `openssl pkey -pubin -in key.pem -outform DER | sha256sum`.
    public var fingerprint: [UInt8] {
        get throws(CryptoError) {
            let der = try PublicKey(pem: pem).derSubjectPublicKeyInfo()
            guard let digest = OpenSSLHashing().hash(der, with: .sha256) else {
                throw CryptoError.openSSL("SHA-256")
            }
            return digest
        }
    }
}

extension ECDSASignature {
    /// r and s of a DER `ECDSA-Sig-Value` (SEC 1 §C.5), each left-padded to `size` bytes,
    /// as `TPMS_SIGNATURE_ECDSA` carries them. The corresponding C function is `d2i_ECDSA_SIG`.
    /// - Throws: ``CryptoError`` for anything but exactly one well-formed signature.
    public static func components(der: [UInt8], size: Int) throws(CryptoError) -> (r: [UInt8], s: [UInt8]) {
        guard !der.isEmpty, der.count <= 160 else { throw CryptoError("ECDSA signature", "\(der.count) bytes is not a DER signature") }
        var consumed = 0
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            let signature = d2i_ECDSA_SIG(nil, &cursor, buffer.count)
            if let cursor, let base = buffer.baseAddress { consumed = cursor - base }
            return signature
        }
        guard let parsed else { throw CryptoError.openSSL("d2i_ECDSA_SIG") }
        defer { ECDSA_SIG_free(parsed) }
        guard consumed == der.count else { throw CryptoError("ECDSA signature", "trailing bytes after the DER signature") }
        var r: OpaquePointer?
        var s: OpaquePointer?
        ECDSA_SIG_get0(parsed, &r, &s)
        guard let r, let s else { throw CryptoError("ECDSA signature", "r or s is missing") }
        var rBytes = [UInt8](repeating: 0, count: size)
        var sBytes = [UInt8](repeating: 0, count: size)
        guard BN_bn2binpad(r, &rBytes, Int32(size)) == Int32(size), BN_bn2binpad(s, &sBytes, Int32(size)) == Int32(size) else {
            throw CryptoError("ECDSA signature", "r or s is longer than \(size) bytes")
        }
        return (rBytes, sBytes)
    }
}
