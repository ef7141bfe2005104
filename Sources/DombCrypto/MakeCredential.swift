//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

/// The output of `TPM2_MakeCredential`: what `TPM2_ActivateCredential` takes.
public struct MadeCredential: Hashable, Sendable {
    /// `TPM2B_ID_OBJECT`: u16 size ‖ TPM2B integrityHMAC ‖ encIdentity.
    public var credential: [UInt8]
    /// The `TPM2B_ENCRYPTED_SECRET` contents: the seed under the EK (RSA-OAEP ciphertext, or
    /// the marshalled ephemeral `TPMS_ECC_POINT` for an ECC EK).
    public var encryptedSecret: [UInt8]

    public init(credential: [UInt8], encryptedSecret: [UInt8]) {
        self.credential = credential
        self.encryptedSecret = encryptedSecret
    }
}

/// `TPM2_MakeCredential` in software (TPM 2.0 Part 1, §24 "Credential Protection"; Part 3,
/// §12.6), so a verifier without a TPM can challenge an AK: only the TPM holding the EK's
/// private key, with an object of exactly `objectName` loaded, can recover `secret`.
///
/// Steps, with `H` the EK's nameAlg:
/// 1. seed: RSA EK — `H.size` random bytes, RSA-OAEP(H, MGF1-H, label "IDENTITY\0")
///    encrypted to the EK (Part 1 §B.10.3); ECC EK — one-pass ECDH with an ephemeral key on
///    the EK's curve, seed = KDFe(H, Z.x, "IDENTITY", ephemeral.x, EK.x, H.bits) (§C.6.4).
/// 2. symKey = KDFa(H, seed, "STORAGE", name, "", EK symmetric key bits); encIdentity =
///    AES-CFB(symKey, IV = 0)(TPM2B(secret)) (§24.4).
/// 3. HMACkey = KDFa(H, seed, "INTEGRITY", "", "", H.bits); outerHMAC = HMAC-H(HMACkey,
///    encIdentity ‖ name) (§24.5).
public enum CredentialMaker {
    /// Makes a credential for `objectName` (nameAlg ‖ digest) under the EK `endorsementKey`.
    ///
    /// - Throws: ``CryptoError`` when the EK is not a restricted decryption key with AES-CFB
    ///   and a known nameAlg, or `secret` is empty or longer than the nameAlg's digest
    ///   (Part 3 §12.6.1: TPM_RC_SIZE).
    public static func makeCredential(
        endorsementKey: TPMPublicArea, secret: [UInt8], objectName: [UInt8]
    ) throws(CryptoError) -> MadeCredential {
        if let problem = endorsementKey.endorsementKeyProblem {
            throw CryptoError("MakeCredential", "the EK cannot protect a credential: \(problem)")
        }
        let hash = endorsementKey.nameAlgorithm
        guard let digestSize = hash.digestSize else { throw CryptoError("MakeCredential", "EK nameAlg \(hash) unknown") }
        guard !secret.isEmpty, secret.count <= digestSize else {
            throw CryptoError("MakeCredential", "the secret is \(secret.count) bytes; it must be 1 to \(digestSize) (the EK's \(hash) digest size)")
        }
        guard objectName.count >= 2, let nameHashSize = HashAlgorithm(rawValue: UInt16(objectName[0]) << 8 | UInt16(objectName[1])).digestSize,
            objectName.count == 2 + nameHashSize
        else {
            throw CryptoError("MakeCredential", "\(objectName.count)-byte object name is not nameAlg ‖ digest")
        }
        let ekKey = try PublicKey(endorsementKey.key)
        let seed: [UInt8]
        let encryptedSecret: [UInt8]
        switch endorsementKey.key {
        case .rsa:
            seed = try randomBytes(digestSize)
            encryptedSecret = try rsaOAEPEncrypt(seed, key: ekKey, hash: hash, label: Array("IDENTITY".utf8) + [0])
        case .ecc(let curve, let ekX, _):
            let (z, ephemeralX, ephemeralY) = try ephemeralECDH(with: ekKey)
            let size = curve.coordinateSize
            seed = try kdfe(
                hash: hash, z: z, label: "IDENTITY", partyU: leftPad(ephemeralX, size), partyV: leftPad(ekX, size),
                bits: digestSize * 8)
            var point = ByteWriter()
            point.writeBE(UInt16(ephemeralX.count))
            point.writeBytes(ephemeralX)
            point.writeBE(UInt16(ephemeralY.count))
            point.writeBytes(ephemeralY)
            encryptedSecret = point.bytes
        }
        return try wrap(secret: secret, objectName: objectName, seed: seed, endorsementKey: endorsementKey, encryptedSecret: encryptedSecret)
    }

    /// Steps 2–3 with a given seed (exposed for known-answer tests).
    static func wrap(
        secret: [UInt8], objectName: [UInt8], seed: [UInt8], endorsementKey: TPMPublicArea, encryptedSecret: [UInt8]
    ) throws(CryptoError) -> MadeCredential {
        let hash = endorsementKey.nameAlgorithm
        let digestSize = hash.digestSize ?? 0
        let symmetricBits = Int(endorsementKey.symmetric.keyBits)
        let symmetricKey = try kdfa(hash: hash, key: seed, label: "STORAGE", contextU: objectName, contextV: [], bits: symmetricBits)
        var plain = ByteWriter()
        plain.writeBE(UInt16(secret.count))
        plain.writeBytes(secret)
        let encIdentity = try aesCFBEncrypt(plain.bytes, key: symmetricKey)
        let hmacKey = try kdfa(hash: hash, key: seed, label: "INTEGRITY", contextU: [], contextV: [], bits: digestSize * 8)
        let integrity = try hmac(hash, key: hmacKey, message: encIdentity + objectName)
        var idObject = ByteWriter()
        idObject.writeBE(UInt16(2 + integrity.count + encIdentity.count))
        idObject.writeBE(UInt16(integrity.count))
        idObject.writeBytes(integrity)
        idObject.writeBytes(encIdentity)
        return MadeCredential(credential: idObject.bytes, encryptedSecret: encryptedSecret)
    }

    /// KDFa (Part 1, §11.4.10.2; NIST SP 800-108 counter mode with HMAC-`hash`):
    /// `HMAC(key, [i]₃₂ ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ [bits]₃₂)` for i = 1, 2, …,
    /// truncated to `bits`.
    public static func kdfa(
        hash: HashAlgorithm, key: [UInt8], label: String, contextU: [UInt8], contextV: [UInt8], bits: Int
    ) throws(CryptoError) -> [UInt8] {
        guard bits > 0, bits % 8 == 0, bits <= 8192 else { throw CryptoError("KDFa", "\(bits) bits requested") }
        var output: [UInt8] = []
        var counter: UInt32 = 1
        while output.count < bits / 8 {
            var block = ByteWriter()
            block.writeBE(counter)
            block.writeBytes(Array(label.utf8) + [0])
            block.writeBytes(contextU)
            block.writeBytes(contextV)
            block.writeBE(UInt32(bits))
            output += try hmac(hash, key: key, message: block.bytes)
            counter += 1
        }
        return Array(output.prefix(bits / 8))
    }

    /// KDFe (Part 1, §11.4.10.3; NIST SP 800-56A concatenation KDF):
    /// `H([i]₃₂ ‖ Z ‖ label ‖ 0x00 ‖ partyU ‖ partyV)` for i = 1, 2, …, truncated to `bits`.
    public static func kdfe(
        hash: HashAlgorithm, z: [UInt8], label: String, partyU: [UInt8], partyV: [UInt8], bits: Int
    ) throws(CryptoError) -> [UInt8] {
        guard bits > 0, bits % 8 == 0, bits <= 8192 else { throw CryptoError("KDFe", "\(bits) bits requested") }
        var output: [UInt8] = []
        var counter: UInt32 = 1
        while output.count < bits / 8 {
            var block = ByteWriter()
            block.writeBE(counter)
            block.writeBytes(z)
            block.writeBytes(Array(label.utf8) + [0])
            block.writeBytes(partyU)
            block.writeBytes(partyV)
            guard let digest = OpenSSLHashing().hash(block.bytes, with: hash) else {
                throw CryptoError("KDFe", "OpenSSL cannot hash \(hash)")
            }
            output += digest
            counter += 1
        }
        return Array(output.prefix(bits / 8))
    }

    /// HMAC-`hash` (RFC 2104) with OpenSSL's one-shot `HMAC()`.
    public static func hmac(_ hash: HashAlgorithm, key: [UInt8], message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let md = FetchedDigests.shared.md(for: hash) else { throw CryptoError("HMAC", "OpenSSL cannot hash \(hash)") }
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                HMAC(
                    md, keyBytes.baseAddress, Int32(keyBytes.count),
                    messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), messageBytes.count, &output, &length)
            }
        }
        guard result != nil else { throw CryptoError.openSSL("HMAC(\(hash))") }
        return Array(output.prefix(Int(length)))
    }

    /// `count` bytes from OpenSSL's CSPRNG (`RAND_bytes`).
    public static func randomBytes(_ count: Int) throws(CryptoError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&bytes, Int32(count)) == 1 else { throw CryptoError.openSSL("RAND_bytes") }
        return bytes
    }

    /// AES-{128,192,256}-CFB128 with a zero IV (Part 1, §24.4: the key is used once).
    static func aesCFBEncrypt(_ plain: [UInt8], key: [UInt8]) throws(CryptoError) -> [UInt8] {
        let cipherName: String
        switch key.count {
        case 16: cipherName = "AES-128-CFB"
        case 24: cipherName = "AES-192-CFB"
        case 32: cipherName = "AES-256-CFB"
        default: throw CryptoError("AES-CFB", "\(key.count)-byte key")
        }
        guard let cipher = EVP_CIPHER_fetch(nil, cipherName, nil) else { throw CryptoError.openSSL("EVP_CIPHER_fetch(\(cipherName))") }
        defer { EVP_CIPHER_free(cipher) }
        guard let context = EVP_CIPHER_CTX_new() else { throw CryptoError.openSSL("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        let iv = [UInt8](repeating: 0, count: 16)
        guard EVP_EncryptInit_ex2(context, cipher, key, iv, nil) == 1 else { throw CryptoError.openSSL("EVP_EncryptInit_ex2") }
        var output = [UInt8](repeating: 0, count: plain.count + 32)
        var written: Int32 = 0
        var final: Int32 = 0
        let ok = output.withUnsafeMutableBufferPointer { out -> Bool in
            guard EVP_EncryptUpdate(context, out.baseAddress, &written, plain, Int32(plain.count)) == 1 else { return false }
            return EVP_EncryptFinal_ex(context, out.baseAddress.map { $0 + Int(written) }, &final) == 1
        }
        guard ok else { throw CryptoError.openSSL("AES-CFB encrypt") }
        return Array(output.prefix(Int(written + final)))
    }

    static func rsaOAEPEncrypt(_ plain: [UInt8], key: PublicKey, hash: HashAlgorithm, label: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let md = FetchedDigests.shared.md(for: hash) else { throw CryptoError("RSA-OAEP", "OpenSSL cannot hash \(hash)") }
        guard let context = EVP_PKEY_CTX_new_from_pkey(nil, key.key, nil) else { throw CryptoError.openSSL("EVP_PKEY_CTX_new_from_pkey") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_encrypt_init(context) == 1,
            COpenSSL_EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_OAEP_PADDING) == 1,
            EVP_PKEY_CTX_set_rsa_oaep_md(context, md) == 1,
            EVP_PKEY_CTX_set_rsa_mgf1_md(context, md) == 1
        else { throw CryptoError.openSSL("RSA-OAEP setup") }
        // set0 takes ownership of an OPENSSL_malloc'd label.
        guard let labelCopy = CRYPTO_malloc(label.count, nil, 0) else { throw CryptoError.openSSL("CRYPTO_malloc") }
        label.withUnsafeBytes { labelCopy.copyMemory(from: $0.baseAddress!, byteCount: label.count) }
        guard EVP_PKEY_CTX_set0_rsa_oaep_label(context, labelCopy, Int32(label.count)) == 1 else {
            CRYPTO_free(labelCopy, nil, 0)
            throw CryptoError.openSSL("EVP_PKEY_CTX_set0_rsa_oaep_label")
        }
        var length = 0
        guard EVP_PKEY_encrypt(context, nil, &length, plain, plain.count) == 1 else { throw CryptoError.openSSL("EVP_PKEY_encrypt") }
        var output = [UInt8](repeating: 0, count: length)
        guard EVP_PKEY_encrypt(context, &output, &length, plain, plain.count) == 1 else { throw CryptoError.openSSL("EVP_PKEY_encrypt") }
        return Array(output.prefix(length))
    }

    /// An ephemeral key on `peer`'s curve and the ECDH shared x-coordinate:
    /// (Z, ephemeral X, ephemeral Y), coordinates at the curve's full size.
    static func ephemeralECDH(with peer: PublicKey) throws(CryptoError) -> ([UInt8], [UInt8], [UInt8]) {
        var groupName = [CChar](repeating: 0, count: 64)
        var groupLength = 0
        guard EVP_PKEY_get_utf8_string_param(peer.key, OSSL_PKEY_PARAM_GROUP_NAME, &groupName, groupName.count, &groupLength) == 1,
            let keygen = EVP_PKEY_CTX_new_from_name(nil, "EC", nil)
        else { throw CryptoError.openSSL("ECDH: EK curve") }
        defer { EVP_PKEY_CTX_free(keygen) }
        var ephemeral: OpaquePointer?
        guard EVP_PKEY_keygen_init(keygen) == 1, EVP_PKEY_CTX_set_group_name(keygen, groupName) == 1,
            EVP_PKEY_keygen(keygen, &ephemeral) == 1, let ephemeral
        else { throw CryptoError.openSSL("ECDH: ephemeral key") }
        defer { EVP_PKEY_free(ephemeral) }
        guard let derive = EVP_PKEY_CTX_new_from_pkey(nil, ephemeral, nil) else { throw CryptoError.openSSL("EVP_PKEY_CTX_new_from_pkey") }
        defer { EVP_PKEY_CTX_free(derive) }
        var zLength = 0
        guard EVP_PKEY_derive_init(derive) == 1, EVP_PKEY_derive_set_peer(derive, peer.key) == 1,
            EVP_PKEY_derive(derive, nil, &zLength) == 1
        else { throw CryptoError.openSSL("ECDH derive") }
        var z = [UInt8](repeating: 0, count: zLength)
        guard EVP_PKEY_derive(derive, &z, &zLength) == 1 else { throw CryptoError.openSSL("ECDH derive") }
        var point = [UInt8](repeating: 0, count: 1 + 2 * 66)
        var pointLength = 0
        guard EVP_PKEY_get_octet_string_param(ephemeral, OSSL_PKEY_PARAM_PUB_KEY, &point, point.count, &pointLength) == 1,
            pointLength > 1, pointLength % 2 == 1, point[0] == 0x04
        else { throw CryptoError.openSSL("ECDH: ephemeral public point") }
        let size = (pointLength - 1) / 2
        return (Array(z.prefix(zLength)), Array(point[1..<(1 + size)]), Array(point[(1 + size)..<(1 + 2 * size)]))
    }

    static func leftPad(_ bytes: [UInt8], _ size: Int) -> [UInt8] {
        bytes.count >= size ? bytes : [UInt8](repeating: 0, count: size - bytes.count) + bytes
    }
}
