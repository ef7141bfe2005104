//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A PCR selection: for each bank, the PCRs chosen. The marshalled form is a
/// `TPML_PCR_SELECTION` (TPM 2.0 Part 2, §10.9.7) of `TPMS_PCR_SELECTION` (§10.6.2).
///
/// Banks keep the order they were given in, because the TPM concatenates PCR values in
/// selection order when it computes a quote's `pcrDigest` (Part 3, §18.4).
public struct PCRSelection: Hashable, Sendable, CustomStringConvertible {
    public struct Bank: Hashable, Sendable {
        public var algorithm: HashAlgorithm
        /// Selected PCR indices, ascending, no duplicates.
        public var pcrs: [Int]

        public init(_ algorithm: HashAlgorithm, _ pcrs: [Int]) {
            self.algorithm = algorithm
            self.pcrs = Array(Set(pcrs)).sorted()
        }
    }

    public var banks: [Bank]

    public init(_ banks: [Bank]) { self.banks = banks }

    /// The (bank, PCR) pairs in the order the TPM hashes them.
    public var pairs: [(HashAlgorithm, Int)] { banks.flatMap { bank in bank.pcrs.map { (bank.algorithm, $0) } } }

    /// The selection as a set per bank, empty banks dropped: two selections that mean the
    /// same PCRs compare equal here even if one lists a bank twice or in another order.
    public var normalized: [HashAlgorithm: Set<Int>] {
        var result: [HashAlgorithm: Set<Int>] = [:]
        for bank in banks where !bank.pcrs.isEmpty { result[bank.algorithm, default: []].formUnion(bank.pcrs) }
        return result
    }

    /// Whether `self` and `other` select exactly the same PCRs in the same banks.
    public func selectsSamePCRs(as other: PCRSelection) -> Bool { normalized == other.normalized }

    /// tpm2-tools' selection syntax: "sha256:12,13+sha1:12".
    public var description: String {
        banks.map { "\($0.algorithm.name):\($0.pcrs.map(String.init).joined(separator: ","))" }.joined(separator: "+")
    }

    /// Parses tpm2-tools' selection syntax ("sha256:12,13+sha1:0-7").
    public init(parsing text: String) throws(ParseError) {
        var banks: [Bank] = []
        for part in text.split(separator: "+", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard pieces.count == 2, let algorithm = HashAlgorithm(name: String(pieces[0])),
                algorithm.digestSize != nil
            else {
                throw .invalid("PCR selection \"\(text)\": expected BANK:PCRS, e.g. sha256:12,13")
            }
            var pcrs: [Int] = []
            for item in pieces[1].split(separator: ",", omittingEmptySubsequences: false) {
                let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
                    low <= high, low >= 0, high < PCRValues.pcrCount
                else {
                    throw .invalid("PCR selection \"\(text)\": bad PCR \"\(item)\" (PCRs are 0 to \(PCRValues.pcrCount - 1))")
                }
                pcrs.append(contentsOf: low...high)
            }
            guard !banks.contains(where: { $0.algorithm == algorithm }) else {
                throw .invalid("PCR selection \"\(text)\": bank \(algorithm) appears twice")
            }
            banks.append(Bank(algorithm, pcrs))
        }
        self.init(banks)
    }
}

/// `TPMS_CLOCK_INFO` (TPM 2.0 Part 2, §10.11.1).
public struct ClockInfo: Hashable, Sendable, Codable {
    /// Milliseconds the TPM has been powered since it was made; never goes back while `safe`.
    public var clock: UInt64
    /// TPM Resets (power cycles, `TPM2_Startup(CLEAR)` after a reset) so far.
    public var resetCount: UInt32
    /// TPM Restarts and Resumes since the last reset.
    public var restartCount: UInt32
    /// Whether `clock` is known not to have gone back since it was last reported.
    public var safe: Bool

    public init(clock: UInt64, resetCount: UInt32, restartCount: UInt32, safe: Bool) {
        self.clock = clock
        self.resetCount = resetCount
        self.restartCount = restartCount
        self.safe = safe
    }
}

/// A parsed `TPMS_ATTEST` (TPM 2.0 Part 2, §10.12.12): the structure a TPM signs.
///
/// Everything here is UNVERIFIED until the signature over ``bytes`` has been checked;
/// ``QuoteVerifier`` does that. The parser checks structure only: field sizes against the
/// TPM's own limits, `safe` a valid `TPMI_YES_NO`, no trailing bytes. It does not judge
/// `magic` or `type`, so that a verifier can name those failures precisely.
public struct TPMSAttest: Hashable, Sendable {
    /// `TPM_GENERATED_VALUE` (Part 2, §6.2): the TPM puts it first in everything it signs.
    public static let generatedValue: UInt32 = 0xFF54_4347
    /// `TPM_ST_ATTEST_QUOTE` (Part 2, §6.9).
    public static let quoteType: UInt16 = 0x8018
    /// `sizeof(TPMU_NAME)`: a hash algorithm and a digest of at most 64 bytes.
    public static let maximumNameSize = 2 + 64
    /// `sizeof(TPMU_HA)`: the largest `TPM2B_DATA` and `TPM2B_DIGEST`.
    public static let maximumDataSize = 64
    /// `HASH_COUNT` in the reference implementation: at most this many banks per selection.
    public static let maximumBanks = 16
    /// `PCR_SELECT_MAX`: a selection bitmap holds at most this many bytes.
    public static let maximumSelectSize = 4
    /// `sizeof(TPMS_ATTEST)`: nothing a TPM produces is longer.
    public static let maximumSize = 2304

    /// The exact bytes as the TPM produced them: the signed message.
    public let bytes: [UInt8]
    public let magic: UInt32
    public let type: UInt16
    /// `TPM2B_NAME` of the signing key, qualified by its hierarchy.
    public let qualifiedSigner: [UInt8]
    /// `TPM2B_DATA`: the caller's nonce (qualifyingData).
    public let extraData: [UInt8]
    public let clockInfo: ClockInfo
    public let firmwareVersion: UInt64
    /// `TPMS_QUOTE_INFO` (Part 2, §10.12.4) when ``type`` is a quote.
    public let quote: QuoteInfo?
    /// The undecoded `TPMU_ATTEST` when ``type`` is not a quote.
    public let otherAttested: [UInt8]

    public struct QuoteInfo: Hashable, Sendable {
        public var pcrSelection: PCRSelection
        /// Hash, with the signing scheme's algorithm, of the selected PCR values in order.
        public var pcrDigest: [UInt8]
    }

    /// Parses `bytes`, which must be exactly one `TPMS_ATTEST` (big-endian, as the TPM
    /// marshals it).
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= Self.maximumSize else {
            throw .limit("TPMS_ATTEST: \(bytes.count) bytes, more than the \(Self.maximumSize) a TPM produces")
        }
        self.bytes = bytes
        var reader = ByteReader(bytes)
        magic = try reader.readBE(UInt32.self, "TPMS_ATTEST.magic")
        type = try reader.readBE(UInt16.self, "TPMS_ATTEST.type")
        qualifiedSigner = Array(try Self.readSized(&reader, max: Self.maximumNameSize, "qualifiedSigner (TPM2B_NAME)"))
        extraData = Array(try Self.readSized(&reader, max: Self.maximumDataSize, "extraData (TPM2B_DATA)"))
        let clock = try reader.readBE(UInt64.self, "clockInfo.clock")
        let resetCount = try reader.readBE(UInt32.self, "clockInfo.resetCount")
        let restartCount = try reader.readBE(UInt32.self, "clockInfo.restartCount")
        let safeOffset = reader.offset
        let safe = try reader.readBE(UInt8.self, "clockInfo.safe")
        // > TPMI_YES_NO: NO (0) or YES (1); any other value is TPM_RC_VALUE (Part 2, §9.2).
        guard safe <= 1 else { throw .invalid("clockInfo.safe is \(safe), not 0 or 1", offset: safeOffset) }
        clockInfo = ClockInfo(clock: clock, resetCount: resetCount, restartCount: restartCount, safe: safe == 1)
        firmwareVersion = try reader.readBE(UInt64.self, "firmwareVersion")
        if type == Self.quoteType {
            let selection = try Self.readSelection(&reader)
            let digest = try Self.readSized(&reader, max: Self.maximumDataSize, "pcrDigest (TPM2B_DIGEST)")
            quote = QuoteInfo(pcrSelection: selection, pcrDigest: Array(digest))
            otherAttested = []
            try reader.expectEnd("TPMS_ATTEST")
        } else {
            quote = nil
            otherAttested = Array(reader.unread)
        }
    }

    private static func readSized(_ reader: inout ByteReader, max: Int, _ field: String) throws(ParseError) -> ArraySlice<UInt8> {
        let offset = reader.offset
        let bytes = try reader.readLengthPrefixed(UInt16.self, endianness: .big, field: field)
        guard bytes.count <= max else {
            throw .invalid("\(field): \(bytes.count) bytes, more than the \(max) allowed", offset: offset)
        }
        return bytes
    }

    /// `TPML_PCR_SELECTION`: a count, then per bank the hash, `sizeofSelect` and the bitmap
    /// (PCR n is bit n % 8 of byte n / 8).
    static func readSelection(_ reader: inout ByteReader) throws(ParseError) -> PCRSelection {
        let countOffset = reader.offset
        let count = try reader.readBE(UInt32.self, "TPML_PCR_SELECTION.count")
        guard count <= UInt32(maximumBanks) else {
            throw .invalid("TPML_PCR_SELECTION.count is \(count), more than \(maximumBanks)", offset: countOffset)
        }
        var banks: [PCRSelection.Bank] = []
        for index in 0..<Int(count) {
            let hash = HashAlgorithm(rawValue: try reader.readBE(UInt16.self, "pcrSelections[\(index)].hash"))
            let sizeOffset = reader.offset
            let size = try reader.readBE(UInt8.self, "pcrSelections[\(index)].sizeofSelect")
            guard Int(size) <= maximumSelectSize else {
                throw .invalid("pcrSelections[\(index)].sizeofSelect is \(size), more than \(maximumSelectSize)", offset: sizeOffset)
            }
            let bitmap = try reader.readBytes(Int(size), field: "pcrSelections[\(index)].pcrSelect")
            var pcrs: [Int] = []
            for (byteIndex, byte) in bitmap.enumerated() {
                for bit in 0..<8 where byte & (1 << bit) != 0 { pcrs.append(byteIndex * 8 + bit) }
            }
            banks.append(PCRSelection.Bank(hash, pcrs))
        }
        return PCRSelection(banks)
    }
}

extension PCRSelection {
    /// The `TPML_PCR_SELECTION` bytes, three bitmap bytes per bank (24 PCRs) as PC Client TPMs use.
    public var marshalled: [UInt8] {
        var writer = ByteWriter()
        writer.writeBE(UInt32(banks.count))
        for bank in banks {
            writer.writeBE(bank.algorithm.rawValue)
            var bitmap = [UInt8](repeating: 0, count: 3)
            for pcr in bank.pcrs where pcr >= 0 && pcr < 24 { bitmap[pcr / 8] |= UInt8(1 << (pcr % 8)) }
            writer.writeBE(UInt8(bitmap.count))
            writer.writeBytes(bitmap)
        }
        return writer.bytes
    }
}

extension TPMSAttest {
    /// Fuzzing entry point: parses arbitrary bytes and must never crash.
    /// Returns whether they parsed as a quote.
    @discardableResult
    public static func fuzz(_ bytes: [UInt8]) -> Bool {
        guard let attest = try? TPMSAttest(parsing: bytes) else { return false }
        return attest.quote != nil
    }
}
