// Fuzzes the TCG event-log reader (crypto-agile and SHA-1 formats, firmware quirks on),
// the strict reader, the writer (round trip), and domb's module records in EV_EVENT_TAG.
import DombCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventLog(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    EventLogFuzz.parse(bytes)
    if let log = try? EventLog(parsing: bytes, strict: true) {
        // What parses strictly must parse again, record for record, once written back.
        let again = try? EventLog(parsing: log.serialized(), strict: true)
        precondition(again?.events.count == log.events.count, "strict event log did not round-trip")
        for event in log.events where event.type == .eventTag {
            _ = try? ModuleRecord(parsing: event.data)
        }
    }
    return 0
}
