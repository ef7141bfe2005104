// Fuzzes the xl.cfg parser and import into the launch model, then validation.
import DombModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXLConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    LaunchFuzz.xlConfig(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
