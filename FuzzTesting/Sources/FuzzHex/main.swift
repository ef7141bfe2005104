// Fuzzes the hexadecimal and algorithm-name parsers used on every CLI and JSON input.
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
    return 0
}
