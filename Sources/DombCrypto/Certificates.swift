//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombFiles
import Foundation

/// Largest PEM or DER file of keys or certificates domb reads.
let maximumCredentialFileSize = 1 << 20
/// Most certificates read from one PEM file or trust directory.
public let maximumCertificateCount = 256

/// An X.509 certificate (OpenSSL `X509`), immutable once loaded.
public final class X509Certificate: @unchecked Sendable, CustomStringConvertible {
    let pointer: OpaquePointer

    /// Takes ownership of `pointer`.
    init(owning pointer: OpaquePointer) { self.pointer = pointer }

    deinit { X509_free(pointer) }

    /// Parses one DER certificate; trailing bytes are an error.
    public convenience init(der: [UInt8]) throws(CryptoError) {
        var parsed: OpaquePointer?
        var consumed = 0
        der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            parsed = d2i_X509(nil, &cursor, buffer.count)
            if let cursor, let base = buffer.baseAddress { consumed = cursor - base }
        }
        guard let parsed else { throw CryptoError.openSSL("parse DER certificate") }
        guard consumed == der.count else {
            X509_free(parsed)
            throw CryptoError("parse DER certificate", "\(der.count - consumed) trailing bytes after the certificate")
        }
        self.init(owning: parsed)
    }

    /// Every certificate in a PEM text, in order; at least one.
    /// - Parameter source: named in errors (the file path).
    public static func certificates(pem: [UInt8], source: String) throws(CryptoError) -> [X509Certificate] {
        guard pem.count <= maximumCredentialFileSize else {
            throw CryptoError("read certificates from \(source)", "file is larger than \(maximumCredentialFileSize) bytes")
        }
        return try withMemoryBIO(pem) { bio throws(CryptoError) in
            var result: [X509Certificate] = []
            while result.count <= maximumCertificateCount {
                guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else {
                    // End of input shows as PEM_R_NO_START_LINE; anything else is a broken certificate.
                    let code = ERR_peek_last_error()
                    if !result.isEmpty && ERR_GET_REASON_shim(code) == PEM_R_NO_START_LINE {
                        ERR_clear_error()
                        return result
                    }
                    throw CryptoError.openSSL("read certificate \(result.count + 1) from \(source)")
                }
                result.append(X509Certificate(owning: certificate))
            }
            throw CryptoError("read certificates from \(source)", "more than \(maximumCertificateCount) certificates")
        }
    }

    /// Reads every certificate of a PEM file.
    public static func load(path: String) throws(CryptoError) -> [X509Certificate] {
        try certificates(pem: try readCredentialFile(path), source: path)
    }

    /// The DER encoding.
    public var der: [UInt8] {
        let length = i2d_X509(pointer, nil)
        guard length > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        bytes.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_X509(pointer, &cursor)
        }
        return bytes
    }

    /// The PEM encoding (`-----BEGIN CERTIFICATE-----`).
    public var pem: [UInt8] {
        withOutputBIO { bio in PEM_write_bio_X509(bio, pointer) == 1 }
    }

    /// The subject in RFC 2253 form ("CN=signer,O=example").
    public var subject: String { Self.name(X509_get_subject_name(pointer)) }
    public var issuer: String { Self.name(X509_get_issuer_name(pointer)) }

    /// The validity period as OpenSSL prints it.
    public var validity: String {
        let from = withOutputBIO { bio in ASN1_TIME_print(bio, X509_get0_notBefore(pointer)) == 1 }
        let until = withOutputBIO { bio in ASN1_TIME_print(bio, X509_get0_notAfter(pointer)) == 1 }
        return "\(String(decoding: from, as: UTF8.self)) to \(String(decoding: until, as: UTF8.self))"
    }

    /// The subject public key.
    public var publicKey: VerificationKey {
        get throws(CryptoError) {
            guard let key = X509_get_pubkey(pointer) else { throw CryptoError.openSSL("certificate public key") }
            return try VerificationKey(owning: key, source: "certificate \(subject)")
        }
    }

    public var description: String { subject }

    private static func name(_ name: OpaquePointer?) -> String {
        guard let name else { return "" }
        let bytes = withOutputBIO { bio in
            X509_NAME_print_ex(bio, name, 0, xnFlagRFC2253) >= 0
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Certificates whose bytes are equal are the same certificate.
    public func isSame(as other: X509Certificate) -> Bool { der == other.der }

    /// Why the certificate is not valid at `time` (seconds since the epoch; now when nil):
    /// expired or not yet valid (RFC 5280 §4.1.2.5). Empty when valid.
    public func validityProblems(at time: Int64?) -> [String] {
        var now = time_t(time ?? Int64(Foundation.time(nil)))
        var problems: [String] = []
        if X509_cmp_time(X509_get0_notAfter(pointer), &now) <= 0 {
            problems.append("certificate \(subject) has expired (valid \(validity))")
        }
        if X509_cmp_time(X509_get0_notBefore(pointer), &now) >= 0 {
            problems.append("certificate \(subject) is not valid yet (valid \(validity))")
        }
        return problems
    }

    /// Why the certificate may not sign launch bundles: its validity at `time`, keyUsage
    /// without digitalSignature (RFC 5280 §4.2.1.3), an extendedKeyUsage without codeSigning
    /// or anyExtendedKeyUsage (§4.2.1.12), and a signature algorithm with a weak digest
    /// (SHA-1, MD5). One policy for `build` (signing) and every verifier (CMS and raw).
    public func signingProblems(at time: Int64?) -> [String] {
        validityProblems(at: time) + purposeProblems
    }

    /// Why the certificate may not sign launch bundles whatever the time: keyUsage, extended
    /// key usage, a weak signature digest (see ``signingProblems(at:)``).
    public var purposeProblems: [String] {
        var problems: [String] = []
        let flags = X509_get_extension_flags(pointer)
        if flags & UInt32(EXFLAG_KUSAGE) != 0, X509_get_key_usage(pointer) & UInt32(KU_DIGITAL_SIGNATURE) == 0 {
            problems.append("certificate \(subject): keyUsage does not allow digitalSignature")
        }
        if flags & UInt32(EXFLAG_XKUSAGE) != 0, X509_get_extended_key_usage(pointer) & UInt32(XKU_CODE_SIGN | XKU_ANYEKU) == 0 {
            problems.append("certificate \(subject): extendedKeyUsage does not include codeSigning")
        }
        if let weak = weakSignatureDigest {
            problems.append("certificate \(subject) is signed with \(weak), which is too weak (SHA-256 or stronger is required)")
        }
        return problems
    }

    /// The name of the digest of the certificate's own signature when it is too weak to
    /// trust (MD5, SHA-1), else nil.
    var weakSignatureDigest: String? {
        var digestNID: Int32 = 0
        var keyNID: Int32 = 0
        guard OBJ_find_sigid_algs(X509_get_signature_nid(pointer), &digestNID, &keyNID) == 1 else { return nil }
        return weakDigestName(nid: digestNID)
    }
}

/// The digests domb refuses in any signature it checks (CMS signer info, certificates).
func weakDigestName(nid: Int32) -> String? {
    switch nid {
    case NID_md5: "MD5"
    case NID_sha1: "SHA-1"
    case NID_md4: "MD4"
    case NID_md5_sha1: "MD5-SHA1"
    case NID_sha224: "SHA-224"
    default: nil
    }
}

/// Trust anchors for CMS verification: a CA file (PEM, one or more certificates) or a
/// directory whose `*.pem` and `*.crt` files are all loaded.
public enum TrustAnchors {
    /// - Throws: ``CryptoError`` if `path` holds no certificate or a file is unreadable.
    public static func load(path: String) throws(CryptoError) -> [X509Certificate] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CryptoError("load trust anchors", "\(path) does not exist")
        }
        guard isDirectory.boolValue else { return try X509Certificate.load(path: path) }
        let names: [String]
        do {
            names = try Directory.entries(path)
        } catch {
            throw CryptoError("load trust anchors", error.description)
        }
        var anchors: [X509Certificate] = []
        for name in names where name.hasSuffix(".pem") || name.hasSuffix(".crt") {
            anchors += try X509Certificate.load(path: "\(path)/\(name)")
            guard anchors.count <= maximumCertificateCount else {
                throw CryptoError("load trust anchors", "more than \(maximumCertificateCount) certificates in \(path)")
            }
        }
        guard !anchors.isEmpty else { throw CryptoError("load trust anchors", "no *.pem or *.crt certificate in \(path)") }
        return anchors
    }
}

// MARK: - Helpers shared by the signing files

/// Reads a small credential file (key, certificate), refusing anything over the cap.
func readCredentialFile(_ path: String) throws(CryptoError) -> [UInt8] {
    do {
        return try InputFile.read(path, limit: maximumCredentialFileSize)
    } catch {
        throw CryptoError("read \(path)", "\(error.operation): \(error.message)")
    }
}

/// Runs `body` with a read-only memory BIO over `bytes` (callers cap `bytes` well below 2 GiB).
func withMemoryBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) throws(CryptoError) -> T) throws(CryptoError) -> T {
    let result: Result<T, CryptoError> = bytes.withUnsafeBytes { buffer in
        guard let count = Int32(exactly: buffer.count), let base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
            let bio = BIO_new_mem_buf(base, count)
        else { return .failure(CryptoError.openSSL("BIO_new_mem_buf")) }
        defer { BIO_free(bio) }
        do throws(CryptoError) { return .success(try body(bio)) } catch { return .failure(error) }
    }
    return try result.get()
}

/// Runs `write` against a fresh memory BIO and returns what it wrote (empty on failure).
func withOutputBIO(_ write: (OpaquePointer) -> Bool) -> [UInt8] {
    guard let bio = BIO_new(BIO_s_mem()) else { return [] }
    defer { BIO_free(bio) }
    guard write(bio) else { return [] }
    var data: UnsafeMutablePointer<CChar>?
    let length = COpenSSL_BIO_get_mem_data(bio, &data)
    guard let data, length > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: data, count: Int(length)))
}

/// `ERR_GET_REASON` is a static inline function in OpenSSL 3 headers; this mirrors it
/// (err.h: the reason is the low 23 bits).
func ERR_GET_REASON_shim(_ code: UInt) -> Int32 { Int32(code & 0x7FFFFF) }

/// `XN_FLAG_RFC2253` (x509.h), a macro of macros Swift does not import: ASN1_STRFLGS_RFC2253
/// (0x317) | XN_FLAG_SEP_COMMA_PLUS | XN_FLAG_DN_REV | XN_FLAG_DUMP_UNKNOWN_FIELDS.
private let xnFlagRFC2253: UInt = 0x317 | (1 << 16) | (1 << 20) | (1 << 24)
