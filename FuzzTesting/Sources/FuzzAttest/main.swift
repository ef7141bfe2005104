// Fuzzes what a verifier reads from a host: TPMS_ATTEST bytes and the quote file's JSON.
import DombCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAttest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    if TPMSAttest.fuzz(bytes), let attest = try? TPMSAttest(parsing: bytes) {
        // What parsed as a quote must keep its exact bytes and re-marshal its selection.
        precondition(attest.bytes == bytes)
        if let selection = attest.quote?.pcrSelection, selection.banks.allSatisfy({ $0.pcrs.allSatisfy { $0 < 24 } }) {
            precondition(PCRSelection(selection.banks).marshalled.count == 4 + 6 * selection.banks.count)
        }
    }
    if let file = try? QuoteFile(json: bytes) { _ = try? file.evidence() }
    return 0
}
