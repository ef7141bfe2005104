//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation
import Testing

/// Every input a fuzzer (FuzzTesting/, docs/fuzzing.md) crashed a parser with, committed
/// under Fixtures/fuzz/ as the fuzzer wrote it. Each must now be refused with a clean
/// ``ParseError`` naming the problem.
@Suite struct FuzzRegressionTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/fuzz/\(name)", withExtension: nil))
        return Array(try Data(contentsOf: url))
    }

    /// FuzzELF: e_shstrndx names an SHT_NULL section with sh_offset 0xffffffffffffffff.
    /// Sections of type SHT_NULL/SHT_NOBITS skip the range check, and `Int(sh_offset)`
    /// trapped on the overflow.
    @Test func elfSectionNameTableOffsetBeyondInt() throws {
        let bytes = try Self.fixture("FuzzELF-shstrtab-offset.bin")
        #expect { try ELFImage(parsing: bytes) } throws: { error in
            (error as? ParseError)?.code == .invalidValue && "\(error)".contains("section name table offset 18446744073709551615")
        }
    }

    /// The same hole for `__xen_guest`: an SHT_NULL section so named, with an offset past Int.
    @Test func elfLegacyGuestSectionOffsetBeyondInt() throws {
        // ELF64 LSB, no program headers, 3 sections: null, "__xen_guest" (SHT_NULL, offset
        // 2^64 - 1), and the name table (SHT_STRTAB) at 0x100.
        var w = ByteWriter()
        w.writeBytes([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1] + [UInt8](repeating: 0, count: 9))  // e_ident
        w.writeLE(UInt16(2))  // e_type
        w.writeLE(UInt16(62))  // e_machine
        w.writeLE(UInt32(1))  // e_version
        w.writeLE(UInt64(0))  // e_entry
        w.writeLE(UInt64(0))  // e_phoff
        w.writeLE(UInt64(64))  // e_shoff
        w.writeLE(UInt32(0))  // e_flags
        w.writeLE(UInt16(64))  // e_ehsize
        w.writeLE(UInt16(56))  // e_phentsize
        w.writeLE(UInt16(0))  // e_phnum
        w.writeLE(UInt16(64))  // e_shentsize
        w.writeLE(UInt16(3))  // e_shnum
        w.writeLE(UInt16(2))  // e_shstrndx
        let names = Array("\0__xen_guest\0".utf8)
        for (name, type, offset, size) in [
            (UInt32(0), UInt32(0), UInt64(0), UInt64(0)),  // SHN_UNDEF
            (1, 0, .max, 16),  // "__xen_guest", SHT_NULL
            (0, 3, 0x100, UInt64(names.count)),  // name table, SHT_STRTAB
        ] {
            w.writeLE(name)  // sh_name
            w.writeLE(type)  // sh_type
            w.writeZeros(16)  // sh_flags, sh_addr
            w.writeLE(offset)  // sh_offset
            w.writeLE(size)  // sh_size
            w.writeZeros(24)  // sh_link, sh_info, sh_addralign, sh_entsize
        }
        w.writeZeros(0x100 - w.bytes.count)
        w.writeBytes(names)
        #expect { try ELFImage(parsing: w.bytes) } throws: { error in
            (error as? ParseError)?.code == .invalidValue && "\(error)".contains("__xen_guest: section offset")
        }
    }
}
