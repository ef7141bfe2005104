//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A TPM policy digest computed in software, the way a policy session's `policyDigest`
/// evolves (TPM 2.0 Part 1, §19.7; Part 3, §23).
///
/// Every policy command extends the digest as `H(old ‖ commandCode ‖ arguments)` with the
/// session's hash algorithm; a trial computation here gives exactly the value the TPM
/// reaches, so domb can sign a PCR policy at build time and name an `authPolicy` at seal
/// time without a TPM. All digests use one algorithm, ``algorithm`` (SHA-256 for domb's
/// policies, as systemd's).
public struct PolicyDigest: Hashable, Sendable, CustomStringConvertible {
    /// `TPM_CC` values of the policy commands domb uses (Part 2, §6.5.2).
    public enum CommandCode {
        public static let policyAuthorize: UInt32 = 0x0000_016A
        public static let policyAuthValue: UInt32 = 0x0000_016B
        public static let policyPCR: UInt32 = 0x0000_017F
    }

    public let algorithm: HashAlgorithm
    /// The digest so far.
    public private(set) var bytes: [UInt8]

    /// The digest a new policy session starts with: all zero bytes (Part 3, §11.1).
    /// - Throws: ``ParseError`` if `algorithm` has no known digest size.
    public init(algorithm: HashAlgorithm = .sha256) throws(ParseError) {
        guard let size = algorithm.digestSize else {
            throw ParseError(.unsupported, "policy hash algorithm \(algorithm) is not one domb knows")
        }
        self.algorithm = algorithm
        self.bytes = [UInt8](repeating: 0, count: size)
    }

    /// A digest computed elsewhere (a signed policy, a sealed object's `authPolicy`).
    /// - Throws: ``ParseError`` if the length does not match `algorithm`.
    public init(algorithm: HashAlgorithm, bytes: [UInt8]) throws(ParseError) {
        guard let size = algorithm.digestSize, size == bytes.count else {
            throw .invalid("a \(algorithm) policy digest has \(algorithm.digestSize ?? 0) bytes, got \(bytes.count)")
        }
        self.algorithm = algorithm
        self.bytes = bytes
    }

    public var description: String { "\(algorithm.name):\(bytes.hexString)" }

    /// `TPM2_PolicyPCR` (Part 3, §23.7): `H(old ‖ TPM_CC_PolicyPCR ‖ pcrs ‖ digestTPM)`,
    /// where `pcrs` is the marshalled `TPML_PCR_SELECTION` and `digestTPM` is
    /// ``pcrDigest(_:selection:algorithm:hashing:)`` of the selected values.
    public mutating func extendPolicyPCR(
        selection: PCRSelection, pcrDigest: [UInt8], hashing: some AttestationHashing
    ) throws(ParseError) {
        var writer = ByteWriter()
        writer.writeBytes(bytes)
        writer.writeBE(CommandCode.policyPCR)
        writer.writeBytes(selection.marshalled)
        writer.writeBytes(pcrDigest)
        bytes = try Self.hash(writer.bytes, algorithm, hashing)
    }

    /// `TPM2_PolicyAuthorize` (Part 3, §23.16) once the TPM has accepted the ticket: the
    /// digest is reset and becomes `H(H(0…0 ‖ TPM_CC_PolicyAuthorize ‖ keySign.name) ‖ policyRef)`
    /// (`PolicyUpdate`, Part 3 §23.2.3: the second hash is taken even for an empty policyRef).
    /// The result depends only on the key and the reference, never on what was approved:
    /// that is what lets one sealed object follow every policy the key signs.
    public mutating func extendPolicyAuthorize(
        keyName: [UInt8], policyRef: [UInt8], hashing: some AttestationHashing
    ) throws(ParseError) {
        var writer = ByteWriter()
        writer.writeZeros(bytes.count)
        writer.writeBE(CommandCode.policyAuthorize)
        writer.writeBytes(keyName)
        let first = try Self.hash(writer.bytes, algorithm, hashing)
        bytes = try Self.hash(first + policyRef, algorithm, hashing)
    }

    /// `TPM2_PolicyAuthValue` (Part 3, §23.17): `H(old ‖ TPM_CC_PolicyAuthValue)`; the
    /// object's authValue (a PIN) must then be given with the session.
    public mutating func extendPolicyAuthValue(hashing: some AttestationHashing) throws(ParseError) {
        var writer = ByteWriter()
        writer.writeBytes(bytes)
        writer.writeBE(CommandCode.policyAuthValue)
        bytes = try Self.hash(writer.bytes, algorithm, hashing)
    }

    /// `digestTPM` of `TPM2_PolicyPCR`: the hash, with the session's algorithm, of the
    /// selected PCR values concatenated in selection order (banks as listed, PCRs ascending),
    /// as `TPM2_Quote`'s `pcrDigest` is formed (Part 3, §23.7, §18.4).
    /// - Throws: ``ParseError`` naming the first selected PCR `values` lacks.
    public static func pcrDigest(
        _ values: PCRValues, selection: PCRSelection, algorithm: HashAlgorithm, hashing: some AttestationHashing
    ) throws(ParseError) -> [UInt8] {
        var concatenated: [UInt8] = []
        for (bank, pcr) in selection.pairs {
            guard let value = values[bank, pcr] else { throw .invalid("no value for PCR \(pcr) in the \(bank) bank") }
            concatenated += value
        }
        return try hash(concatenated, algorithm, hashing)
    }

    /// The digest a `TPM2_PolicyAuthorize` signature covers, `aHash = H(approvedPolicy ‖
    /// policyRef)`, hashed with the name algorithm of the signing key (Part 3, §23.16).
    /// `TPM2_VerifySignature` gets this digest; OpenSSL signs `approvedPolicy ‖ policyRef`
    /// with the same hash (``approvalMessage(policyRef:)``).
    public func approvalDigest(
        policyRef: [UInt8], keyNameAlgorithm: HashAlgorithm, hashing: some AttestationHashing
    ) throws(ParseError) -> [UInt8] {
        try Self.hash(approvalMessage(policyRef: policyRef), keyNameAlgorithm, hashing)
    }

    /// `approvedPolicy ‖ policyRef`: the message a PCR-policy key signs
    /// (`openssl dgst -sha256 -sign key.pem` over these bytes gives the signature).
    public func approvalMessage(policyRef: [UInt8]) -> [UInt8] { bytes + policyRef }

    private static func hash(
        _ data: [UInt8], _ algorithm: HashAlgorithm, _ hashing: some AttestationHashing
    ) throws(ParseError) -> [UInt8] {
        guard let digest = hashing.hash(data, with: algorithm) else {
            throw ParseError(.unsupported, "cannot hash with \(algorithm)")
        }
        return digest
    }

    /// Longest `policyRef` a TPM takes: `TPM2B_NONCE`, at most the size of the largest
    /// digest (`sizeof(TPMU_HA)`, 64 bytes); Part 3 §23.16 refuses a longer one.
    public static let maximumPolicyRefSize = 64
}
