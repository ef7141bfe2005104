// Fuzzes the launch-description DTB reader: libfdt's structure walk, the node/property
// model and the Hyperlaunch decoder. A valid description must round-trip (LaunchFuzz).
import DombFDT

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDTB(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    LaunchFuzz.dtb(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
