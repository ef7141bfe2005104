//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import Foundation

/// What a CMS signature must chain to.
public enum SignerTrust: Sendable {
    /// The signer must chain to one of these certificates (a trust directory or CA file).
    case anchors([X509Certificate])
    /// The signer certificate must be exactly this one (and be within its validity period).
    case pinned(X509Certificate)
}

/// The result of checking a signature: a value listing what failed, never an exception.
public struct SignatureCheck: Sendable {
    /// Who signed: the certificate subject, or the key description in raw mode.
    public var signer: String?
    /// The signer certificate (CMS), once the signature itself verified.
    public var signerCertificate: X509Certificate?
    /// Why the signature itself is bad (tampered content, wrong key), if it is.
    public var signatureFailures: [String] = []
    /// Why the signer is not trusted (chain, expiry, purpose, not the pinned certificate).
    public var trustFailures: [String] = []

    public init(signer: String? = nil, signatureFailures: [String] = [], trustFailures: [String] = []) {
        self.signer = signer
        self.signatureFailures = signatureFailures
        self.trustFailures = trustFailures
    }

    public var isValid: Bool { signer != nil && signatureFailures.isEmpty && trustFailures.isEmpty }
}

/// Detached CMS/PKCS#7 SignedData (RFC 5652) over a manifest, DER-encoded, as
/// `openssl cms -sign -binary -nosmimecap -outform DER` makes it and
/// `openssl cms -verify -binary -inform DER -content … -purpose any` checks it.
public enum CMSSignature {
    /// Signs `content` and returns the DER SignedData: detached content, one signer with
    /// signed attributes (contentType, messageDigest, signingTime), the signer certificate
    /// and `chain` embedded.
    ///
    /// - Parameter signingTime: seconds since the epoch for the signingTime attribute
    ///   (`SOURCE_DATE_EPOCH` for reproducible builds); now when nil.
    /// - Throws: ``CryptoError`` if the certificate does not match the key, or the key is
    ///   Ed25519 (OpenSSL 3.0's CMS cannot sign with it; use raw mode).
    public static func sign(
        _ content: [UInt8], key: SigningKey, certificate: X509Certificate, chain: [X509Certificate] = [],
        signingTime: Int64? = nil
    ) throws(CryptoError) -> [UInt8] {
        if case .ed25519 = key.kind {
            throw CryptoError("CMS sign", "OpenSSL 3.0 cannot make CMS signatures with Ed25519: use raw mode or an EC/RSA key")
        }
        guard key.matches(certificate) else {
            ERR_clear_error()
            throw CryptoError("CMS sign", "the certificate \(certificate.subject) does not carry the signing key's public key")
        }
        let flags = UInt32(CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL)
        guard let cms = CMS_sign(nil, nil, nil, nil, flags) else { throw CryptoError.openSSL("CMS_sign") }
        defer { CMS_ContentInfo_free(cms) }
        guard let digest = EVP_get_digestbyname(key.kind.digestName ?? "sha256"),
            let signer = CMS_add1_signer(cms, certificate.pointer, key.pointer, digest, flags | UInt32(CMS_KEY_PARAM))
        else { throw CryptoError.openSSL("CMS_add1_signer") }
        if case .rsa = key.kind {
            guard let keyContext = CMS_SignerInfo_get0_pkey_ctx(signer),
                COpenSSL_EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                COpenSSL_EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, 32) == 1
            else { throw CryptoError.openSSL("set RSA-PSS parameters for CMS") }
        }
        // OpenSSL adds signingTime = now only when the attribute is absent; a fixed time
        // keeps builds reproducible.
        if let signingTime {
            guard let time = ASN1_TIME_set(nil, time_t(signingTime)) else { throw CryptoError.openSSL("ASN1_TIME_set") }
            defer { ASN1_TIME_free(time) }
            guard CMS_signed_add1_attr_by_NID(signer, NID_pkcs9_signingTime, time.pointee.type, time, -1) == 1 else {
                throw CryptoError.openSSL("add signingTime")
            }
        }
        for extra in chain {
            guard CMS_add1_cert(cms, extra.pointer) == 1 else { throw CryptoError.openSSL("CMS_add1_cert") }
        }
        let finalized: Int32 = content.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count))
            else { return 0 }
            defer { BIO_free(bio) }
            return CMS_final(cms, bio, nil, flags)
        }
        guard finalized == 1 else { throw CryptoError.openSSL("CMS_final") }
        let length = i2d_CMS_ContentInfo(cms, nil)
        guard length > 0 else { throw CryptoError.openSSL("i2d_CMS_ContentInfo") }
        var der = [UInt8](repeating: 0, count: Int(length))
        der.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_CMS_ContentInfo(cms, &cursor)
        }
        return der
    }

    /// Verifies a detached DER SignedData over `content`: exactly one signer, the signature
    /// and message digest, then the signer's chain to `trust` at `time` (now when nil), and
    /// the signer's purpose (keyUsage digitalSignature and, if it has an extended key usage,
    /// codeSigning or anyExtendedKeyUsage).
    public static func verify(
        _ signature: [UInt8], content: [UInt8], trust: SignerTrust, time: Int64? = nil
    ) -> SignatureCheck {
        defer { ERR_clear_error() }
        var check = SignatureCheck()
        guard signature.count <= 1 << 20 else {
            check.signatureFailures.append("CMS signature is larger than 1 MiB")
            return check
        }
        var parsed: OpaquePointer?
        var consumed = 0
        signature.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            parsed = d2i_CMS_ContentInfo(nil, &cursor, buffer.count)
            if let cursor, let base = buffer.baseAddress { consumed = cursor - base }
        }
        guard let cms = parsed else {
            check.signatureFailures.append("not a DER CMS structure: \(CryptoError.openSSL("d2i_CMS_ContentInfo").message)")
            return check
        }
        defer { CMS_ContentInfo_free(cms) }
        guard consumed == signature.count else {
            check.signatureFailures.append("\(signature.count - consumed) trailing bytes after the CMS structure")
            return check
        }
        guard OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed else {
            check.signatureFailures.append("CMS content type is not SignedData")
            return check
        }
        guard CMS_is_detached(cms) == 1 else {
            check.signatureFailures.append("CMS signature is not detached (it embeds content)")
            return check
        }
        guard let signerInfos = CMS_get0_SignerInfos(cms), OPENSSL_sk_num(signerInfos) == 1 else {
            check.signatureFailures.append("CMS signature must have exactly one signer")
            return check
        }
        // Weak algorithms are refused before anything else: the docs promise SHA-256/384.
        if let signerInfo = OPENSSL_sk_value(signerInfos, 0) {
            check.signatureFailures += weakAlgorithms(OpaquePointer(signerInfo))
            if !check.signatureFailures.isEmpty { return check }
        }
        // Signature first, with the certificates inside the CMS; trust is checked separately
        // below so that the reason for a refusal is precise.
        let verified: Int32 = content.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count))
            else { return 0 }
            defer { BIO_free(bio) }
            return CMS_verify(cms, nil, nil, bio, nil, UInt32(CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY))
        }
        guard verified == 1 else {
            check.signatureFailures.append(
                "signature does not verify over manifest.json: \(CryptoError.openSSL("CMS_verify").message)")
            return check
        }
        guard let signers = CMS_get0_signers(cms), OPENSSL_sk_num(signers) == 1,
            let signerPointer = OPENSSL_sk_value(signers, 0)
        else {
            check.signatureFailures.append("CMS signer certificate is not included")
            return check
        }
        let signerX509 = OpaquePointer(signerPointer)
        guard X509_up_ref(signerX509) == 1 else {
            check.signatureFailures.append("X509_up_ref failed")
            return check
        }
        let signer = X509Certificate(owning: signerX509)
        check.signer = signer.subject
        check.signerCertificate = signer

        let embedded = CMS_get1_certs(cms)
        defer { if let embedded { OPENSSL_sk_pop_free(embedded, X509_free_shim) } }
        switch trust {
        case .anchors(let anchors):
            check.trustFailures += chainFailures(signer, anchors: anchors, untrusted: embedded, partial: false, time: time)
        case .pinned(let pinned):
            if !signer.isSame(as: pinned) {
                check.trustFailures.append("signer \(signer.subject) is not the pinned certificate \(pinned.subject)")
            } else {
                check.trustFailures += chainFailures(signer, anchors: [pinned], untrusted: nil, partial: true, time: time)
            }
        }
        // Validity is the chain check's (at `time`); purpose and algorithms are here.
        check.trustFailures += signer.purposeProblems
        return check
    }

    /// Why the signer info's digest or signature algorithm is too weak (SHA-1, MD5,
    /// SHA-224), or its key too small or of a kind domb does not accept for bundles.
    private static func weakAlgorithms(_ signerInfo: OpaquePointer) -> [String] {
        var key: OpaquePointer?
        var digestAlgorithm: UnsafeMutablePointer<X509_ALGOR>?
        var signatureAlgorithm: UnsafeMutablePointer<X509_ALGOR>?
        CMS_SignerInfo_get0_algs(signerInfo, &key, nil, &digestAlgorithm, &signatureAlgorithm)
        var failures: [String] = []
        func nid(_ algorithm: UnsafeMutablePointer<X509_ALGOR>?) -> Int32 {
            guard let algorithm else { return NID_undef }
            var object: OpaquePointer?
            X509_ALGOR_get0(&object, nil, nil, algorithm)
            return object.map { OBJ_obj2nid($0) } ?? NID_undef
        }
        let digest = nid(digestAlgorithm)
        if let weak = weakDigestName(nid: digest) {
            failures.append("the CMS signature uses the \(weak) digest, which is too weak (SHA-256 or SHA-384 is required)")
        } else if digest == NID_undef {
            failures.append("the CMS signature names no known digest algorithm")
        }
        var signatureDigest: Int32 = NID_undef
        var keyType: Int32 = NID_undef
        if OBJ_find_sigid_algs(nid(signatureAlgorithm), &signatureDigest, &keyType) == 1,
            let weak = weakDigestName(nid: signatureDigest), weakDigestName(nid: digest) == nil
        {
            failures.append("the CMS signature algorithm uses \(weak), which is too weak (SHA-256 or SHA-384 is required)")
        }
        return failures
    }

    /// Chain, validity and signature checks of `signer` up to `anchors` (X509_verify_cert).
    private static func chainFailures(
        _ signer: X509Certificate, anchors: [X509Certificate], untrusted: OpaquePointer?, partial: Bool, time: Int64?
    ) -> [String] {
        guard let store = X509_STORE_new(), let context = X509_STORE_CTX_new() else {
            return ["cannot allocate an X509 store"]
        }
        defer {
            X509_STORE_CTX_free(context)
            X509_STORE_free(store)
        }
        for anchor in anchors { X509_STORE_add_cert(store, anchor.pointer) }
        guard X509_STORE_CTX_init(context, store, signer.pointer, untrusted) == 1 else {
            return ["X509_STORE_CTX_init failed: \(CryptoError.openSSL("X509_STORE_CTX_init").message)"]
        }
        // Purpose is checked by signingProblems (codeSigning); OpenSSL's default S/MIME
        // purpose would refuse a code-signing certificate ("unsuitable certificate purpose").
        X509_STORE_CTX_set_purpose(context, X509_PURPOSE_ANY)
        if let parameters = X509_STORE_CTX_get0_param(context) {
            if partial { X509_VERIFY_PARAM_set_flags(parameters, UInt(X509_V_FLAG_PARTIAL_CHAIN)) }
            // Level 2 (112-bit security): no SHA-1 or MD5 signature and no RSA key under
            // 2048 bits anywhere in the chain.
            X509_VERIFY_PARAM_set_auth_level(parameters, 2)
            if let time { X509_VERIFY_PARAM_set_time(parameters, time_t(time)) }
        }
        if X509_verify_cert(context) == 1 { return [] }
        let code = X509_STORE_CTX_get_error(context)
        let depth = X509_STORE_CTX_get_error_depth(context)
        var subject = signer.subject
        if let current = X509_STORE_CTX_get_current_cert(context), X509_up_ref(current) == 1 {
            subject = X509Certificate(owning: current).subject
        }
        let reason = String(cString: X509_verify_cert_error_string(Int(code)))
        if code == X509_V_ERR_CERT_HAS_EXPIRED {
            return ["certificate \(subject) (chain depth \(depth)) has expired: \(reason)"]
        }
        return ["signer chain does not verify at depth \(depth) (\(subject)): \(reason)"]
    }
}

/// `X509_free` as a C function pointer for `OPENSSL_sk_pop_free` (the typed stack macros
/// are not importable).
private let X509_free_shim: @convention(c) (UnsafeMutableRawPointer?) -> Void = { pointer in
    if let pointer { X509_free(OpaquePointer(pointer)) }
}
