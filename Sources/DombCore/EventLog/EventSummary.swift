//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// `UEFI_VARIABLE_DATA`, the event data of EV_EFI_VARIABLE_DRIVER_CONFIG, _BOOT, _BOOT2
/// and _AUTHORITY records (TCG PC Client PFP 1.05 §10.4.4 / 1.06 §10.4.5):
/// `VariableName EFI_GUID | UnicodeNameLength u64 | VariableDataLength u64 |
///  UnicodeName CHAR16[UnicodeNameLength] | VariableData[VariableDataLength]`, little-endian.
///
/// Read from an untrusted log: every length is checked against the record.
public struct UEFIVariableData: Hashable, Sendable {
    /// The vendor GUID in its registry form, e.g. `8be4df61-93ca-11d2-aa0d-00e098032b8c`
    /// (EFI_GLOBAL_VARIABLE): Data1–3 little-endian, Data4 as bytes (UEFI 2.10 Appendix A).
    public var vendorGUID: String
    /// `UnicodeName` (UCS-2 without a terminator), e.g. `SecureBoot`, `PK`, `Boot0001`, `db`.
    /// A code unit that is not valid UTF-16 becomes U+FFFD. Untrusted: escape before printing.
    public var name: String
    /// `VariableDataLength`: how many bytes of the variable's value the record says it carries.
    public var dataLength: UInt64
    /// How many bytes actually follow the name: equal to ``dataLength`` in a well-formed
    /// record. Some shim builds log EV_EFI_VARIABLE_AUTHORITY records with bytes after the
    /// data; tpm2_eventlog reads their names too, so the name is kept and the mismatch shown.
    public var bytesAfterName: Int

    /// Whether ``dataLength`` is exactly the rest of the record.
    public var isConsistent: Bool { dataLength == UInt64(bytesAfterName) }

    /// - Throws: ``ParseError`` (with the offset in `data`) when the GUID or a length field
    ///   is truncated, or the name does not fit the record.
    public init(parsing data: [UInt8]) throws(ParseError) {
        var reader = ByteReader(data)
        let d1 = try reader.readLE(UInt32.self, "VariableName Data1")
        let d2 = try reader.readLE(UInt16.self, "VariableName Data2")
        let d3 = try reader.readLE(UInt16.self, "VariableName Data3")
        let d4 = Array(try reader.readBytes(8, field: "VariableName Data4"))
        let nameLength = try reader.readLE(UInt64.self, "UnicodeNameLength")
        dataLength = try reader.readLE(UInt64.self, "VariableDataLength")
        // Bounded by the record before any multiplication.
        guard nameLength <= UInt64(reader.remaining / 2) else {
            throw .truncated("UnicodeNameLength \(nameLength) characters, \(reader.remaining) bytes left", offset: reader.offset)
        }
        let nameBytes = try reader.readBytes(Int(nameLength) * 2, field: "UnicodeName")
        bytesAfterName = reader.remaining
        let units = stride(from: nameBytes.startIndex, to: nameBytes.endIndex, by: 2).map {
            UInt16(nameBytes[$0]) | UInt16(nameBytes[$0 + 1]) << 8
        }
        name = String(decoding: units, as: UTF16.self)
        vendorGUID = Self.guidText(d1, d2, d3, d4)
    }

    static func guidText(_ d1: UInt32, _ d2: UInt16, _ d3: UInt16, _ d4: [UInt8]) -> String {
        func hex<T: FixedWidthInteger>(_ value: T) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: MemoryLayout<T>.size * 2 - digits.count) + digits
        }
        return "\(hex(d1))-\(hex(d2))-\(hex(d3))-\(d4.prefix(2).hexString)-\(d4.dropFirst(2).hexString)"
    }
}

/// One-line readings of event records, for `domb log show`: what a record is, in the
/// words of its spec, from its (unverified) type and data.
///
/// The text is **raw**: it contains untrusted text (domain names, labels, EFI variable
/// names, firmware strings) and must go through ``TerminalText`` (or a ``TextTable``) before
/// it reaches a terminal.
public enum EventSummary {
    /// Longest quoted string the short form shows, in Unicode scalars (then `…`).
    public static let shortTextLimit = 60

    /// - Parameter long: the detailed form: strings and small data in full (hex up to 64
    ///   bytes); otherwise strings are cut at ``shortTextLimit`` and data shown as its size.
    public static func describe(_ event: UnverifiedEvent, long: Bool = false) -> String {
        if let decoded = try? DombEvent(event) {
            switch decoded {
            case .module(let record):
                return "domb module: domain \"\(record.domain)\" role \(record.role) size \(record.size) \"\(cut(record.label, long))\""
            case .configuration(let record):
                let content = printable(record.content).map { "\"\(cut($0, long))\"" } ?? "\(record.content.count) bytes"
                return "domb \(record.kind) \"\(record.subject)\": \(content)"
            case .separator:
                return "separator \(event.data.hexString)"
            }
        }
        let data = event.data
        switch event.type {
        case .efiVariableDriverConfig, .efiVariableBoot, .efiVariableBoot2, .efiVariableAuthority:
            guard let variable = try? UEFIVariableData(parsing: data) else {
                return "unreadable UEFI_VARIABLE_DATA, \(bytes(data.count))"
            }
            let vendor = long ? " (vendor \(variable.vendorGUID))" : ""
            guard variable.isConsistent else {
                return "\(variable.name)\(vendor), VariableDataLength \(variable.dataLength) but \(bytes(variable.bytesAfterName)) follow the name"
            }
            return "\(variable.name)\(vendor), \(bytes(variable.bytesAfterName)) of data"
        case .noAction:
            if let locality = EventLog.startupLocality(in: data[...]) { return "StartupLocality \(locality)" }
            // Spec ID Event03, SP800-155 Event, NvIndexInstance…: a NUL-terminated 16-byte signature.
            if data.count >= 16, data[15] == 0, let signature = printable(Array(data.prefix(16))) {
                return "\(signature), \(bytes(data.count))"
            }
        case .separator:
            if data.count == 4 {
                return data.allSatisfy({ $0 == 0xFF }) ? "separator \(data.hexString) (error)" : "separator \(data.hexString)"
            }
        case .efiBootServicesApplication, .efiBootServicesDriver, .efiRuntimeServicesDriver:
            // UEFI_IMAGE_LOAD_EVENT (PFP §10.4.3): location u64, length u64, link-time address
            // u64, device-path length u64, device path.
            var reader = ByteReader(data)
            if (try? reader.skip(8)) != nil, let length = try? reader.readLE(UInt64.self), (try? reader.skip(8)) != nil,
                let pathLength = try? reader.readLE(UInt64.self), pathLength <= UInt64(reader.remaining)
            {
                return "image of \(length) bytes, device path of \(bytes(Int(pathLength)))"
            }
        case .efiPlatformFirmwareBlob, .postCode:
            // UEFI_PLATFORM_FIRMWARE_BLOB (PFP §10.4.3): base u64, length u64. EV_POST_CODE
            // carries either that or a string ("ACPI DATA", "Embedded UEFI Driver").
            var reader = ByteReader(data)
            if data.count == 16, printable(data) == nil, let base = try? reader.readLE(UInt64.self),
                let length = try? reader.readLE(UInt64.self)
            {
                return "firmware blob at 0x\(String(base, radix: 16)), \(length) bytes"
            }
        default:
            break
        }
        if let text = printable(data) ?? utf16Text(data) { return "\"\(cut(text, long))\"" }
        if data.isEmpty { return "no data" }
        if long { return data.count <= 64 ? data.hexString : "\(data.prefix(32).hexString)…" }
        return data.count <= 8 ? data.hexString : bytes(data.count)
    }

    /// The data as text when it is printable ASCII (optionally NUL- or newline-terminated).
    public static func printable(_ data: [UInt8]) -> String? {
        var bytes = data[...]
        while bytes.last == 0 || bytes.last == 0x0A { bytes.removeLast() }
        guard !bytes.isEmpty, bytes.count <= 4096,
            bytes.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x0A || $0 == 0x09 })
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The data as text when it is printable ASCII in UCS-2 (firmware version strings,
    /// systemd-boot's command lines), optionally NUL-terminated.
    static func utf16Text(_ data: [UInt8]) -> String? {
        guard data.count >= 4, data.count % 2 == 0, data.count <= 8192 else { return nil }
        var units = stride(from: 0, to: data.count, by: 2).map { UInt16(data[$0]) | UInt16(data[$0 + 1]) << 8 }
        while units.last == 0 { units.removeLast() }
        guard !units.isEmpty, units.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: units, as: UTF16.self)
    }

    private static func cut(_ text: String, _ long: Bool) -> String {
        guard !long, text.unicodeScalars.count > shortTextLimit else { return text }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: text.unicodeScalars.prefix(shortTextLimit))
        return String(out) + "…"
    }

    private static func bytes(_ count: Int) -> String { count == 1 ? "1 byte" : "\(count) bytes" }
}

extension EventLog {
    /// The bank `log show` abbreviates a digest of: SHA-256 when the log has it, else its first.
    public var summaryBank: HashAlgorithm? {
        headerBanks.contains(.sha256) ? .sha256 : headerBanks.first
    }

    /// Hex digits of the digest prefix in ``summaryTable``.
    public static let summaryDigestDigits = 16

    /// One row per record: `#`, PCR (`-1` for Windows' never-extended records), type, a
    /// prefix of the ``summaryBank`` digest (`-` when the record lacks that bank), and what
    /// the record is (``EventSummary/describe(_:long:)``).
    public var summaryTable: TextTable {
        let bank = summaryBank
        var table = TextTable([
            .init("#", .right), .init("PCR", .right), .init("TYPE"),
            .init("\(bank?.name.uppercased() ?? "DIGEST") (prefix)"), .init("WHAT"),
        ])
        for event in events {
            let digest = bank.flatMap { event.digests[$0] }.map { String($0.hexString.prefix(Self.summaryDigestDigits)) } ?? "-"
            table.append([
                "\(event.number)", event.pcr == Self.pcrMinusOne ? "-1" : "\(event.pcr)", event.type.description, digest,
                EventSummary.describe(event),
            ])
        }
        return table
    }
}
