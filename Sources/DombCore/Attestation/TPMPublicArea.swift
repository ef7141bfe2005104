//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A TPM object's public area, `TPMT_PUBLIC` (TPM 2.0 Part 2, §12.2.4), decoded from the
/// marshalled `TPM2B_PUBLIC` that tpm2-tools (`-f tss`), Keylime (`ek_tpm`, `aik_tpm`) and
/// domb's enrolment files carry.
///
/// Only RSA and ECC keys are accepted. The exact `TPMT_PUBLIC` bytes are kept, because the
/// object's name is computed over them (``name(hashing:)``), never over a re-encoding.
public struct TPMPublicArea: Hashable, Sendable {
    /// `TPMA_OBJECT` bits (Part 2, §8.3).
    public struct Attributes: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let fixedTPM = Attributes(rawValue: 1 << 1)
        public static let stClear = Attributes(rawValue: 1 << 2)
        public static let fixedParent = Attributes(rawValue: 1 << 4)
        public static let sensitiveDataOrigin = Attributes(rawValue: 1 << 5)
        public static let userWithAuth = Attributes(rawValue: 1 << 6)
        public static let adminWithPolicy = Attributes(rawValue: 1 << 7)
        public static let noDA = Attributes(rawValue: 1 << 10)
        public static let encryptedDuplication = Attributes(rawValue: 1 << 11)
        public static let restricted = Attributes(rawValue: 1 << 16)
        public static let decrypt = Attributes(rawValue: 1 << 17)
        public static let sign = Attributes(rawValue: 1 << 18)

        /// Names of the set bits, tpm2-tools style ("fixedtpm|fixedparent|…").
        public var names: [String] {
            let table: [(Attributes, String)] = [
                (.fixedTPM, "fixedtpm"), (.stClear, "stclear"), (.fixedParent, "fixedparent"),
                (.sensitiveDataOrigin, "sensitivedataorigin"), (.userWithAuth, "userwithauth"),
                (.adminWithPolicy, "adminwithpolicy"), (.noDA, "noda"), (.encryptedDuplication, "encryptedduplication"),
                (.restricted, "restricted"), (.decrypt, "decrypt"), (.sign, "sign"),
            ]
            return table.filter { contains($0.0) }.map(\.1)
        }
    }

    /// `TPM_ALG_ID` values used here (Part 2, §6.3).
    public enum Algorithm {
        public static let rsa: UInt16 = 0x0001
        public static let aes: UInt16 = 0x0006
        public static let null: UInt16 = 0x0010
        public static let rsassa: UInt16 = 0x0014
        public static let rsapss: UInt16 = 0x0016
        public static let ecdsa: UInt16 = 0x0018
        public static let ecc: UInt16 = 0x0023
        public static let cfb: UInt16 = 0x0043
    }

    /// `TPMT_SYM_DEF_OBJECT`: the symmetric algorithm of a storage (decrypt) key, used by
    /// credential protection (Part 1, §24.4); `algorithm` is `TPM_ALG_NULL` for signing keys.
    public struct Symmetric: Hashable, Sendable {
        public var algorithm: UInt16
        public var keyBits: UInt16
        public var mode: UInt16
    }

    public enum Parameters: Hashable, Sendable {
        case rsa(symmetric: Symmetric, scheme: UInt16, schemeHash: HashAlgorithm?, keyBits: UInt16, exponent: UInt32)
        case ecc(symmetric: Symmetric, scheme: UInt16, schemeHash: HashAlgorithm?, curve: UInt16, kdf: UInt16)
    }

    /// The exact marshalled `TPMT_PUBLIC` (without the TPM2B size).
    public let bytes: [UInt8]
    public let nameAlgorithm: HashAlgorithm
    public let attributes: Attributes
    public let authPolicy: [UInt8]
    public let parameters: Parameters
    /// The public key (`unique`).
    public let key: AttestationKeyPublic

    /// Largest `TPM2B_PUBLIC` accepted: `sizeof(TPMT_PUBLIC)` is below 1 KiB for every key
    /// domb supports (RSA 4096 has a 512-byte modulus).
    public static let maximumSize = 1024

    /// Decodes a marshalled `TPM2B_PUBLIC` (big-endian, size-prefixed), refusing trailing bytes.
    public init(tpm2bPublic data: [UInt8]) throws(ParseError) {
        guard data.count <= Self.maximumSize + 2 else {
            throw .limit("TPM2B_PUBLIC is \(data.count) bytes, more than \(Self.maximumSize + 2)")
        }
        var reader = ByteReader(data)
        let inner = try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "TPM2B_PUBLIC")
        try reader.expectEnd("TPM2B_PUBLIC")
        try self.init(tpmtPublic: Array(inner))
    }

    /// Decodes a marshalled `TPMT_PUBLIC`, refusing trailing bytes.
    public init(tpmtPublic data: [UInt8]) throws(ParseError) {
        guard data.count <= Self.maximumSize else {
            throw .limit("TPMT_PUBLIC is \(data.count) bytes, more than \(Self.maximumSize)")
        }
        var reader = ByteReader(data)
        let type = try reader.readBE(UInt16.self, "TPMT_PUBLIC.type")
        let nameAlg = HashAlgorithm(rawValue: try reader.readBE(UInt16.self, "TPMT_PUBLIC.nameAlg"))
        guard nameAlg.digestSize != nil else {
            throw ParseError(.unsupported, "TPMT_PUBLIC.nameAlg 0x\(String(nameAlg.rawValue, radix: 16)) is not a hash domb knows")
        }
        let attributes = Attributes(rawValue: try reader.readBE(UInt32.self, "TPMT_PUBLIC.objectAttributes"))
        let policy = Array(try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "TPMT_PUBLIC.authPolicy"))
        guard policy.count <= 64 else { throw .invalid("TPMT_PUBLIC.authPolicy is \(policy.count) bytes, more than a digest") }

        func symmetric() throws(ParseError) -> Symmetric {
            let algorithm = try reader.readBE(UInt16.self, "symmetric.algorithm")
            guard algorithm != Algorithm.null else { return Symmetric(algorithm: algorithm, keyBits: 0, mode: Algorithm.null) }
            let bits = try reader.readBE(UInt16.self, "symmetric.keyBits")
            let mode = try reader.readBE(UInt16.self, "symmetric.mode")
            return Symmetric(algorithm: algorithm, keyBits: bits, mode: mode)
        }
        func scheme() throws(ParseError) -> (UInt16, HashAlgorithm?) {
            let scheme = try reader.readBE(UInt16.self, "scheme")
            guard scheme != Algorithm.null else { return (scheme, nil) }
            // Every signing and encryption scheme of Part 2 §11.2 has a hash (ECDAA adds a count).
            let hash = HashAlgorithm(rawValue: try reader.readBE(UInt16.self, "scheme.hashAlg"))
            if scheme == 0x001A { _ = try reader.readBE(UInt16.self, "scheme.count") }  // TPM_ALG_ECDAA
            return (scheme, hash)
        }
        func buffer(_ field: String, max: Int) throws(ParseError) -> [UInt8] {
            let bytes = Array(try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: field))
            guard !bytes.isEmpty, bytes.count <= max else {
                throw .invalid("\(field) is \(bytes.count) bytes, expected 1 to \(max)")
            }
            return bytes
        }

        switch type {
        case Algorithm.rsa:
            let sym = try symmetric()
            let (sch, hash) = try scheme()
            let bits = try reader.readBE(UInt16.self, "rsaDetail.keyBits")
            let exponent = try reader.readBE(UInt32.self, "rsaDetail.exponent")
            guard [1024, 2048, 3072, 4096].contains(bits) else { throw ParseError(.unsupported, "RSA key of \(bits) bits") }
            let modulus = try buffer("unique.rsa", max: 512)
            guard modulus.count == Int(bits) / 8 else {
                throw .invalid("unique.rsa is \(modulus.count) bytes for a \(bits)-bit key")
            }
            self.parameters = .rsa(symmetric: sym, scheme: sch, schemeHash: hash, keyBits: bits, exponent: exponent)
            self.key = .rsa(modulus: modulus, exponent: exponent)
        case Algorithm.ecc:
            let sym = try symmetric()
            let (sch, hash) = try scheme()
            let curveID = try reader.readBE(UInt16.self, "eccDetail.curveID")
            let kdf = try reader.readBE(UInt16.self, "eccDetail.kdf.scheme")
            if kdf != Algorithm.null { _ = try reader.readBE(UInt16.self, "eccDetail.kdf.hashAlg") }
            guard let curve = AttestationKeyPublic.ECCCurve(rawValue: curveID) else {
                throw ParseError(.unsupported, "ECC curve 0x\(String(curveID, radix: 16)) (domb knows NIST P-256, P-384, P-521)")
            }
            let x = try buffer("unique.ecc.x", max: curve.coordinateSize)
            let y = try buffer("unique.ecc.y", max: curve.coordinateSize)
            self.parameters = .ecc(symmetric: sym, scheme: sch, schemeHash: hash, curve: curveID, kdf: kdf)
            self.key = .ecc(curve: curve, x: x, y: y)
        default:
            throw ParseError(.unsupported, "TPMT_PUBLIC.type 0x\(String(type, radix: 16)) (domb takes RSA and ECC keys)")
        }
        try reader.expectEnd("TPMT_PUBLIC")
        self.bytes = data
        self.nameAlgorithm = nameAlg
        self.attributes = attributes
        self.authPolicy = policy
    }

    /// The marshalled `TPM2B_PUBLIC`.
    public var tpm2bPublic: [UInt8] {
        var writer = ByteWriter(capacity: bytes.count + 2)
        writer.writeBE(UInt16(bytes.count))
        writer.writeBytes(bytes)
        return writer.bytes
    }

    /// The object's name, `nameAlg ‖ H_nameAlg(TPMT_PUBLIC)` (Part 1, §16). Nil if the
    /// hash is not available.
    public func name(hashing: some AttestationHashing) -> [UInt8]? {
        guard let digest = hashing.hash(bytes, with: nameAlgorithm) else { return nil }
        return [UInt8(nameAlgorithm.rawValue >> 8), UInt8(nameAlgorithm.rawValue & 0xFF)] + digest
    }

    public var symmetric: Symmetric {
        switch parameters {
        case .rsa(let symmetric, _, _, _, _), .ecc(let symmetric, _, _, _, _): symmetric
        }
    }

    /// Why this key cannot be an attestation key, or nil if it can: the attributes
    /// `tpm2_createak` sets and a verifier relies on — restricted (signs only TPM-made
    /// structures), sign, not decrypt, fixedTPM and fixedParent (never duplicated out of this
    /// TPM), sensitiveDataOrigin (generated inside it) — and an ECDSA/RSASSA/RSAPSS scheme.
    public var attestationKeyProblem: String? {
        let required: [(Attributes, String)] = [
            (.restricted, "restricted"), (.sign, "sign"), (.fixedTPM, "fixedTPM"), (.fixedParent, "fixedParent"),
            (.sensitiveDataOrigin, "sensitiveDataOrigin"),
        ]
        let missing = required.filter { !attributes.contains($0.0) }.map(\.1)
        if !missing.isEmpty {
            return "the key lacks \(missing.joined(separator: ", ")) (attributes: \(attributes.names.joined(separator: "|")))"
        }
        if attributes.contains(.decrypt) { return "the key is also a decryption key" }
        switch parameters {
        case .rsa(_, let scheme, _, _, _) where scheme != Algorithm.rsassa && scheme != Algorithm.rsapss:
            return "RSA signing scheme 0x\(String(scheme, radix: 16)) is not RSASSA or RSAPSS"
        case .ecc(_, let scheme, _, _, _) where scheme != Algorithm.ecdsa:
            return "ECC signing scheme 0x\(String(scheme, radix: 16)) is not ECDSA"
        default:
            return nil
        }
    }

    /// Why this key cannot be an endorsement key used for credential activation, or nil:
    /// a restricted decryption (storage) key with an AES-CFB symmetric algorithm (Part 1,
    /// §24; TCG EK Credential Profile §2.2.1).
    public var endorsementKeyProblem: String? {
        guard attributes.contains(.restricted), attributes.contains(.decrypt), !attributes.contains(.sign) else {
            return "not a restricted decryption key (attributes: \(attributes.names.joined(separator: "|")))"
        }
        let symmetric = symmetric
        guard symmetric.algorithm == Algorithm.aes, symmetric.mode == Algorithm.cfb,
            [128, 192, 256].contains(symmetric.keyBits)
        else {
            return "symmetric algorithm 0x\(String(symmetric.algorithm, radix: 16)) mode 0x\(String(symmetric.mode, radix: 16)) is not AES-CFB"
        }
        return nil
    }
}
