// Fuzzes the TCG event-log reader (crypto-agile and SHA-1 formats), its writer and domb's
// record decoders through the public entry point `EventLogFuzz.parse`.
import DombCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventLog(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    if EventLogFuzz.parse(bytes), let log = try? EventLog(parsing: bytes, strict: true) {
        // What domb writes for a strict log reads back as the same log.
        let again = try? EventLog(parsing: log.serialized(), strict: true)
        precondition(again?.events == log.events && again?.specID == log.specID)
    }
    return 0
}
