// Fuzzes the signed-bundle documents: the canonical-JSON parser (any JSON, then canonical
// only), the manifest decoder on top of it, and the two documents of sealed secrets (the
// signed PCR policy a bundle carries, the sealed file a host keeps).
import DombCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBundle(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    if let value = try? JSONValue(parsing: bytes) {
        // The canonical form of anything parsed is itself canonical, and means the same.
        let canonical = value.canonicalBytes
        precondition((try? JSONValue(canonical: canonical)) == value, "canonical JSON did not round-trip")
        if let manifest = try? BundleManifest(json: value) {
            // A manifest that decodes re-encodes to a canonical manifest that decodes the same.
            precondition((try? BundleManifest(canonicalBytes: manifest.canonicalBytes)) == manifest,
                "manifest did not round-trip")
        }
    }
    _ = try? BundleManifest(canonicalBytes: bytes)
    if let policy = try? SignedPCRPolicy(canonicalBytes: bytes) {
        precondition((try? SignedPCRPolicy(canonicalBytes: policy.canonicalBytes)) == policy, "PCR policy did not round-trip")
    }
    if let sealed = try? SealedSecret(fileBytes: bytes) {
        precondition((try? SealedSecret(fileBytes: sealed.fileBytes)) == sealed, "sealed file did not round-trip")
    }
    return 0
}
