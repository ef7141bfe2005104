//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

// What real logs need beyond the clean format, kept out of the core parser (as
// go-attestation keeps `eventlog_workarounds.go`). Two sorts:
//  - rules of the spec that change replay (StartupLocality, H-CRTM): always applied;
//  - firmware workarounds (vendor info, trailing fill, PCR −1 records, bank subsets):
//    applied only when the caller allows them (not `strict`; domb's own logs never need
//    them, so the attestation verifier, which parses strictly, never sees them).
// Each is recorded in `EventLog.quirks` with the facts a verifier or `log show` needs.

/// Something a log needed to be read or replayed, with where it was found.
public enum EventLogQuirk: Hashable, Sendable, CustomStringConvertible {
    /// A `StartupLocality` EV_NO_ACTION record (`event`) sets the last byte of PCR 0's
    /// start value to `locality` (TCG PC Client PFP §10.4.5.3; TPM 2.0 Part 1 §34.3:
    /// TPM2_Startup from locality 3 starts PCR 0 at …03).
    case startupLocality(locality: UInt8, event: Int)
    /// The first PCR 0 record (`event`) is `EV_EFI_HCRTM_EVENT` and the log has no
    /// StartupLocality record: PCR 0 starts at …04 (TPM 2.0 Part 1 §34.3: an H-CRTM
    /// sequence before TPM2_Startup resets PCR 0 to 4 before extending it; PFP §10.4.5.3
    /// names locality 4 for the H-CRTM). This is what real H-CRTM platforms write.
    case hcrtmStartValue(event: Int)
    /// The Spec ID header's `eventSize` stops at `vendorInfoSize`; the vendor info bytes
    /// follow the record instead of ending it (tpm2-tools fixture `specid-vendordata.bin`;
    /// tpm2_eventlog reads them the same way). A firmware workaround.
    case vendorInfoOutsideEventSize
    /// The bytes after the last record are all one fill byte: the dump of a fixed-size log
    /// area. A firmware workaround; see ``TrailingFill``.
    case trailingFill(TrailingFill)
    /// `EV_NO_ACTION` records on PCR 0xFFFFFFFF ("PCR −1"), never extended: Windows boot
    /// configuration logs (WBCL) end with them; go-attestation reads them. `count` records,
    /// the first is `first`; `withDigests` of them carry non-zero digests, which mean
    /// nothing since nothing is extended. A firmware workaround.
    case noActionOnPCRMinusOne(count: Int, first: Int, withDigests: Int)
    /// Some records carry only a subset of the Spec ID header's banks (tpm2-tools fixtures
    /// `event-uefiaction.bin`, `event-uefivar.bin`: header sha1, sha256, sha384, sha512,
    /// records sha1 and sha256). The banks listed lack a digest somewhere; a PCR that has
    /// such a record cannot be replayed in that bank and its value there is untrusted.
    /// A firmware workaround.
    case bankSubset([BankCoverage])

    /// Whether this is a firmware workaround (refused by `strict` parsing) rather than a
    /// rule of the spec that replay applies to every log.
    public var isWorkaround: Bool {
        switch self {
        case .startupLocality, .hcrtmStartValue: false
        case .vendorInfoOutsideEventSize, .trailingFill, .noActionOnPCRMinusOne, .bankSubset: true
        }
    }

    /// A stable name for JSON and matching: `startup-locality`, `hcrtm-start-value`,
    /// `vendor-info-outside-event-size`, `trailing-fill`, `no-action-on-pcr-minus-one`,
    /// `bank-subset`.
    public var kind: String {
        switch self {
        case .startupLocality: "startup-locality"
        case .hcrtmStartValue: "hcrtm-start-value"
        case .vendorInfoOutsideEventSize: "vendor-info-outside-event-size"
        case .trailingFill: "trailing-fill"
        case .noActionOnPCRMinusOne: "no-action-on-pcr-minus-one"
        case .bankSubset: "bank-subset"
        }
    }

    public var description: String {
        switch self {
        case .startupLocality(let locality, let event):
            return "StartupLocality \(locality) (event \(event)): PCR 0 starts at …0\(locality) (PFP §10.4.5.3)"
        case .hcrtmStartValue(let event):
            return "H-CRTM without a StartupLocality record (event \(event) is EV_EFI_HCRTM_EVENT): PCR 0 starts at …04 (TPM 2.0 Part 1 §34.3)"
        case .vendorInfoOutsideEventSize:
            return "vendor info outside the Spec ID event size"
        case .trailingFill(let fill):
            return fill.description
        case .noActionOnPCRMinusOne(let count, let first, let withDigests):
            let digests = withDigests == 0 ? "" : "; \(withDigests) carr\(withDigests == 1 ? "ies" : "y") non-zero digests, ignored"
            return "\(count) EV_NO_ACTION record\(count == 1 ? "" : "s") on PCR 0xFFFFFFFF from event \(first): Windows boot-log records, never extended\(digests)"
        case .bankSubset(let banks):
            return "records carry a subset of the Spec ID header's banks: "
                + banks.map(\.description).joined(separator: "; ")
        }
    }
}

/// Fill after the last record: `count` bytes of `byte` (0x00 or 0xFF) from `offset` to the
/// end of the file.
///
/// Dumps of a fixed-size firmware log area end in fill. The reader stops where a record
/// would begin with an *empty record of fill bytes*: for 0x00 the Linux kernel's own stop
/// rule (`__calc_tpm2_event_size` and `tpm1_bios_measurements_start` end the log at an
/// event of type 0 with no digests and event size 0; tpm2_eventlog replays the same PCRs
/// for crypto-agile logs), for 0xFF the log area EDK2's Tcg2Dxe / TcgDxe fill with 0xFF
/// "because the OS can know the last entry" (go-eventlog `AllowPadding` stops at PCR index
/// 0xFFFFFFFF). Every byte from there to the end must be the fill byte; anything else is
/// refused with its offset.
public struct TrailingFill: Hashable, Sendable, CustomStringConvertible {
    /// Offset of the first fill byte.
    public var offset: Int
    /// Number of fill bytes (to the end of the file).
    public var count: Int
    /// 0x00 or 0xFF.
    public var byte: UInt8

    public init(offset: Int, count: Int, byte: UInt8) {
        self.offset = offset
        self.count = count
        self.byte = byte
    }

    public var description: String {
        let hex = "0x" + [byte].hexString.uppercased()
        return "\(byte == 0 ? "zero" : hex) fill after the last record: \(count) bytes of \(hex) from offset \(offset) (a fixed-size log area)"
    }
}

/// How completely the records cover one bank of the Spec ID header.
///
/// A PCR can be replayed in a bank only if every record that extends it carries that
/// bank's digest; `tpm2_eventlog` instead extends each bank with whatever digests are
/// present, which gives a value no TPM could hold.
public struct BankCoverage: Hashable, Sendable, CustomStringConvertible {
    public var bank: HashAlgorithm
    /// Extended records (EV_NO_ACTION excluded) carrying a digest in this bank.
    public var recordsWith: Int
    /// Extended records without one.
    public var recordsWithout: Int
    /// PCRs with at least one record without a digest in this bank, ascending: their value
    /// in this bank cannot be replayed and is untrusted.
    public var untrustedPCRs: [Int]

    public init(bank: HashAlgorithm, recordsWith: Int, recordsWithout: Int, untrustedPCRs: [Int]) {
        self.bank = bank
        self.recordsWith = recordsWith
        self.recordsWithout = recordsWithout
        self.untrustedPCRs = untrustedPCRs
    }

    /// Every extended record carries this bank.
    public var isComplete: Bool { recordsWithout == 0 }

    public var description: String {
        let pcrs = untrustedPCRs.map(String.init).joined(separator: ",")
        if recordsWith == 0 {
            return "\(bank.name) in no record (untrusted: PCR \(pcrs))"
        }
        return "\(bank.name) missing in \(recordsWithout) of \(recordsWith + recordsWithout) records (untrusted: PCR \(pcrs))"
    }
}

/// Tracks which banks the extended records carry, PCR by PCR (for ``BankCoverage``).
struct BankCoverageTracker {
    let banks: [HashAlgorithm]
    /// Per bank (in `banks` order): bit `pcr` set when a record on `pcr` lacks the bank.
    private var untrusted: [UInt32]
    private var without: [Int]
    private var extended = 0

    init(banks: [HashAlgorithm]) {
        self.banks = banks
        untrusted = Array(repeating: 0, count: banks.count)
        without = Array(repeating: 0, count: banks.count)
    }

    /// Notes one extended record on `pcr` (below 24) that carries `count` digests;
    /// `carries` says whether it has a given bank.
    mutating func note(pcr: UInt32, count: Int, carries: (HashAlgorithm) -> Bool) {
        extended += 1
        guard count < banks.count else { return }  // every bank present (duplicates are refused)
        for (index, bank) in banks.enumerated() where !carries(bank) {
            untrusted[index] |= 1 << (pcr & 31)
            without[index] += 1
        }
    }

    /// Every bank, complete or not, in `banks` order.
    var coverage: [BankCoverage] {
        banks.indices.map { index in
            BankCoverage(
                bank: banks[index], recordsWith: extended - without[index], recordsWithout: without[index],
                untrustedPCRs: (0..<PCRValues.pcrCount).filter { untrusted[index] & (1 << $0) != 0 })
        }
    }
}

enum EventLogWorkarounds {
    /// ``EventLogQuirk/vendorInfoOutsideEventSize``: returns the header's event data
    /// with the vendor info appended (consuming it from `reader`), or nil when the quirk
    /// does not apply.
    static func vendorInfoOutsideEventSize(_ data: [UInt8], reader: inout ByteReader) -> [UInt8]? {
        // Fixed part: signature 16, platformClass 4, 4 one-byte fields, count 4.
        let fixed = 28
        guard data.count >= fixed + 4 + 1 else { return nil }
        let count = Int(data[24]) | Int(data[25]) << 8 | Int(data[26]) << 16 | Int(data[27]) << 24
        guard count >= 1, count <= SpecIDEvent.maximumAlgorithms, data.count == fixed + 4 * count + 1 else { return nil }
        let vendorSize = Int(data[data.count - 1])
        guard vendorSize > 0, reader.remaining >= vendorSize,
            let vendor = try? reader.readBytes(vendorSize, field: "Spec ID vendorInfo")
        else { return nil }
        return data + vendor
    }

    /// ``TrailingFill``: nil when the unread bytes do not start with an empty record of
    /// fill bytes (`emptyRecordSize` bytes: 16 for `TCG_PCR_EVENT2` — pcrIndex, eventType,
    /// digest count 0, eventSize 0 — and 32 for `TCG_PCR_EVENT`). Reads nothing.
    ///
    /// - Throws: ``ParseError`` at the first byte after the start of the fill that is not
    ///   the fill byte (a fill is the end of the log; nothing may follow it), or when
    ///   `strict` refuses fill at all.
    static func trailingFill(_ reader: ByteReader, emptyRecordSize: Int, strict: Bool) throws(ParseError) -> TrailingFill? {
        let rest = reader.unread
        guard rest.count >= emptyRecordSize, let byte = rest.first, byte == 0x00 || byte == 0xFF,
            rest.prefix(emptyRecordSize).allSatisfy({ $0 == byte })
        else { return nil }
        let fill = TrailingFill(offset: reader.offset, count: rest.count, byte: byte)
        if let other = rest.firstIndex(where: { $0 != byte }) {
            let offset = reader.offset + (other - rest.startIndex)
            throw .invalid(
                "byte 0x\([rest[other]].hexString) at offset \(offset) follows the \(byte == 0 ? "zero" : "0xFF") fill that starts at offset \(fill.offset); a fill ends the log, only fill bytes may follow it",
                offset: offset)
        }
        if strict {
            throw .invalid(
                "\(rest.count) bytes of 0x\([byte].hexString) fill after the last record; strict reading (domb's own logs) refuses fill",
                offset: fill.offset)
        }
        return fill
    }
}
