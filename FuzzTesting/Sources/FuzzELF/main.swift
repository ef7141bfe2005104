// Fuzzes the ELF reader: headers, program/section headers, PT_NOTE/SHT_NOTE Xen notes,
// legacy __xen_guest, and the capability judgement built on them.
import DombCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzELF(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let elf = try? ELFImage(parsing: bytes) else { return 0 }
    let capabilities = ImageCapabilities(elf: elf)
    for type in GuestType.allCases { _ = capabilities.supports(type) }
    _ = elf.physicalExtent
    _ = elf.guestParameters
    return 0
}
