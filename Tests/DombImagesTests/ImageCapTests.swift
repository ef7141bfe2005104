//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import Testing

/// The image parsers' caps, each at the cap (accepted) and one past it (refused with
/// `limitExceeded` naming the cap): ELF header tables, note regions and notes, section
/// names, bzImage setup sectors, cpio entries and names, initramfs segments, decompressed
/// size and whole-file size.
@Suite struct ImageCapTests {
    static func isLimit(_ error: any Error, _ text: String) -> Bool {
        (error as? ParseError)?.code == .limitExceeded && "\(error)".contains(text)
    }

    /// A raw little-endian ELF64: header, `phnum` program headers (the first a PT_NOTE over
    /// `notes` when given, the rest PT_NULL), `shnum` section headers (SHT_NULL, or the
    /// last one a string table of `nameTable` bytes named by e_shstrndx), then the data.
    static func elf(phnum: Int = 1, shnum: Int = 0, notes: [UInt8]? = nil, nameTable: Int? = nil) -> [UInt8] {
        let phoff = 64
        let shoff = phoff + 56 * phnum
        let dataOffset = shoff + 64 * shnum
        var w = ByteWriter()
        w.writeBytes([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8))  // e_ident: ELF64, LSB
        w.writeLE(UInt16(2))  // e_type: ET_EXEC
        w.writeLE(UInt16(62))  // e_machine: x86-64
        w.writeLE(UInt32(1))  // e_version
        w.writeLE(UInt64(0x100000))  // e_entry
        w.writeLE(UInt64(phoff))  // e_phoff
        w.writeLE(UInt64(shnum > 0 ? shoff : 0))  // e_shoff
        w.writeLE(UInt32(0))  // e_flags
        w.writeLE(UInt16(64))  // e_ehsize
        w.writeLE(UInt16(56))  // e_phentsize
        w.writeLE(UInt16(phnum))  // e_phnum
        w.writeLE(UInt16(64))  // e_shentsize
        w.writeLE(UInt16(shnum))  // e_shnum
        w.writeLE(UInt16(nameTable != nil ? shnum - 1 : 0))  // e_shstrndx
        for index in 0..<phnum {
            let isNote = index == 0 && notes != nil
            w.writeLE(UInt32(isNote ? ELFImage.ptNote : 0))  // p_type
            w.writeLE(UInt32(4))  // p_flags
            w.writeLE(UInt64(isNote ? dataOffset : 0))  // p_offset
            w.writeZeros(16)  // p_vaddr, p_paddr
            w.writeLE(UInt64(isNote ? notes?.count ?? 0 : 0))  // p_filesz
            w.writeLE(UInt64(isNote ? notes?.count ?? 0 : 0))  // p_memsz
            w.writeLE(UInt64(4))  // p_align
        }
        let tableOffset = dataOffset + (notes?.count ?? 0)
        for index in 0..<shnum {
            let isTable = index == shnum - 1 && nameTable != nil
            w.writeLE(UInt32(0))  // sh_name: "" (offset 0 of the table)
            w.writeLE(UInt32(isTable ? 3 : 0))  // sh_type: SHT_STRTAB or SHT_NULL
            w.writeZeros(16)  // sh_flags, sh_addr
            w.writeLE(UInt64(isTable ? tableOffset : 0))  // sh_offset
            w.writeLE(UInt64(isTable ? nameTable ?? 0 : 0))  // sh_size
            w.writeZeros(24)  // sh_link, sh_info, sh_addralign, sh_entsize
        }
        w.writeBytes(notes ?? [])
        w.writeZeros(nameTable ?? 0)
        return w.bytes
    }

    /// One note: n_namesz, n_descsz, n_type, name and descriptor each padded to 4.
    static func note(name: [UInt8], descriptor: [UInt8], type: UInt32 = 1) -> [UInt8] {
        var w = ByteWriter()
        w.writeLE(UInt32(name.count))
        w.writeLE(UInt32(descriptor.count))
        w.writeLE(type)
        w.writeBytes(name)
        w.writeZeros((4 - name.count % 4) % 4)
        w.writeBytes(descriptor)
        w.writeZeros((4 - descriptor.count % 4) % 4)
        return w.bytes
    }

    static let gnu = Array("GNU".utf8) + [0]

    @Test func programHeaderCap() throws {
        #expect(try ELFImage(parsing: Self.elf(phnum: ELFImage.maxProgramHeaders)).programHeaders.count
            == ELFImage.maxProgramHeaders)
        #expect { try ELFImage(parsing: Self.elf(phnum: ELFImage.maxProgramHeaders + 1)) } throws: {
            Self.isLimit($0, "e_phnum \(ELFImage.maxProgramHeaders + 1) exceeds domb's limit of \(ELFImage.maxProgramHeaders)")
        }
    }

    @Test func sectionHeaderCap() throws {
        #expect(try ELFImage(parsing: Self.elf(shnum: ELFImage.maxSectionHeaders)).sectionHeaders.count
            == ELFImage.maxSectionHeaders)
        #expect { try ELFImage(parsing: Self.elf(shnum: ELFImage.maxSectionHeaders + 1)) } throws: {
            Self.isLimit($0, "e_shnum \(ELFImage.maxSectionHeaders + 1) exceeds")
        }
    }

    @Test func sectionNameTableCap() throws {
        let atCap = try ELFImage(parsing: Self.elf(shnum: 2, nameTable: ELFImage.maxSectionNameTableSize))
        #expect(atCap.sectionHeaders.last?.size == UInt64(ELFImage.maxSectionNameTableSize))
        #expect { try ELFImage(parsing: Self.elf(shnum: 2, nameTable: ELFImage.maxSectionNameTableSize + 1)) } throws: {
            Self.isLimit($0, "section name table of \(ELFImage.maxSectionNameTableSize + 1) bytes")
        }
    }

    @Test func noteRegionSizeCap() throws {
        func region(_ size: Int) -> [UInt8] {
            Self.note(name: Self.gnu, descriptor: [UInt8](repeating: 0, count: size - 16)) + [UInt8](repeating: 0, count: 0)
        }
        let atCap = try ELFImage(parsing: Self.elf(notes: region(ELFImage.maxNoteRegionSize)))
        #expect(atCap.programHeaders.first?.fileSize == UInt64(ELFImage.maxNoteRegionSize))
        #expect { try ELFImage(parsing: Self.elf(notes: region(ELFImage.maxNoteRegionSize + 4))) } throws: {
            Self.isLimit($0, "PT_NOTE segment of \(ELFImage.maxNoteRegionSize + 4) bytes exceeds")
        }
    }

    @Test func totalNoteCap() throws {
        func notes(_ count: Int) -> [UInt8] {
            (0..<count).flatMap { _ in Self.note(name: Self.gnu, descriptor: []) }
        }
        #expect(try ELFImage(parsing: Self.elf(notes: notes(ELFImage.maxTotalNotes))).xenNotes.isEmpty)
        #expect { try ELFImage(parsing: Self.elf(notes: notes(ELFImage.maxTotalNotes + 1))) } throws: {
            Self.isLimit($0, "more than \(ELFImage.maxTotalNotes) ELF notes")
        }
    }

    @Test func noteNameCap() throws {
        func image(_ nameSize: Int) -> [UInt8] {
            Self.elf(notes: Self.note(name: [UInt8](repeating: 0x41, count: nameSize - 1) + [0], descriptor: [1, 2, 3, 4]))
        }
        #expect(try ELFImage(parsing: image(ELFImage.maxNoteNameSize)).noteSource == .none)
        #expect { try ELFImage(parsing: image(ELFImage.maxNoteNameSize + 1)) } throws: {
            Self.isLimit($0, "note name of \(ELFImage.maxNoteNameSize + 1) bytes")
        }
    }

    @Test func xenNoteDescriptorCap() throws {
        let xen = Array("Xen".utf8) + [0]
        func image(_ size: Int) -> [UInt8] {
            // XEN_ELFNOTE_GUEST_OS (6): a NUL-terminated string filling the descriptor.
            Self.elf(notes: Self.note(name: xen, descriptor: [UInt8](repeating: 0x61, count: size - 1) + [0], type: 6))
        }
        #expect(try ELFImage(parsing: image(XenNote.maxDescriptorSize)).xenNotes.first?.type == .guestOS)
        #expect { try ELFImage(parsing: image(XenNote.maxDescriptorSize + 1)) } throws: {
            Self.isLimit($0, "descriptor of \(XenNote.maxDescriptorSize + 1) bytes exceeds")
        }
    }

    // MARK: bzImage

    @Test func setupSectorCap() throws {
        let payload = try TestFiles.bytes("pvh-kernel.elf")
        let atCap = TestBzImage(setupSectors: UInt8(BzImageHeader.maxSetupSectors), payload: payload).bytes
        #expect(try BzImageHeader(source: MemoryImageSource(atCap)).setupSectors == UInt8(BzImageHeader.maxSetupSectors))
        let past = TestBzImage(setupSectors: UInt8(BzImageHeader.maxSetupSectors + 1), payload: payload).bytes
        #expect { try BzImageHeader(source: MemoryImageSource(past)) } throws: {
            Self.isLimit($0, "setup_sects \(BzImageHeader.maxSetupSectors + 1) exceeds")
        }
    }

    /// The kernel version string is read up to the cap; one without a NUL within it is dropped.
    @Test func versionStringCap() throws {
        func image(_ length: Int) -> [UInt8] {
            var bytes = TestBzImage(payload: Array("\u{7F}ELF".utf8) + [UInt8](repeating: 0, count: 60)).bytes
            let text = [UInt8](repeating: UInt8(ascii: "v"), count: length) + [0]
            bytes.replaceSubrange(0x300..<(0x300 + text.count), with: text)
            return bytes
        }
        let atCap = try BzImageHeader(source: MemoryImageSource(image(BzImageHeader.maxVersionStringLength - 1)))
        #expect(atCap.kernelVersion?.count == BzImageHeader.maxVersionStringLength - 1)
        #expect(try BzImageHeader(source: MemoryImageSource(image(BzImageHeader.maxVersionStringLength))).kernelVersion == nil)
    }

    // MARK: cpio and initramfs

    /// One newc entry (header, name padded, data padded).
    static func cpioEntry(_ name: [UInt8], data: [UInt8] = [], mode: UInt32 = 0o100644) -> [UInt8] {
        let fields: [UInt32] = [0, mode, 0, 0, 1, 0, UInt32(data.count), 0, 0, 0, 0, UInt32(name.count + 1), 0]
        var bytes = Array("070701".utf8)
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            bytes += Array((String(repeating: "0", count: 8 - hex.count) + hex).utf8)
        }
        bytes += name + [0]
        bytes += [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4)
        bytes += data + [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
        return bytes
    }

    static func cpio(entries: Int, nameSize: Int = 8) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries * (112 + nameSize))
        for index in 0..<entries {
            let digits = Array(String(index).utf8)
            bytes += cpioEntry([UInt8](repeating: UInt8(ascii: "f"), count: max(0, nameSize - 1 - digits.count)) + digits)
        }
        return bytes + cpioEntry(Array("TRAILER!!!".utf8))
    }

    @Test func cpioEntryCap() throws {
        // maxEntries counts the trailer too: maxEntries - 1 files and the trailer.
        let atCap = try CPIOArchive(parsing: Self.cpio(entries: CPIOArchive.maxEntries - 1)[...])
        #expect(atCap.entries.count == CPIOArchive.maxEntries - 1)
        #expect { try CPIOArchive(parsing: Self.cpio(entries: CPIOArchive.maxEntries)[...]) } throws: {
            Self.isLimit($0, "more than \(CPIOArchive.maxEntries) entries")
        }
    }

    @Test func cpioNameCap() throws {
        // The name size counts the NUL.
        let atCap = try CPIOArchive(parsing: Self.cpio(entries: 1, nameSize: CPIOArchive.maxNameSize)[...])
        #expect(atCap.entries.first?.name.utf8.count == CPIOArchive.maxNameSize - 1)
        #expect { try CPIOArchive(parsing: Self.cpio(entries: 1, nameSize: CPIOArchive.maxNameSize + 1)[...]) } throws: {
            ($0 as? ParseError)?.code == .invalidValue && "\($0)".contains("outside 1...\(CPIOArchive.maxNameSize)")
        }
    }

    @Test func ramdiskSegmentCap() throws {
        let segment = Self.cpio(entries: 1)
        let inspector = ImageInspector(decompressor: nil)
        let atCap = try inspector.inspect((0..<ImageInspector.maxRamdiskSegments).flatMap { _ in segment })
        #expect(atCap.ramdisk?.count == ImageInspector.maxRamdiskSegments)
        #expect { try inspector.inspect((0...ImageInspector.maxRamdiskSegments).flatMap { _ in segment }) } throws: {
            Self.isLimit($0, "more than \(ImageInspector.maxRamdiskSegments) segments")
        }
    }

    /// The decompressed-size cap, through the real decompressor: a gzip stream of N bytes
    /// of output is read with a cap of N and refused with a cap of N - 1.
    @Test func decompressedSizeCap() throws {
        let plain = Self.cpio(entries: 50)
        for format in [CompressionFormat.gzip, .xz, .zstd] {
            let compressed = try TestFiles.compress(plain, format)
            let atCap = try ImageInspector(decompressor: Decompressor(), maxDecompressedSize: plain.count).inspect(compressed)
            #expect(atCap.decompressedSize == plain.count && atCap.ramdisk?.first?.entries == 50)
            #expect {
                try ImageInspector(decompressor: Decompressor(), maxDecompressedSize: plain.count - 1).inspect(compressed)
            } throws: { error in
                "\(error)".contains("exceeds the limit of \(plain.count - 1) bytes")
            }
            #expect(throws: DecompressionError(.limitExceeded, format: format, "")) {
                try Decompressor.decompress(compressed[...], format: format, limit: plain.count - 1)
            }
        }
    }

    /// A 64 KiB zero-filled stream that expands to 64 MiB stops at the cap, not at the end.
    @Test func decompressionBombStopsAtTheCap() throws {
        let bomb = try TestFiles.compress([UInt8](repeating: 0, count: 64 << 20), .xz)
        #expect(bomb.count < 64 << 10)
        #expect(throws: DecompressionError(.limitExceeded, format: .xz, "")) {
            try Decompressor.decompress(bomb[...], format: .xz, limit: 1 << 20)
        }
    }

    /// A source that claims a size without holding the bytes, for the whole-file cap.
    final class ClaimedSizeSource: ImageSource {
        let head: [UInt8]
        let size: Int
        init(head: [UInt8], size: Int) {
            self.head = head
            self.size = size
        }
        func readBytes(at offset: Int, count: Int) throws(ParseError) -> ArraySlice<UInt8> {
            guard offset + count <= head.count else { throw .truncated("beyond the test head", offset: offset) }
            return head[offset..<(offset + count)]
        }
    }

    @Test func wholeFileSizeCap() throws {
        let head = Self.cpio(entries: 1) + [UInt8](repeating: 0, count: 0x300)
        let inspector = ImageInspector(decompressor: nil)
        // At the cap the inspector goes on to read the whole file (which this source lacks).
        #expect { try inspector.inspect(source: ClaimedSizeSource(head: head, size: ImageInspector.maxWholeFileSize)) } throws: {
            ($0 as? ParseError)?.code == .truncated
        }
        #expect { try inspector.inspect(source: ClaimedSizeSource(head: head, size: ImageInspector.maxWholeFileSize + 1)) } throws: {
            Self.isLimit($0, "exceeds domb's limit of \(ImageInspector.maxWholeFileSize)")
        }
    }
}
