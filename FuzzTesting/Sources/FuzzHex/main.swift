// Fuzzes the small text parsers used on CLI and verifier inputs: hexadecimal, hash-algorithm
// names, PCR selections (tpm2-tools syntax) and PCR values files (tpm2_pcrread format).
import DombCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHex(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let text = String(decoding: bytes, as: UTF8.self)
    if let decoded = [UInt8](hex: text) {
        // Round trip: what parsed must print back to the same value.
        precondition([UInt8](hex: decoded.hexString) == decoded)
    }
    _ = HashAlgorithm(name: text)
    if let selection = try? PCRSelection(parsing: text) {
        precondition((try? PCRSelection(parsing: selection.description))?.selectsSamePCRs(as: selection) ?? true)
    }
    if let values = try? PCRValues(parsingText: text) {
        // The printed form reads back to the same values.
        precondition((try? PCRValues(parsingText: values.text)) == values, "PCR values text did not round-trip")
    }
    return 0
}
