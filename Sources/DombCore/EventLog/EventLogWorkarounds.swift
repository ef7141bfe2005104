//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

// Quirks of real logs that the reader accepts, kept out of the core parser (as
// go-attestation keeps `eventlog_workarounds.go`). Each is named, applied only when the
// caller allows firmware quirks (not `strict`), and recorded in
// `EventLog.workaroundsApplied` so that a verifier can see it.

/// The named quirks.
public enum EventLogWorkaround: String, Hashable, Sendable, CaseIterable {
    /// The Spec ID header's `eventSize` stops at `vendorInfoSize`; the vendor info bytes
    /// follow the record instead of ending it (tpm2-tools fixture `specid-vendordata.bin`;
    /// tpm2_eventlog reads them the same way).
    case vendorInfoOutsideEventSize = "vendor info outside the Spec ID event size"
    /// The header lists more banks than the records carry; every record carries the same
    /// subset (tpm2-tools fixtures `event-uefiaction.bin`, `event-uefivar.bin`: header
    /// sha1, sha256, sha384, sha512, records sha1 and sha256). Replay covers the carried
    /// banks only; a verifier then sees the other banks as not covered by the log.
    case recordsCarryFewerBanksThanHeader = "records carry fewer banks than the Spec ID header lists"
}

enum EventLogWorkarounds {
    /// ``EventLogWorkaround/vendorInfoOutsideEventSize``: returns the header's event data
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
}
