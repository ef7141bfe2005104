//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// Keylime's quote string, `r<b64 TPMS_ATTEST>:<b64 TPMT_SIGNATURE>:<b64 PCR blob>`, as
/// rust-keylime `tpm.rs` `encode_quote_string` writes it and keylime 7.14
/// `tpm_main.py` `_get_quote_parameters` / `tpm_util.checkquote` read it.
///
/// The PCR blob is tpm2-tools' in-memory dump (`tpm2_quote -o`, rust `pcrdata_to_vec`),
/// little-endian: a `TPML_PCR_SELECTION` of 4 + 16 × 8 bytes (hash u16, sizeofSelect u8,
/// pcrSelect[4], one pad byte), a u32 count of `TPML_DIGEST`s, and each `TPML_DIGEST` as
/// 4 + 8 × (u16 size + 64-byte buffer) bytes, holding up to 8 PCR values in selection order.
public enum KeylimeQuote {
    static let selectionSize = 4 + 16 * 8
    static let digestListSize = 4 + 8 * (2 + 64)
    /// More than three digest lists would be more than 24 PCRs of one bank.
    static let maximumDigestLists = 24

    /// A `TPMT_SIGNATURE` (TPM 2.0 Part 2, §11.3.4) of an ECDSA or RSA key.
    public struct Signature: Hashable, Sendable {
        public enum Value: Hashable, Sendable {
            case ecdsa(r: [UInt8], s: [UInt8])
            case rsa([UInt8])
        }
        public var scheme: QuoteSignatureScheme
        public var hash: HashAlgorithm
        public var value: Value

        public init(scheme: QuoteSignatureScheme, hash: HashAlgorithm, value: Value) {
            self.scheme = scheme
            self.hash = hash
            self.value = value
        }

        /// Big-endian TPM marshalling: sigAlg, hash, then TPM2B r and s, or one TPM2B.
        public var marshalled: [UInt8] {
            var writer = ByteWriter()
            switch scheme {
            case .ecdsa: writer.writeBE(TPMPublicArea.Algorithm.ecdsa)
            case .rsassa: writer.writeBE(TPMPublicArea.Algorithm.rsassa)
            case .rsapss: writer.writeBE(TPMPublicArea.Algorithm.rsapss)
            }
            writer.writeBE(hash.rawValue)
            switch value {
            case .ecdsa(let r, let s):
                writer.writeBE(UInt16(r.count))
                writer.writeBytes(r)
                writer.writeBE(UInt16(s.count))
                writer.writeBytes(s)
            case .rsa(let signature):
                writer.writeBE(UInt16(signature.count))
                writer.writeBytes(signature)
            }
            return writer.bytes
        }

        public init(parsing bytes: [UInt8]) throws(ParseError) {
            var reader = ByteReader(bytes)
            let algorithm = try reader.readBE(UInt16.self, "TPMT_SIGNATURE.sigAlg")
            hash = HashAlgorithm(rawValue: try reader.readBE(UInt16.self, "TPMT_SIGNATURE.hash"))
            switch algorithm {
            case TPMPublicArea.Algorithm.ecdsa:
                scheme = .ecdsa
                let r = Array(try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "signatureR"))
                let s = Array(try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "signatureS"))
                guard (1...66).contains(r.count), (1...66).contains(s.count) else { throw .invalid("ECDSA r or s is not 1 to 66 bytes") }
                value = .ecdsa(r: r, s: s)
            case TPMPublicArea.Algorithm.rsassa, TPMPublicArea.Algorithm.rsapss:
                scheme = algorithm == TPMPublicArea.Algorithm.rsassa ? .rsassa : .rsapss
                let signature = Array(try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: "sig"))
                guard (128...512).contains(signature.count) else { throw .invalid("RSA signature of \(signature.count) bytes") }
                value = .rsa(signature)
            default:
                throw ParseError(.unsupported, "signature algorithm 0x\(String(algorithm, radix: 16)) (ECDSA, RSASSA and RSAPSS are known)")
            }
            try reader.expectEnd("TPMT_SIGNATURE")
        }
    }

    /// The tpm2-tools PCR blob for one bank's `pcrs` with `values` in ascending PCR order.
    public static func pcrBlob(bank: HashAlgorithm, pcrs: [Int], values: [[UInt8]]) -> [UInt8] {
        var writer = ByteWriter(capacity: selectionSize + 4 + digestListSize)
        writer.writeLE(UInt32(1))
        var select: [UInt8] = [0, 0, 0, 0]
        for pcr in pcrs where (0..<24).contains(pcr) { select[pcr / 8] |= UInt8(1 << (pcr % 8)) }
        for index in 0..<16 {
            if index == 0 {
                writer.writeLE(bank.rawValue)
                writer.writeBytes([3] + select + [0])
            } else {
                writer.writeZeros(8)
            }
        }
        let lists = stride(from: 0, to: values.count, by: 8).map { Array(values[$0..<min($0 + 8, values.count)]) }
        writer.writeLE(UInt32(lists.count))
        for list in lists {
            writer.writeLE(UInt32(list.count))
            for slot in 0..<8 {
                if slot < list.count {
                    let digest = list[slot].prefix(64)
                    writer.writeLE(UInt16(digest.count))
                    writer.writeBytes(digest)
                    writer.writeZeros(64 - digest.count)
                } else {
                    writer.writeZeros(66)
                }
            }
        }
        return writer.bytes
    }

    /// The string Keylime parses.
    public static func encode(attest: [UInt8], signature: Signature, pcrBlob: [UInt8]) -> String {
        "r" + Data(attest).base64EncodedString() + ":" + Data(signature.marshalled).base64EncodedString() + ":"
            + Data(pcrBlob).base64EncodedString()
    }

    /// A decoded quote string: the evidence domb's own verifier checks.
    public struct Decoded: Hashable, Sendable {
        public var attest: [UInt8]
        public var signature: Signature
        /// The PCR values the blob carries, by the blob's selection (UNVERIFIED).
        public var pcrValues: PCRValues
        public var selection: PCRSelection
    }

    /// Decodes a quote string, checking every size (the inverse of ``encode``).
    public static func decode(_ text: String) throws(ParseError) -> Decoded {
        guard text.utf8.count <= 64 << 10 else { throw .limit("quote string longer than 64 KiB") }
        guard text.hasPrefix("r") else { throw .invalid("quote string does not start with \"r\"") }
        let parts = text.dropFirst().split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .invalid("quote string has \(parts.count) parts, expected attest:signature:pcrs") }
        func base64(_ part: Substring, _ field: String) throws(ParseError) -> [UInt8] {
            guard let data = Data(base64Encoded: String(part)) else { throw .invalid("quote string: \(field) is not base64") }
            return Array(data)
        }
        let attest = try base64(parts[0], "attest")
        let signature = try Signature(parsing: try base64(parts[1], "signature"))
        let blob = try base64(parts[2], "PCR blob")
        var reader = ByteReader(blob)
        let count = try reader.readLE(UInt32.self, "TPML_PCR_SELECTION.count")
        guard count == 1 else { throw ParseError(.unsupported, "PCR blob selects \(count) banks; domb reads one") }
        var bank = HashAlgorithm(rawValue: 0)
        var pcrs: [Int] = []
        for index in 0..<16 {
            let hash = try reader.readLE(UInt16.self, "pcrSelections[\(index)].hash")
            let size = try reader.readLE(UInt8.self, "pcrSelections[\(index)].sizeofSelect")
            let select = Array(try reader.readBytes(4, field: "pcrSelect"))
            try reader.skip(1)
            guard index == 0 else { continue }
            guard size == 3, hash != 0 else { throw .invalid("PCR blob: the first selection is empty") }
            bank = HashAlgorithm(rawValue: hash)
            for pcr in 0..<24 where select[pcr / 8] & UInt8(1 << (pcr % 8)) != 0 { pcrs.append(pcr) }
        }
        guard let digestSize = bank.digestSize else { throw ParseError(.unsupported, "PCR blob bank \(bank)") }
        let lists = try reader.readLE(UInt32.self, "TPML_DIGEST count")
        guard lists <= maximumDigestLists else { throw .limit("PCR blob has \(lists) digest lists") }
        var values: [[UInt8]] = []
        for _ in 0..<lists {
            let entries = try reader.readLE(UInt32.self, "TPML_DIGEST.count")
            guard entries <= 8 else { throw .invalid("TPML_DIGEST.count \(entries) is more than 8") }
            for slot in 0..<8 {
                let size = Int(try reader.readLE(UInt16.self, "TPM2B_DIGEST.size"))
                let buffer = try reader.readBytes(64, field: "TPM2B_DIGEST.buffer")
                guard size <= 64 else { throw .invalid("TPM2B_DIGEST.size \(size) is more than 64") }
                if slot < entries {
                    guard size == digestSize else { throw .invalid("a \(bank) PCR value of \(size) bytes") }
                    values.append(Array(buffer.prefix(size)))
                }
            }
        }
        try reader.expectEnd("PCR blob")
        guard values.count == pcrs.count else {
            throw .invalid("PCR blob selects \(pcrs.count) PCRs but carries \(values.count) values")
        }
        var pcrValues = PCRValues()
        for (pcr, value) in zip(pcrs, values) { pcrValues[bank, pcr] = value }
        return Decoded(attest: attest, signature: signature, pcrValues: pcrValues, selection: PCRSelection([.init(bank, pcrs)]))
    }

    /// Keylime's PCR 16 binding (`tpm_main.sim_extend`): H(0…0 ‖ H(pubkey PEM text)).
    public static func boundPCR16(publicKeyPEM: String, hashing: some AttestationHashing, bank: HashAlgorithm) -> [UInt8]? {
        guard let size = bank.digestSize, let inner = hashing.hash(Array(publicKeyPEM.utf8), with: bank) else { return nil }
        return hashing.hash([UInt8](repeating: 0, count: size) + inner, with: bank)
    }

    /// The PCRs a verifier's mask selects (bit n = PCR n), plus PCR 16, ascending.
    public static func pcrs(mask: UInt32) -> [Int] {
        var pcrs = (0..<24).filter { mask & (1 << UInt32($0)) != 0 }
        if !pcrs.contains(16) { pcrs.append(16) }
        return pcrs.sorted()
    }
}

extension KeylimeQuote {
    /// The JSON answer of a Keylime agent's `/quotes/identity` or `/quotes/integrity`:
    /// `{"code": 200, "status": "Success", "results": {"quote": …, "pubkey"?: …,
    /// "mb_measurement_list"?: base64, …}}` (rust-keylime `quote.rs` `KeylimeQuote`).
    public struct Answer: Sendable {
        public var quote: String
        public var publicKeyPEM: String?
        public var hashAlgorithm: String?
        public var measuredBootLog: [UInt8]?

        /// Nil unless `json` is such an answer (so callers can try other formats).
        public init?(json: [UInt8]) {
            guard json.count <= QuoteFile.maximumFileSize,
                let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
                let results = object["results"] as? [String: Any], let quote = results["quote"] as? String
            else { return nil }
            self.quote = quote
            self.publicKeyPEM = results["pubkey"] as? String
            self.hashAlgorithm = results["hash_alg"] as? String
            self.measuredBootLog = (results["mb_measurement_list"] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init)
        }
    }
}
