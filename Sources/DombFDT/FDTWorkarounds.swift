//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

// Guards for bugs in the libfdt domb links (Debian 12: libfdt 1.6.1), kept out of FDT.swift.

extension FDT {
    /// Checks the header (DT spec §5.2) before libfdt reads anything: libfdt 1.6.1's
    /// `fdt_check_full` dereferences NULL on a version-10 header whose blocks it then
    /// walks with the pre-v16 rules (found by FuzzLaunchDTB in CI;
    /// Tests/DombCoreTests/Fixtures/fuzz/FuzzLaunchDTB-version-10-header.dtb). dtc and
    /// domb write version 17, so domb accepts exactly that: version 17 with
    /// last_comp_version 16, totalsize equal to the blob, and the memory reservation map,
    /// structure block and strings block inside it, aligned, after the 40-byte header.
    static func checkHeader(_ bytes: [UInt8]) throws(ParseError) {
        func word(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        guard bytes.count >= 40 else {
            throw .truncated("device tree blob is only \(bytes.count) bytes; the header alone is 40", offset: bytes.count)
        }
        guard word(0) == 0xd00d_feed else {
            throw .invalid("not a valid device tree blob: magic 0x\(String(word(0), radix: 16)), expected 0xd00dfeed", offset: 0)
        }
        // Bytes after totalsize are reported by FDT.parse once libfdt has checked the blob.
        let total = word(4)
        guard total >= 40, total <= bytes.count else {
            throw .truncated("not a valid device tree blob: its header says totalsize \(total), the blob has \(bytes.count) bytes", offset: 4)
        }
        let version = word(20), lastCompatible = word(24)
        guard version == 17, lastCompatible == 16 else {
            throw .invalid(
                "not a valid device tree blob: version \(version) (last compatible \(lastCompatible)); domb reads version 17 blobs (dtc's output)",
                offset: 20)
        }
        let blocks: [(String, Int, Int, Int, Int)] = [
            // name, offset field, offset, size, alignment
            ("structure block", 8, word(8), word(36), 4),
            ("strings block", 12, word(12), word(32), 1),
            ("memory reservation map", 16, word(16), 16, 8),
        ]
        for (name, field, offset, size, alignment) in blocks {
            guard offset >= 40, offset % alignment == 0, size <= total, offset <= total - size else {
                throw .invalid(
                    "not a valid device tree blob: its \(name) at offset \(offset) (\(size) bytes) does not lie inside the \(total)-byte blob",
                    offset: field)
            }
        }
    }

    /// libfdt 1.6.1's `fdt_next_tag` adds an FDT_PROP's `len` to the offset as a signed
    /// int, so a length of 0xfffffff4 (-12) steps back onto the same tag and
    /// `fdt_check_full` loops forever (found by FuzzLaunchDTB;
    /// Tests/DombCoreTests/Fixtures/fuzz/FuzzLaunchDTB-negative-prop-len.dtb). This walks
    /// the structure block's tokens (DT spec §5.4) first and refuses a property whose
    /// value runs past the block. Anything else it does not understand is left to
    /// `fdt_check_full`, which refuses it.
    static func refusePropertiesPastStructureBlock(_ bytes: [UInt8]) throws(ParseError) {
        func word(_ at: Int) -> Int? {
            guard at >= 0, at + 4 <= bytes.count else { return nil }
            return Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        // Header (§5.2): off_dt_struct at 8, size_dt_struct at 36 (version ≥ 17).
        guard let start = word(8), let size = word(36), start + size <= bytes.count else { return }
        let end = start + size
        var offset = start
        while offset + 4 <= end, let token = word(offset) {
            switch token {
            case 1:  // FDT_BEGIN_NODE: NUL-terminated name, padded to 4.
                guard let nul = bytes[(offset + 4)..<end].firstIndex(of: 0) else { return }
                offset = (nul + 1 + 3) & ~3
            case 2, 4:  // FDT_END_NODE, FDT_NOP
                offset += 4
            case 3:  // FDT_PROP: len, nameoff, value padded to 4.
                guard let length = word(offset + 4) else { return }
                guard length <= end - (offset + 12) else {
                    throw .invalid(
                        "device tree property at offset \(offset) has length \(length), past the end of the "
                            + "structure block at \(end)", offset: offset + 4)
                }
                offset = (offset + 12 + length + 3) & ~3
            default:  // FDT_END or anything else: libfdt decides.
                return
            }
        }
    }
}
