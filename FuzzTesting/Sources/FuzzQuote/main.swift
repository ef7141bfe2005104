// Fuzzes TPMS_ATTEST parsing (binary) and domb quote files (JSON, base64, hex, PCR
// selections), chosen by the first byte.
import DombCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuote(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    if bytes.first == UInt8(ascii: "{") {
        if let file = try? QuoteFile(json: bytes) {
            _ = try? file.evidence()
        }
    } else {
        if let attest = try? TPMSAttest(parsing: bytes), let quote = attest.quote {
            // The selection we re-marshal must parse back to the same PCRs.
            let text = quote.pcrSelection.description
            if let again = try? PCRSelection(parsing: text) {
                precondition(again.selectsSamePCRs(as: quote.pcrSelection) || quote.pcrSelection.pairs.contains { $0.1 >= 24 },
                    "PCR selection text did not round-trip")
            }
        }
    }
    return 0
}
