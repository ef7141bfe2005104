// Fuzzes the libxlutil wrapper (DombXLUtil): xlu_cfg_readdata on the input, then every
// getter the importer uses on every key, and xlu_disk_parse / xlu_vif_parse_rate on every
// string in every list — libxlutil's parsers and domb's walk of what they stored.
import DombCore
import DombXLUtil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzXLUtil(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let config = try? XLUtilConfig(parsing: Array(UnsafeRawBufferPointer(start: start, count: count))) else {
        return 0
    }
    for setting in config.settings {
        _ = try? config.number(setting.name)
        precondition(config.setting(setting.name) == setting, "a setting is not found by its own name")
        guard case .list(let items) = setting.value else { continue }
        for case .string(let item) in items {
            // xlu_disk_parse's own postcondition: a CD-ROM is removable and read-only. (It does
            // accept an empty vdev, as in 'drbd:x,,w'; the importer refuses that later.)
            if let disk = try? config.parseDisk(item), disk.isCDROM {
                precondition(disk.removable && !disk.readWrite, "xlu_disk_parse left a writable or fixed CD-ROM")
            }
            _ = try? config.parseVifRate(item)
        }
    }
    return 0
}
