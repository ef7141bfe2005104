//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The signed PCR policy a bundle carries (`pcr-policy.json`, docs/secrets.md): for each
/// bank, the `TPM2_PolicyPCR` digest of the launch's predicted PCR values, signed by the
/// PCR-policy key as `TPM2_PolicyAuthorize` expects (DESIGN decision 12).
///
/// A secret sealed to `PolicyAuthorize(key, policyRef)` unseals after any launch whose
/// PCRs match a policy the key signed; so each release signs the policy for its own PCRs
/// and old sealed objects keep working. The format follows systemd's `.pcrsig`
/// (`{"sha256":[{"pcrs":[11],"pkfp":…,"pol":…,"sig":…}]}`), with the PCR values spelled
/// out so that a reader can check them against the manifest's predicted PCRs.
///
/// Serialised as canonical JSON (hex for binary fields, the key as PEM text).
public struct SignedPCRPolicy: Hashable, Sendable {
    public static let format = JSONFormat.signedPCRPolicy.name
    public static let currentFormatVersion = JSONFormat.signedPCRPolicy.version
    /// The policy session's hash: every policy digest here is SHA-256 (as systemd's).
    public static let policyAlgorithm = HashAlgorithm.sha256
    /// Most policies one bundle carries (banks × policy references).
    public static let maximumPolicies = 64
    /// Largest `pcr-policy.json` read: 64 policies of a few hundred bytes each fit many times.
    public static let maximumSize = 1 << 20

    /// One signed `TPM2_PolicyPCR` digest.
    public struct Policy: Hashable, Sendable {
        /// The PCR bank the values are read from (`TPMS_PCR_SELECTION.hash`).
        public var bank: HashAlgorithm
        /// The launch PCRs, ascending.
        public var pcrs: [Int]
        /// The predicted value of each PCR in `bank`.
        public var pcrValues: [Int: [UInt8]]
        /// The `policyRef` the signature covers (empty by default, as systemd's).
        public var policyRef: [UInt8]
        /// `TPM2_PolicyPCR` from a fresh session: the `approvedPolicy`.
        public var policyDigest: [UInt8]
        /// The key's signature over `policyDigest ‖ policyRef` with SHA-256 (DER ECDSA or
        /// RSASSA-PSS, as `openssl dgst -sha256 -sign` makes it).
        public var signature: [UInt8]

        public init(
            bank: HashAlgorithm, pcrs: [Int], pcrValues: [Int: [UInt8]], policyRef: [UInt8], policyDigest: [UInt8],
            signature: [UInt8]
        ) {
            self.bank = bank
            self.pcrs = pcrs
            self.pcrValues = pcrValues
            self.policyRef = policyRef
            self.policyDigest = policyDigest
            self.signature = signature
        }

        /// The `TPML_PCR_SELECTION` of `TPM2_PolicyPCR`: `pcrs` in `bank`.
        public var selection: PCRSelection { PCRSelection([.init(bank, pcrs)]) }

        /// The PCR values as ``PCRValues``.
        public var values: PCRValues {
            var values = PCRValues()
            for (pcr, value) in pcrValues { values[bank, pcr] = value }
            return values
        }

        /// The policy digest recomputed from the PCR values (to compare with ``policyDigest``).
        public func computedPolicyDigest(hashing: some AttestationHashing) throws(ParseError) -> [UInt8] {
            var digest = try PolicyDigest(algorithm: SignedPCRPolicy.policyAlgorithm)
            let pcrDigest = try PolicyDigest.pcrDigest(
                values, selection: selection, algorithm: SignedPCRPolicy.policyAlgorithm, hashing: hashing)
            try digest.extendPolicyPCR(selection: selection, pcrDigest: pcrDigest, hashing: hashing)
            return digest.bytes
        }

        /// `approvedPolicy ‖ policyRef`, the message signed.
        public var signedMessage: [UInt8] { policyDigest + policyRef }
    }

    /// The key's `SubjectPublicKeyInfo` as PEM text (what `openssl dgst -verify` takes).
    public var publicKeyPEM: String
    /// The key's TPM name as ``ExternalSigningKey`` builds it: what sealed objects are bound to.
    public var keyName: [UInt8]
    /// SHA-256 of the DER `SubjectPublicKeyInfo` (systemd's `pkfp`), to name the key to people.
    public var keyFingerprint: [UInt8]
    public var policies: [Policy]

    public init(publicKeyPEM: String, keyName: [UInt8], keyFingerprint: [UInt8], policies: [Policy]) {
        self.publicKeyPEM = publicKeyPEM
        self.keyName = keyName
        self.keyFingerprint = keyFingerprint
        self.policies = policies
    }

    /// The policy for `bank` and `policyRef`, if the bundle carries one.
    public func policy(bank: HashAlgorithm, policyRef: [UInt8]) -> Policy? {
        policies.first { $0.bank == bank && $0.policyRef == policyRef }
    }

    // MARK: JSON

    public var json: JSONValue {
        .object([
            "format": .string(Self.format),
            "formatVersion": .integer(Self.currentFormatVersion),
            "publicKey": .string(publicKeyPEM),
            "keyName": .string(keyName.hexString),
            "keyFingerprint": .string(keyFingerprint.hexString),
            "policies": .array(
                policies.map { policy in
                    .object([
                        "bank": .string(policy.bank.name),
                        "pcrs": .array(policy.pcrs.map { .integer(Int64($0)) }),
                        "pcrValues": .object(
                            Dictionary(uniqueKeysWithValues: policy.pcrValues.map { (String($0.key), .string($0.value.hexString)) })),
                        "policyRef": .string(policy.policyRef.hexString),
                        "policyDigest": .string(policy.policyDigest.hexString),
                        "signature": .string(policy.signature.hexString),
                    ])
                }),
        ])
    }

    public var canonicalBytes: [UInt8] { json.canonicalBytes }

    /// Decodes and checks the structure of a policy file in canonical form: known keys only,
    /// hex of the right lengths, PCR lists that match their values, one policy per (bank,
    /// policyRef). The signatures and digests are checked by the verifier (DombLaunch), which
    /// has the crypto.
    /// - Throws: ``ParseError`` naming the key path that is wrong.
    public init(canonicalBytes bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= Self.maximumSize else {
            throw .limit("pcr-policy.json is \(bytes.count) bytes, more than \(Self.maximumSize)")
        }
        let root = try JSONObjectReader(try JSONValue(canonical: bytes), at: "pcr-policy")
        try root.onlyKeys(required: ["format", "formatVersion", "publicKey", "keyName", "keyFingerprint", "policies"])
        guard try root.string("format") == Self.format else { throw .invalid("pcr-policy.format is not \"\(Self.format)\"") }
        let version = try root.integer("formatVersion")
        guard version == Self.currentFormatVersion else {
            throw ParseError(.unsupported, "pcr-policy.formatVersion \(version) is not supported (this domb reads \(Self.currentFormatVersion))")
        }
        publicKeyPEM = try root.string("publicKey")
        guard publicKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----") else {
            throw .invalid("pcr-policy.publicKey is not a PEM public key")
        }
        keyName = try root.hex("keyName", count: 2 + 32)
        guard keyName.prefix(2) == [0x00, 0x0B] else { throw .invalid("pcr-policy.keyName is not a SHA-256 name") }
        keyFingerprint = try root.hex("keyFingerprint", count: 32)
        guard let list = root.object["policies"]?.arrayValue, !list.isEmpty else {
            throw .invalid("pcr-policy.policies must be a non-empty array")
        }
        guard list.count <= Self.maximumPolicies else {
            throw .limit("pcr-policy.policies has \(list.count) entries, more than \(Self.maximumPolicies)")
        }
        var policies: [Policy] = []
        for (index, item) in list.enumerated() {
            let entry = try JSONObjectReader(item, at: "pcr-policy.policies[\(index)]")
            try entry.onlyKeys(required: ["bank", "pcrs", "pcrValues", "policyRef", "policyDigest", "signature"])
            let bankName = try entry.string("bank")
            guard let bank = HashAlgorithm(name: bankName), bank.name == bankName, let size = bank.digestSize else {
                throw .invalid("\(entry.at).bank \"\(bankName)\" is not a known bank name")
            }
            guard let pcrList = entry.object["pcrs"]?.arrayValue, !pcrList.isEmpty else {
                throw .invalid("\(entry.at).pcrs must be a non-empty array")
            }
            var pcrs: [Int] = []
            for value in pcrList {
                guard let pcr = value.integerValue, (0..<Int64(PCRValues.pcrCount)).contains(pcr) else {
                    throw .invalid("\(entry.at).pcrs holds something that is not a PCR index 0-23")
                }
                pcrs.append(Int(pcr))
            }
            guard pcrs == Array(Set(pcrs)).sorted() else { throw .invalid("\(entry.at).pcrs is not ascending without repeats") }
            let valueObject = try JSONObjectReader(entry.object["pcrValues"] ?? .null, at: "\(entry.at).pcrValues")
            guard valueObject.object.keys.sorted() == pcrs.map(String.init).sorted() else {
                throw .invalid("\(entry.at).pcrValues must hold exactly the PCRs of \(entry.at).pcrs")
            }
            var values: [Int: [UInt8]] = [:]
            for pcr in pcrs { values[pcr] = try valueObject.hex(String(pcr), count: size) }
            let policyRef = try entry.hex("policyRef", count: nil)
            guard policyRef.count <= PolicyDigest.maximumPolicyRefSize else {
                throw .invalid("\(entry.at).policyRef is \(policyRef.count) bytes, more than \(PolicyDigest.maximumPolicyRefSize)")
            }
            let signature = try entry.hex("signature", count: nil)
            guard (1...1024).contains(signature.count) else { throw .invalid("\(entry.at).signature is \(signature.count) bytes") }
            let policy = Policy(
                bank: bank, pcrs: pcrs, pcrValues: values, policyRef: policyRef,
                policyDigest: try entry.hex("policyDigest", count: 32), signature: signature)
            guard !policies.contains(where: { $0.bank == bank && $0.policyRef == policyRef }) else {
                throw .invalid("\(entry.at): a second policy for bank \(bank) and policyRef \"\(policyRef.hexString)\"")
            }
            policies.append(policy)
        }
        self.policies = policies
    }
}

/// Reads one JSON object of a domb document, naming the key path in every error.
struct JSONObjectReader {
    let object: [String: JSONValue]
    let at: String

    init(_ value: JSONValue, at: String) throws(ParseError) {
        guard let object = value.objectValue else { throw .invalid("\(at) must be an object") }
        self.object = object
        self.at = at
    }

    func onlyKeys(required: Set<String>, optional: Set<String> = []) throws(ParseError) {
        for key in required.sorted() where object[key] == nil { throw .invalid("\(at).\(key) is missing") }
        for key in object.keys.sorted() where !required.contains(key) && !optional.contains(key) {
            throw .invalid("\(at) has an unknown key \"\(key)\"")
        }
    }

    func string(_ key: String) throws(ParseError) -> String {
        guard let text = object[key]?.stringValue else { throw .invalid("\(at).\(key) must be a string") }
        return text
    }

    func integer(_ key: String) throws(ParseError) -> Int64 {
        guard let number = object[key]?.integerValue else { throw .invalid("\(at).\(key) must be an integer") }
        return number
    }

    func bool(_ key: String) throws(ParseError) -> Bool {
        guard case .bool(let flag)? = object[key] else { throw .invalid("\(at).\(key) must be true or false") }
        return flag
    }

    /// Lower-case hex without a prefix, of exactly `count` bytes when given.
    func hex(_ key: String, count: Int?) throws(ParseError) -> [UInt8] {
        let text = try string(key)
        guard !text.hasPrefix("0x"), let bytes = [UInt8](hex: text), text == bytes.hexString else {
            throw .invalid("\(at).\(key) is not lower-case hex")
        }
        if let count, bytes.count != count {
            throw .invalid("\(at).\(key) is \(bytes.count) bytes, expected \(count)")
        }
        return bytes
    }
}

extension BundleFailure.Kind {
    /// The signed PCR policy is malformed, does not follow from the predicted PCRs, or its
    /// signatures do not verify with its key.
    public static let pcrPolicy = Self("pcr policy")
}
