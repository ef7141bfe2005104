// Fuzzes the launch-description DTB reader (libfdt fdt_check_full, then the Hyperlaunch
// decoder); a valid description must round-trip through the canonical encoder.
import DombModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLaunchDTB(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    LaunchFuzz.dtb(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
