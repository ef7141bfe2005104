//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// How a quote is signed: the `TPMT_SIGNATURE` scheme and hash (TPM 2.0 Part 2, §11.3.4).
public enum QuoteSignatureScheme: String, Hashable, Sendable, Codable, CaseIterable {
    /// `TPM_ALG_ECDSA`; the signature is a DER `ECDSA-Sig-Value` (as `openssl dgst` takes it).
    case ecdsa
    /// `TPM_ALG_RSASSA`; the signature is the raw PKCS#1 v1.5 block.
    case rsassa
    /// `TPM_ALG_RSAPSS`; the signature is the raw PSS block.
    case rsapss
}

/// A quote's signature, in the encoding OpenSSL verifies directly.
public struct QuoteSignature: Hashable, Sendable {
    public var scheme: QuoteSignatureScheme
    /// The hash the TPM used over the attest bytes (and for `pcrDigest`).
    public var hash: HashAlgorithm
    /// DER for ECDSA, the raw signature block for RSA.
    public var bytes: [UInt8]

    public init(scheme: QuoteSignatureScheme, hash: HashAlgorithm, bytes: [UInt8]) {
        self.scheme = scheme
        self.hash = hash
        self.bytes = bytes
    }
}

/// The `domb quote` output (format `domb-quote/1`), documented in docs/attestation.md.
///
/// Binary blobs are base64, digests and nonces are lower-case hex. Everything in it is
/// UNVERIFIED evidence until ``QuoteVerifier`` has checked it; only ``attest`` is signed.
public struct QuoteFile: Codable, Hashable, Sendable {
    public static let formatName = "domb-quote/1"
    /// Caps on what a quote file may carry, so a hostile file cannot make domb allocate.
    public static let maximumEventLogSize = 16 << 20
    public static let maximumSignatureSize = 1024
    public static let maximumPCRValues = 16 * PCRValues.pcrCount
    /// Largest quote file read: room for the base64 of the largest event log and the rest.
    public static let maximumFileSize = 32 << 20

    public struct Signature: Codable, Hashable, Sendable {
        public var scheme: QuoteSignatureScheme
        public var hash: HashAlgorithm
        /// "der" for ECDSA, "raw" for RSA: a reminder of what ``value`` holds.
        public var encoding: String
        /// Base64.
        public var value: String
    }

    public struct PCR: Codable, Hashable, Sendable {
        public var bank: HashAlgorithm
        public var pcr: Int
        /// Hex.
        public var digest: String
    }

    public var format: String
    /// Base64 of the exact `TPMS_ATTEST` bytes the TPM signed (`tpm2_quote -m`).
    public var attest: String
    public var signature: Signature
    /// The quote's selection in tpm2-tools syntax (`sha256:12,13`), for `tpm2_checkquote -l`.
    public var selection: String
    /// PCR values read right after the quote, in selection order.
    public var pcrs: [PCR]
    /// The nonce the quote was asked for (hex); the verifier compares its own, not this.
    public var nonce: String
    /// The attestation key's public part, PEM `SubjectPublicKeyInfo`.
    public var akPublicKey: String
    /// The attestation key's TPM name (hex: nameAlg ‖ digest of `TPMT_PUBLIC`).
    public var akName: String?
    /// Base64 of the TCG event log the host sent with the quote.
    public var eventLog: String?

    public init(
        attest: [UInt8], signature: QuoteSignature, selection: PCRSelection, pcrValues: PCRValues,
        nonce: [UInt8], akPublicKey: String, akName: [UInt8]?, eventLog: [UInt8]?
    ) {
        self.format = Self.formatName
        self.attest = Data(attest).base64EncodedString()
        self.signature = Signature(
            scheme: signature.scheme, hash: signature.hash,
            encoding: signature.scheme == .ecdsa ? "der" : "raw",
            value: Data(signature.bytes).base64EncodedString())
        self.selection = selection.description
        self.pcrs = selection.pairs.compactMap { bank, pcr in
            pcrValues[bank, pcr].map { PCR(bank: bank, pcr: pcr, digest: $0.hexString) }
        }
        self.nonce = nonce.hexString
        self.akPublicKey = akPublicKey
        self.akName = akName?.hexString
        self.eventLog = eventLog.map { Data($0).base64EncodedString() }
    }

    /// Decodes a quote file's JSON.
    public init(json: [UInt8]) throws(ParseError) {
        guard json.count <= Self.maximumFileSize else {
            throw .limit("quote file is \(json.count) bytes, more than the \(Self.maximumFileSize)-byte limit")
        }
        self = try JSONInput.decode(QuoteFile.self, from: json, what: "not a domb quote file (JSON)")
        guard format == Self.formatName else {
            throw ParseError(.unsupported, "quote file format \"\(format)\", expected \"\(Self.formatName)\"")
        }
    }

    /// Pretty, key-sorted JSON.
    public func jsonBytes() throws -> [UInt8] { try JSONOutput.fileBytes(self) }

    /// Decodes the binary fields, checking every size against domb's caps.
    public func evidence() throws(ParseError) -> QuoteEvidence {
        let attestBytes = try Self.base64(attest, field: "attest", max: TPMSAttest.maximumSize)
        let signatureBytes = try Self.base64(signature.value, field: "signature.value", max: Self.maximumSignatureSize)
        guard pcrs.count <= Self.maximumPCRValues else {
            throw .limit("quote file: \(pcrs.count) PCR values, more than \(Self.maximumPCRValues)")
        }
        var values = PCRValues()
        for entry in pcrs {
            guard (0..<PCRValues.pcrCount).contains(entry.pcr) else {
                throw .invalid("quote file: PCR \(entry.pcr) is outside 0...\(PCRValues.pcrCount - 1)")
            }
            guard let digest = [UInt8](hex: entry.digest), digest.count == entry.bank.digestSize else {
                throw .invalid("quote file: \(entry.bank):\(entry.pcr) is not a \(entry.bank) digest in hex")
            }
            guard values[entry.bank, entry.pcr] == nil else {
                throw .invalid("quote file: \(entry.bank):\(entry.pcr) is listed twice")
            }
            values[entry.bank, entry.pcr] = digest
        }
        let log = try eventLog.map { text throws(ParseError) in
            try Self.base64(text, field: "eventLog", max: Self.maximumEventLogSize)
        }
        return QuoteEvidence(
            attest: attestBytes,
            signature: QuoteSignature(scheme: signature.scheme, hash: signature.hash, bytes: signatureBytes),
            pcrValues: values, eventLog: log)
    }

    private static func base64(_ text: String, field: String, max: Int) throws(ParseError) -> [UInt8] {
        // Base64 grows 4/3; refuse before decoding anything absurd.
        guard text.utf8.count <= (max + 2) / 3 * 4 + 4 else {
            throw .limit("quote file: \(field) is longer than \(max) bytes")
        }
        guard let data = Data(base64Encoded: text) else { throw .invalid("quote file: \(field) is not base64") }
        guard data.count <= max else { throw .limit("quote file: \(field) is longer than \(max) bytes") }
        return Array(data)
    }
}

/// What a host sends to prove its state: the signed attest bytes, the signature, and the
/// PCR values and event log that the verifier must authenticate against them.
public struct QuoteEvidence: Hashable, Sendable {
    public var attest: [UInt8]
    public var signature: QuoteSignature
    /// UNVERIFIED until the verifier has matched them to the quote's `pcrDigest`.
    public var pcrValues: PCRValues
    /// UNVERIFIED until replayed against verified PCR values.
    public var eventLog: [UInt8]?

    public init(attest: [UInt8], signature: QuoteSignature, pcrValues: PCRValues, eventLog: [UInt8]? = nil) {
        self.attest = attest
        self.signature = signature
        self.pcrValues = pcrValues
        self.eventLog = eventLog
    }

    /// The PCR values in `selection` order, concatenated: what `tpm2_pcrread -o` writes and
    /// `tpm2_checkquote -f … -l SELECTION` reads. Nil if a value is missing.
    public func pcrFileBytes(for selection: PCRSelection) -> [UInt8]? {
        var out: [UInt8] = []
        for (bank, pcr) in selection.pairs {
            guard let value = pcrValues[bank, pcr] else { return nil }
            out += value
        }
        return out
    }
}
