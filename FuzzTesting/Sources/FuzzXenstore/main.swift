// Fuzzes the Xenstore parsers domb runs on files it is handed: `xenstore-ls` listings
// (`domb xenstore compare`), plan templates and permissions, and JSON plans (`apply`).
import DombCore
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXenstore(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let text = String(decoding: bytes, as: UTF8.self)
    if let listing = try? XenstoreListing(parsing: text, root: "/local/domain/1") {
        for entry in listing.entries { precondition((try? XenstorePath.validate(entry.path)) != nil) }
    }
    if let template = try? XenstoreTemplate(parsing: text) {
        // The written form round-trips.
        precondition(XenstoreTemplate(segments: template.segments) == template)
    }
    _ = try? XenstorePermission(parsing: text)
    if let plan = try? JSONDecoder().decode(XenstorePlan.self, from: Data(bytes)), (try? plan.validate()) != nil {
        // Valid plans serialise canonically and decode back to themselves.
        let again = try? JSONDecoder().decode(XenstorePlan.self, from: Data(plan.canonicalBytes()))
        precondition(again == plan)
    }
    return 0
}
