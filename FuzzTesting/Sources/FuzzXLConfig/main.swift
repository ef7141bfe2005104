// Fuzzes the xl.cfg tokenizer/parser and its import into the launch model (LaunchFuzz).
import DombFDT

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXLConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    LaunchFuzz.xlConfig(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
