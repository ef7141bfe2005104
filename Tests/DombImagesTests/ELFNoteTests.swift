//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombFiles
import DombTestSupport
import Foundation
import Testing

@Suite struct ELFNoteTests {
    /// Every Xen note type 0–19 decodes to its typed value.
    @Test func everyXenNoteTypeIsDecoded() throws {
        var pairs = ByteWriter()
        pairs.writeLE(UInt64(1))
        pairs.writeLE(UInt64(1))
        var reloc = ByteWriter()
        reloc.writeLE(UInt32(0x200000))
        reloc.writeLE(UInt32(0x1000000))
        reloc.writeLE(UInt32(0x40000000))
        let notes: [TestNote] = [
            .string(.info, "info text"), .number64(.entry, 0xFFFF_FFFF_8100_0000),
            .number64(.hypercallPage, 0xFFFF_FFFF_8100_1000), .number64(.virtBase, 0xFFFF_FFFF_8000_0000),
            .number64(.paddrOffset, 0), .string(.xenVersion, "xen-3.0"), .string(.guestOS, "linux"),
            .string(.guestVersion, "2.6"), .string(.loader, "generic"), .string(.paeMode, "yes"),
            .string(.features, "!writable_page_tables|pae_pgdir_above_4gb"), .string(.bsdSymtab, "yes"),
            .number64(.hvStartLow, 0xFFFF_8000_0000_0000), TestNote(type: 13, descriptor: pairs.bytes),
            .number32(.suspendCancel, 1), .number64(.initP2M, 0x80_0000_0000), .number32(.modStartPFN, 1),
            .number32(.supportedFeatures, 0x8801), .number32(.phys32Entry, 0x100_0850),
            TestNote(type: 19, descriptor: reloc.bytes),
        ]
        let elf = try ELFImage(parsing: TestELF(notes: notes).bytes)
        #expect(elf.noteSource == .programHeaders)
        #expect(elf.xenNotes.map(\.type.rawValue) == Array(0...19))
        let values = elf.xenNotes.map(\.value)
        #expect(values[0] == .string("info text"))
        #expect(values[1] == .number(0xFFFF_FFFF_8100_0000))
        #expect(values[9] == .string("yes"))
        #expect(values[13] == .maskValue([.init(mask: 1, value: 1)]))
        #expect(values[17] == .featureBitmap([0x8801]))
        #expect(values[18] == .number(0x100_0850))
        #expect(values[19] == .relocation(align: 0x200000, minimum: 0x1000000, maximum: 0x40000000))
        let p = try #require(elf.guestParameters)
        #expect(p.loader == "generic" && p.guestOS == "linux" && p.xenVersion == "xen-3.0")
        #expect(p.features == [
            XenFeature(name: "writable_page_tables", required: true),
            XenFeature(name: "pae_pgdir_above_4gb", required: false),
        ])
        #expect(p.phys32Entry == 0x100_0850)
        #expect(p.virtBase == 0xFFFF_FFFF_8000_0000)
        #expect(p.supportedFeatureBits == [0x8801])
        #expect(XenNoteType(rawValue: 0x100_0001).name == "DUMPCORE_NONE")
    }

    @Test func notesAreReadFromELF32AndBigEndianImages() throws {
        let elf32 = try ELFImage(parsing: TestELF(elf64: false, machine: 3, notes: TestNote.linux).bytes)
        #expect(elf32.fileClass == .elf32)
        #expect(elf32.architecture == "x86")
        #expect(elf32.guestParameters?.phys32Entry == 0x100040)

        var bigNotes = TestELF(bigEndian: true, machine: 21, notes: []).build()
        _ = bigNotes
        var builder = TestELF(bigEndian: true, machine: 21)
        builder.notes = [TestNote(type: 18, descriptor: [0, 0, 0, 0, 0, 0x10, 0, 0x40])]
        bigNotes = builder.build()
        let big = try ELFImage(parsing: bigNotes.bytes)
        #expect(big.endianness == .big)
        #expect(big.xenNotes.first?.value == .number(0x100040))
    }

    /// libelf order: PT_NOTE segments, else SHT_NOTE sections, else `__xen_guest`.
    @Test func noteSourcesFollowLibelfOrder() throws {
        let section = try ELFImage(parsing: TestELF(notes: TestNote.linux, placement: .section).bytes)
        #expect(section.noteSource == .sections)
        #expect(section.xenNotes.count == TestNote.linux.count)

        // A PT_NOTE with p_offset 0 is skipped ("Some versions of binutils do not correctly set p_offset").
        var (bytes, layout) = TestELF(notes: TestNote.linux, placement: .both).build()
        let notePhdr = try #require(layout.notePhdr)
        patch(&bytes, at: notePhdr + 8, UInt64(0))
        let skipped = try ELFImage(parsing: bytes)
        #expect(skipped.noteSource == .sections)

        let legacy = try ELFImage(parsing: TestELF(
            placement: .none,
            legacyGuest: "GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0x0,HYPERCALL_PAGE=0x2,FEATURES=!dom0,LOADER=generic"
        ).bytes)
        #expect(legacy.noteSource == .legacyGuestSection)
        let p = try #require(legacy.guestParameters)
        #expect(p.guestOS == "linux" && p.xenVersion == "xen-3.0" && p.loader == "generic")
        #expect(p.hypercallPage == 0x2000)
        #expect(p.features == [XenFeature(name: "dom0", required: true)])

        // Non-Xen notes are walked but not reported.
        let gnu = try ELFImage(parsing: TestELF(notes: [TestNote(name: "GNU", type: 3, descriptor: [1, 2, 3, 4])]).bytes)
        #expect(gnu.xenNotes.isEmpty)
        #expect(gnu.noteSource == .none)
    }

    /// `FEATURES` written with `.ascii` (Linux) ends at the first padding byte.
    @Test func stringNoteTerminatedByPadding() throws {
        let elf = try ELFImage(parsing: TestELF(notes: [.string(.features, "!abc|de", terminated: false)]).bytes)
        #expect(elf.xenNotes.first?.value == .string("!abc|de"))
        // 8 bytes, no padding, no NUL: refused.
        #expect(throws: ParseError.self) {
            try ELFImage(parsing: TestELF(notes: [.string(.features, "!abc|def", terminated: false)]).bytes)
        }
    }

    @Test func readnotesLineFormat() throws {
        let elf = try ELFImage(parsing: TestELF(notes: [
            .number64(.paddrOffset, 0), .number32(.suspendCancel, 1), .number64(.phys32Entry, 0x1000850),
            .string(.loader, "generic"), .number64(.initP2M, 1),
        ]).bytes)
        #expect(elf.xenNotes.map(\.readnotesLine) == [
            "PADDR_OFFSET:                  0 (8 bytes)",
            "SUSPEND_CANCEL:        0x1 (4 bytes)",
            "PHYS32_ENTRY:          0x1000850 (8 bytes)",
            "LOADER: generic",
            "unknown note type 0xf",
        ])
    }

    /// Each malformed image is refused with a specific, located message, never a crash.
    @Test func malformedELFIsRefused() throws {
        let good = TestELF(notes: TestNote.linux).build()
        let phoffField = 32, phnumField = 56, shnumField = 60, phentField = 54, shstrndxField = 62
        let notePhdr = try #require(good.layout.notePhdr)
        let loadPhdr = good.layout.loadPhdr
        let noteStart = good.layout.noteOffset
        typealias Case = (name: String, code: ParseError.Code, text: String, mutate: (inout [UInt8]) -> Void)
        let cases: [Case] = [
            ("bad magic", .invalidValue, "bad magic", { $0[1] = 0 }),
            ("bad class", .invalidValue, "ELF class 3", { $0[4] = 3 }),
            ("bad data", .invalidValue, "data encoding", { $0[5] = 9 }),
            ("absurd phnum", .limitExceeded, "e_phnum 40000", { patch(&$0, at: phnumField, UInt16(40000)) }),
            ("PN_XNUM", .unsupported, "PN_XNUM", { patch(&$0, at: phnumField, UInt16(0xFFFF)) }),
            ("absurd shnum", .limitExceeded, "e_shnum 60000", { patch(&$0, at: shnumField, UInt16(60000)) }),
            ("phentsize", .invalidValue, "e_phentsize 12", { patch(&$0, at: phentField, UInt16(12)) }),
            ("phoff past end", .truncated, "program header table", { patch(&$0, at: phoffField, UInt64(1 << 40)) }),
            ("phoff huge", .invalidValue, "e_phoff", { patch(&$0, at: phoffField, UInt64.max) }),
            ("phnum lies", .truncated, "program header table (200 entries)", {
                patch(&$0, at: phoffField, UInt64($0.count - 100))
                patch(&$0, at: phnumField, UInt16(200))
            }),
            ("note segment past end", .truncated, "program header 1", {
                patch(&$0, at: notePhdr + 32, UInt64(1 << 20))
            }),
            ("load segment lies", .truncated, "program header 0", { patch(&$0, at: loadPhdr + 32, UInt64(1 << 30)) }),
            ("filesz > memsz", .invalidValue, "p_filesz", { patch(&$0, at: loadPhdr + 40, UInt64(16)) }),
            ("descsz past segment", .invalidValue, "runs past the end of its PT_NOTE segment", {
                patch(&$0, at: noteStart + 4, UInt32(0x7FFF_FFF0))
            }),
            ("namesz past segment", .limitExceeded, "note name of", { patch(&$0, at: noteStart, UInt32(0xFFFF_FFFF)) }),
            ("shstrndx", .invalidValue, "e_shstrndx", { patch(&$0, at: shstrndxField, UInt16(77)) }),
            ("string without NUL", .invalidValue, "not NUL-terminated", {
                // GUEST_OS "linux\0" -> "linuxx" + padding "xx": no NUL anywhere.
                for i in 0..<8 { $0[noteStart + 16 + i] = 0x78 }
            }),
            ("numeric size 3", .invalidValue, "numeric value has 3 bytes", {
                // The 4th note is VIRT_BASE (8 bytes): claim 3.
                let fourth = noteStart + 3 * 0 + 16 + 8 + 16 + 4 + 16 + 8
                patch(&$0, at: fourth + 4, UInt32(3))
            }),
        ]
        for c in cases {
            var bytes = good.bytes
            c.mutate(&bytes)
            do {
                _ = try ELFImage(parsing: bytes)
                Issue.record("\(c.name): parsed")
            } catch {
                #expect(error.code == c.code, "\(c.name): \(error)")
                #expect(error.description.contains(c.text), "\(c.name): \(error)")
            }
        }
    }

    @Test func oversizeNoteRegionIsALimit() throws {
        var (bytes, layout) = TestELF(notes: TestNote.linux, filler: 3 << 20).build()
        patch(&bytes, at: try #require(layout.notePhdr) + 32, UInt64(2 << 20))
        #expect(throws: ParseError(.limitExceeded, "")) { try ELFImage(parsing: bytes) }
    }

    @Test func tooManyNotesIsALimit() throws {
        let notes = (0..<(ELFImage.maxTotalNotes + 1)).map { _ in TestNote(name: "N", type: 1, descriptor: []) }
        #expect(throws: ParseError(.limitExceeded, "")) { try ELFImage(parsing: TestELF(notes: notes).bytes) }
    }

    /// Drip-feed: no strict prefix of a valid ELF parses (section headers sit at the end).
    @Test func noStrictPrefixOfAnELFParses() throws {
        for image in [TestELF(notes: TestNote.linux).bytes, TestELF(elf64: false, notes: TestNote.linux).bytes,
            try TestFiles.bytes("pv-kernel.elf"), try TestFiles.bytes("pvh-kernel.elf")]
        {
            _ = try ELFImage(parsing: image)
            for length in 0..<image.count {
                #expect(throws: ParseError.self, "prefix \(length) of \(image.count)") {
                    try ELFImage(parsing: Array(image[..<length]))
                }
            }
        }
    }

    /// Inspecting a large ELF reads only its headers and notes.
    @Test func inspectionReadsOnlyWhatItNeeds() throws {
        let directory = try TemporaryDirectory()
        let image = TestELF(notes: TestNote.linux, filler: 8 << 20).bytes
        let path = try directory.write("big.elf", image)
        let source = try FileImageSource(path: path)
        let report = try TestFiles.inspector.inspect(source: source)
        #expect(report.supportedModes == [.pv, .pvh])
        #expect(source.bytesRead < 8192, "read \(source.bytesRead) of \(image.count) bytes")
    }
}
