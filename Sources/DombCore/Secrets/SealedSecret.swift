//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A secret sealed by `domb seal` (docs/secrets.md, "The sealed file"): a TPM sealed data
/// object (`TPM_ALG_KEYEDHASH`) under the storage root key, whose `authPolicy` is
/// `PolicyAuthorize(PCR-policy key, policyRef)` (then `PolicyAuthValue` with a PIN).
///
/// `public` and `private` are the `TPM2B_PUBLIC` and `TPM2B_PRIVATE` that `TPM2_Create`
/// returned, exactly as `tpm2_create -u/-r` writes them, so tpm2-tools can load them too.
/// The rest says what they need: which parent, which key, which reference, whether a PIN.
/// Only the TPM that sealed it can load the object (its parent's seed never leaves it).
public struct SealedSecret: Hashable, Sendable {
    public static let format = JSONFormat.sealedSecret.name
    public static let currentFormatVersion = JSONFormat.sealedSecret.version
    /// Largest sealed file read.
    public static let maximumFileSize = 64 << 10
    /// Most bytes a sealed data object holds on every TPM (`MAX_SYM_DATA`, Part 2 §10.4.3).
    public static let maximumSecretSize = 128
    /// Longest PIN: the object's authValue is at most its name algorithm's digest size.
    public static let maximumPINSize = 32

    /// The parent the object was created under.
    public enum Parent: Hashable, Sendable {
        /// The primary key of the owner hierarchy made from ``StorageRootKey/eccP256`` each time
        /// (the same key every time: the owner seed does not change until the TPM is cleared).
        case storageRootKey(name: [UInt8])
    }

    public var parent: Parent
    /// The PCR-policy key's TPM name (``ExternalSigningKey``).
    public var policyKeyName: [UInt8]
    /// SHA-256 of the key's DER `SubjectPublicKeyInfo`, to name it to people.
    public var policyKeyFingerprint: [UInt8]
    public var policyRef: [UInt8]
    /// Whether unsealing needs a PIN (`PolicyAuthValue`).
    public var requiresPIN: Bool
    /// The object's `authPolicy`: recomputed by ``expectedAuthPolicy(hashing:)`` on load.
    public var authPolicy: [UInt8]
    public var publicArea: [UInt8]
    public var privateArea: [UInt8]

    public init(
        parent: Parent, policyKeyName: [UInt8], policyKeyFingerprint: [UInt8], policyRef: [UInt8], requiresPIN: Bool,
        authPolicy: [UInt8], publicArea: [UInt8], privateArea: [UInt8]
    ) {
        self.parent = parent
        self.policyKeyName = policyKeyName
        self.policyKeyFingerprint = policyKeyFingerprint
        self.policyRef = policyRef
        self.requiresPIN = requiresPIN
        self.authPolicy = authPolicy
        self.publicArea = publicArea
        self.privateArea = privateArea
    }

    /// The `authPolicy` a sealed object bound to `keyName` and `policyRef` has:
    /// `PolicyAuthorize`, then `PolicyAuthValue` when a PIN is required.
    public static func authPolicy(
        keyName: [UInt8], policyRef: [UInt8], requiresPIN: Bool, hashing: some AttestationHashing
    ) throws(ParseError) -> [UInt8] {
        var digest = try PolicyDigest(algorithm: SignedPCRPolicy.policyAlgorithm)
        try digest.extendPolicyAuthorize(keyName: keyName, policyRef: policyRef, hashing: hashing)
        if requiresPIN { try digest.extendPolicyAuthValue(hashing: hashing) }
        return digest.bytes
    }

    /// Checks that the recorded `authPolicy`, the one inside the public area and the one
    /// the key, reference and PIN flag give all agree.
    /// - Throws: ``ParseError`` saying which differs.
    public func checkConsistency(hashing: some AttestationHashing) throws(ParseError) {
        let expected = try Self.authPolicy(
            keyName: policyKeyName, policyRef: policyRef, requiresPIN: requiresPIN, hashing: hashing)
        guard expected == authPolicy else {
            throw .invalid("authPolicy \(authPolicy.hexString) is not PolicyAuthorize(key, policyRef)\(requiresPIN ? " + PolicyAuthValue" : "") = \(expected.hexString)")
        }
        guard try Self.authPolicy(ofPublicArea: publicArea) == authPolicy else {
            throw .invalid("the object's public area carries another authPolicy than the file records")
        }
    }

    /// The `authPolicy` field of a marshalled `TPM2B_PUBLIC` (Part 2, §12.2.4: type,
    /// nameAlg, objectAttributes, then the policy as a `TPM2B_DIGEST`).
    public static func authPolicy(ofPublicArea bytes: [UInt8]) throws(ParseError) -> [UInt8] {
        var reader = ByteReader(bytes)
        let inner = try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "TPM2B_PUBLIC")
        try reader.expectEnd("TPM2B_PUBLIC")
        var area = ByteReader(slice: inner, baseOffset: 2)
        let type = try area.readBE(UInt16.self, "TPMT_PUBLIC.type")
        guard type == 0x0008 else {  // TPM_ALG_KEYEDHASH
            throw .invalid("the object is of type 0x\(String(type, radix: 16)), not a sealed data object (keyedhash)")
        }
        _ = try area.readBE(UInt16.self, "TPMT_PUBLIC.nameAlg")
        _ = try area.readBE(UInt32.self, "TPMT_PUBLIC.objectAttributes")
        return Array(try area.readLengthPrefixed(UInt16.self, endianness: .big, field: "TPMT_PUBLIC.authPolicy"))
    }

    // MARK: JSON

    public var json: JSONValue {
        let parentJSON: JSONValue
        switch parent {
        case .storageRootKey(let name):
            parentJSON = .object(["template": .string(StorageRootKey.eccP256.name), "name": .string(name.hexString)])
        }
        return .object([
            "format": .string(Self.format),
            "formatVersion": .integer(Self.currentFormatVersion),
            "parent": parentJSON,
            "policyKeyName": .string(policyKeyName.hexString),
            "policyKeyFingerprint": .string(policyKeyFingerprint.hexString),
            "policyRef": .string(policyRef.hexString),
            "pin": .bool(requiresPIN),
            "authPolicy": .string(authPolicy.hexString),
            "public": .string(publicArea.hexString),
            "private": .string(privateArea.hexString),
        ])
    }

    /// The file: canonical JSON and a newline.
    public var fileBytes: [UInt8] { json.canonicalBytes + [0x0A] }

    /// Parses a sealed file (whitespace is allowed: people copy these around).
    /// - Throws: ``ParseError`` naming the key that is wrong.
    public init(fileBytes bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= Self.maximumFileSize else {
            throw .limit("a sealed file is at most \(Self.maximumFileSize) bytes; this one has \(bytes.count)")
        }
        let root = try JSONObjectReader(try JSONValue(parsing: bytes), at: "sealed")
        try root.onlyKeys(required: [
            "format", "formatVersion", "parent", "policyKeyName", "policyKeyFingerprint", "policyRef", "pin", "authPolicy",
            "public", "private",
        ])
        guard try root.string("format") == Self.format else { throw .invalid("sealed.format is not \"\(Self.format)\": not a domb sealed secret") }
        let version = try root.integer("formatVersion")
        guard version == Self.currentFormatVersion else {
            throw ParseError(.unsupported, "sealed.formatVersion \(version) is not supported (this domb reads \(Self.currentFormatVersion))")
        }
        let parentObject = try JSONObjectReader(root.object["parent"] ?? .null, at: "sealed.parent")
        try parentObject.onlyKeys(required: ["template", "name"])
        let template = try parentObject.string("template")
        guard template == StorageRootKey.eccP256.name else {
            throw ParseError(.unsupported, "sealed.parent.template \"\(template)\" (this domb knows \"\(StorageRootKey.eccP256.name)\")")
        }
        parent = .storageRootKey(name: try parentObject.hex("name", count: 34))
        policyKeyName = try root.hex("policyKeyName", count: 34)
        policyKeyFingerprint = try root.hex("policyKeyFingerprint", count: 32)
        policyRef = try root.hex("policyRef", count: nil)
        guard policyRef.count <= PolicyDigest.maximumPolicyRefSize else {
            throw .invalid("sealed.policyRef is \(policyRef.count) bytes, more than \(PolicyDigest.maximumPolicyRefSize)")
        }
        requiresPIN = try root.bool("pin")
        authPolicy = try root.hex("authPolicy", count: 32)
        publicArea = try root.hex("public", count: nil)
        privateArea = try root.hex("private", count: nil)
        guard (4...1024).contains(publicArea.count), (4...2048).contains(privateArea.count) else {
            throw .invalid("sealed.public (\(publicArea.count) bytes) or sealed.private (\(privateArea.count) bytes) has an impossible size")
        }
        var privateReader = ByteReader(privateArea)
        _ = try privateReader.readLengthPrefixed(UInt16.self, endianness: .big, field: "TPM2B_PRIVATE")
        try privateReader.expectEnd("TPM2B_PRIVATE")
        guard try Self.authPolicy(ofPublicArea: publicArea) == authPolicy else {
            throw .invalid("sealed.public carries another authPolicy than sealed.authPolicy")
        }
    }
}

/// The storage root key domb seals under: a primary key of the owner hierarchy, made from
/// a fixed template, so the same key comes back after every reboot without being stored.
///
/// ``eccP256`` is the SRK template of the TCG TPM v2.0 Provisioning Guidance (§7.5.1) with
/// an empty `unique`, which `tpm2_createprimary -C o -g sha256 -G ecc256:null:aes128cfb -a
/// 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt'` makes
/// too: an ECC key is made in milliseconds where an RSA primary takes up to seconds.
public struct StorageRootKey: Hashable, Sendable {
    public let name: String
    /// The `tpm2_createprimary` arguments that make the same key.
    public let tpm2ToolsArguments: [String]

    public static let eccP256 = StorageRootKey(
        name: "ecc-p256-srk",
        tpm2ToolsArguments: [
            "-C", "o", "-g", "sha256", "-G", "ecc256:null:aes128cfb", "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
        ])
}
