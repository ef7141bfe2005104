//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL

/// The key types domb signs bundles with. Anything else is refused when the key is loaded.
public enum SigningKeyKind: Hashable, Sendable, CustomStringConvertible {
    /// ECDSA on P-256 with SHA-256.
    case ecP256
    /// ECDSA on P-384 with SHA-384.
    case ecP384
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32; modulus of at least 3072 bits.
    case rsa(bits: Int)
    /// Ed25519 (pure EdDSA, RFC 8032); raw mode only, as OpenSSL 3.0's CMS cannot sign with it.
    case ed25519

    /// Smallest RSA modulus accepted (NIST SP 800-57: 3072 bits for 128-bit security).
    public static let minimumRSABits = 3072

    /// The digest used with the key, or nil for Ed25519 (which hashes internally).
    public var digestName: String? {
        switch self {
        case .ecP256, .rsa: "sha256"
        case .ecP384: "sha384"
        case .ed25519: nil
        }
    }

    public var description: String {
        switch self {
        case .ecP256: "ECDSA P-256 with SHA-256"
        case .ecP384: "ECDSA P-384 with SHA-384"
        case .rsa(let bits): "RSA-\(bits) PSS with SHA-256"
        case .ed25519: "Ed25519"
        }
    }

    /// The OpenSSL command that verifies a raw signature made with this kind of key.
    public func opensslVerifyCommand(publicKey: String, signature: String, content: String) -> String {
        switch self {
        case .ecP256, .ecP384:
            "openssl dgst -\(digestName ?? "sha256") -verify \(publicKey) -signature \(signature) \(content)"
        case .rsa:
            "openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -verify \(publicKey) -signature \(signature) \(content)"
        case .ed25519:
            "openssl pkeyutl -verify -rawin -pubin -inkey \(publicKey) -sigfile \(signature) -in \(content)"
        }
    }

    /// Classifies an OpenSSL key, refusing unsupported curves, short RSA keys and other types.
    static func of(_ key: OpaquePointer, source: String) throws(CryptoError) -> SigningKeyKind {
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_EC:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            guard EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1 else {
                throw CryptoError.openSSL("EC curve of \(source)")
            }
            let curve = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            switch curve {
            case "prime256v1", "P-256", "secp256r1": return .ecP256
            case "secp384r1", "P-384": return .ecP384
            default: throw CryptoError("load key \(source)", "EC curve \(curve) is not supported (use P-256 or P-384)")
            }
        case EVP_PKEY_RSA, EVP_PKEY_RSA_PSS:
            let bits = Int(EVP_PKEY_get_bits(key))
            guard bits >= minimumRSABits else {
                throw CryptoError("load key \(source)", "RSA key has \(bits) bits; at least \(minimumRSABits) are required")
            }
            return .rsa(bits: bits)
        case EVP_PKEY_ED25519:
            return .ed25519
        default:
            throw CryptoError("load key \(source)", "key type is not supported (use EC P-256/P-384, RSA ≥ 3072 or Ed25519)")
        }
    }
}

/// A private key that signs bundle manifests and PCR policies (OpenSSL `EVP_PKEY`): a PEM
/// file, or a key that stays in a PKCS#11 token or a TPM (``init(reference:)``).
public final class SigningKey: @unchecked Sendable {
    let pointer: OpaquePointer
    public let kind: SigningKeyKind
    /// The token holding the key, when it is not a file: keeps the engine or provider
    /// loaded while the key lives, and names the library context operations run in.
    let token: KeyToken?
    /// Where the key came from (a path or a URI), for messages.
    public let source: String

    init(owning key: OpaquePointer, token: KeyToken?, source: String) throws(CryptoError) {
        do {
            kind = try SigningKeyKind.of(key, source: source)
        } catch {
            EVP_PKEY_free(key)
            throw error
        }
        pointer = key
        self.token = token
        self.source = source
    }

    /// Parses a PEM private key (PKCS#8, traditional EC or RSA). Encrypted keys are refused
    /// rather than prompting for a passphrase.
    /// - Parameter source: named in errors (the file path).
    public convenience init(pem: [UInt8], source: String) throws(CryptoError) {
        guard pem.count <= maximumCredentialFileSize else { throw CryptoError("load key \(source)", "file is too large") }
        let key: OpaquePointer? = try withMemoryBIO(pem) { bio in
            // A callback that supplies no passphrase: OpenSSL would otherwise prompt on the terminal.
            PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        guard let key else {
            throw CryptoError.openSSL("load private key \(source) (PEM, unencrypted)")
        }
        try self.init(owning: key, token: nil, source: source)
    }

    /// Reads a PEM private key file.
    public convenience init(path: String) throws(CryptoError) {
        try self.init(pem: try readCredentialFile(path), source: path)
    }

    deinit { EVP_PKEY_free(pointer) }

    /// The public half, as `-----BEGIN PUBLIC KEY-----` PEM (what `openssl dgst -verify` takes).
    public var publicKeyPEM: [UInt8] {
        withOutputBIO { bio in PEM_write_bio_PUBKEY(bio, pointer) == 1 }
    }

    /// The public half.
    public var verificationKey: VerificationKey {
        get throws(CryptoError) { try VerificationKey(pem: publicKeyPEM, source: "public half of the signing key") }
    }

    /// Whether `certificate` carries this key's public half.
    public func matches(_ certificate: X509Certificate) -> Bool {
        X509_check_private_key(certificate.pointer, pointer) == 1
    }

    /// Signs `message` the way ``SigningKeyKind`` describes: ECDSA (DER `Ecdsa-Sig-Value`),
    /// RSASSA-PSS or Ed25519; inside the token when the key is in one.
    ///
    /// - Parameter digestName: the hash to sign with instead of the kind's own (a PCR
    ///   policy is always signed over SHA-256, the name algorithm `TPM2_PolicyAuthorize` uses).
    public func sign(_ message: [UInt8], digestName: String? = nil) throws(CryptoError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError.openSSL("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        let digest = digestName ?? kind.digestName
        guard EVP_DigestSignInit_ex(context, &keyContext, digest, token?.libraryContext, token?.propertyQuery, pointer, nil) == 1
        else {
            throw CryptoError.openSSL("EVP_DigestSignInit_ex(\(kind)) with \(source)")
        }
        if case .rsa = kind, let keyContext {
            guard COpenSSL_EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                COpenSSL_EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, 32) == 1
            else { throw CryptoError.openSSL("set RSA-PSS parameters") }
        }
        var length = 0
        let signature: [UInt8]? = message.withUnsafeBufferPointer { buffer in
            guard EVP_DigestSign(context, nil, &length, buffer.baseAddress, buffer.count) == 1 else { return nil }
            var output = [UInt8](repeating: 0, count: length)
            guard EVP_DigestSign(context, &output, &length, buffer.baseAddress, buffer.count) == 1 else { return nil }
            return Array(output.prefix(length))
        }
        guard let signature else { throw CryptoError.openSSL("sign with \(kind) key \(source)") }
        return signature
    }
}

/// A public key that checks raw manifest signatures.
public final class VerificationKey: @unchecked Sendable {
    let pointer: OpaquePointer
    public let kind: SigningKeyKind

    init(owning pointer: OpaquePointer, source: String) throws(CryptoError) {
        do {
            kind = try SigningKeyKind.of(pointer, source: source)
        } catch {
            EVP_PKEY_free(pointer)
            throw error
        }
        self.pointer = pointer
    }

    /// Parses a PEM public key (`-----BEGIN PUBLIC KEY-----`), or takes the key of the
    /// first certificate if the PEM holds a certificate.
    public convenience init(pem: [UInt8], source: String) throws(CryptoError) {
        guard pem.count <= maximumCredentialFileSize else { throw CryptoError("load public key \(source)", "file is too large") }
        let key: OpaquePointer? = try withMemoryBIO(pem) { bio in PEM_read_bio_PUBKEY(bio, nil, nil, nil) }
        if let key {
            try self.init(owning: key, source: source)
            return
        }
        ERR_clear_error()
        guard let certificate = try? X509Certificate.certificates(pem: pem, source: source).first,
            let certificateKey = X509_get_pubkey(certificate.pointer)
        else { throw CryptoError("load public key \(source)", "no PEM public key or certificate found") }
        try self.init(owning: certificateKey, source: source)
    }

    public convenience init(path: String) throws(CryptoError) {
        try self.init(pem: try readCredentialFile(path), source: path)
    }

    deinit { EVP_PKEY_free(pointer) }

    /// The key as `-----BEGIN PUBLIC KEY-----` PEM.
    public var pem: [UInt8] { withOutputBIO { bio in PEM_write_bio_PUBKEY(bio, pointer) == 1 } }

    /// Whether `signature` is this key's signature over `message` (see
    /// ``SigningKey/sign(_:digestName:)``), hashed with `digestName` or the kind's own hash.
    /// A malformed signature is simply not valid.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8], digestName: String? = nil) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer {
            EVP_MD_CTX_free(context)
            ERR_clear_error()
        }
        var keyContext: OpaquePointer?
        guard EVP_DigestVerifyInit_ex(context, &keyContext, digestName ?? kind.digestName, nil, nil, pointer, nil) == 1 else {
            return false
        }
        if case .rsa = kind, let keyContext {
            guard COpenSSL_EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                COpenSSL_EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, 32) == 1
            else { return false }
        }
        return signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { data in
                EVP_DigestVerify(context, sig.baseAddress, sig.count, data.baseAddress, data.count) == 1
            }
        }
    }

    /// Whether two keys are the same public key.
    public func isSame(as other: VerificationKey) -> Bool { EVP_PKEY_eq(pointer, other.pointer) == 1 }
}
