//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// An ELF32 or ELF64 image as Xen's libelf sees it: header, program headers, section
/// headers, and the Xen notes (PT_NOTE segments, then SHT_NOTE sections, then the legacy
/// `__xen_guest` section; `xen/common/libelf/libelf-dominfo.c` `elf_xen_parse`).
///
/// Only the ranges that matter are read from the ``ImageSource``: the header, the two
/// header tables, the section-name table, and the note segments or sections.
public struct ELFImage: Hashable, Sendable {
    public enum FileClass: String, Hashable, Sendable, Codable {
        case elf32
        case elf64
    }

    /// Where the Xen notes were found.
    public enum NoteSource: String, Hashable, Sendable, Codable {
        case programHeaders = "PT_NOTE"
        case sections = "SHT_NOTE"
        case legacyGuestSection = "__xen_guest"
        case none
    }

    public struct ProgramHeader: Hashable, Sendable, Codable {
        public var type: UInt32
        public var flags: UInt32
        public var offset: UInt64
        public var virtualAddress: UInt64
        public var physicalAddress: UInt64
        public var fileSize: UInt64
        public var memorySize: UInt64
        public var align: UInt64
    }

    public struct SectionHeader: Hashable, Sendable, Codable {
        public var name: String
        public var type: UInt32
        public var flags: UInt64
        public var address: UInt64
        public var offset: UInt64
        public var size: UInt64
    }

    // ELF constants (System V gABI, "ELF Header" / "Program Header" / "Sections").
    public static let ptLoad: UInt32 = 1
    public static let ptNote: UInt32 = 4
    public static let shtNote: UInt32 = 7
    public static let shtNobits: UInt32 = 8

    /// Most program headers domb reads (Linux has about 5; libelf's images a handful).
    public static let maxProgramHeaders = 256
    /// Most section headers domb reads (a Debian vmlinux has about 40).
    public static let maxSectionHeaders = 4096
    /// Largest note segment or section domb reads.
    public static let maxNoteRegionSize = 1 << 20
    /// Largest section-name table domb reads.
    public static let maxSectionNameTableSize = 1 << 20
    /// Most notes domb walks over all regions (libelf's `ELF_MAX_TOTAL_NOTE_COUNT`).
    public static let maxTotalNotes = 2048
    /// Longest note name domb accepts.
    public static let maxNoteNameSize = 256

    public var fileClass: FileClass
    public var endianness: Endianness
    /// `e_type` (2 = executable).
    public var fileType: UInt16
    /// `e_machine` (62 = x86-64, 3 = i386).
    public var machine: UInt16
    /// `e_entry`.
    public var entry: UInt64
    public var programHeaders: [ProgramHeader]
    public var sectionHeaders: [SectionHeader]
    /// Every Xen note, in file order.
    public var xenNotes: [XenNote]
    public var noteSource: NoteSource
    /// The `__xen_guest` string, when the notes come from there.
    public var legacyGuestInfo: String?

    public static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]

    public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool { bytes.starts(with: magic) }

    /// `machine` as a name ("x86_64", "x86", "arm64", …).
    public var architecture: String {
        switch machine {
        case 3: "x86"
        case 62: "x86_64"
        case 40: "arm"
        case 183: "arm64"
        case 243: "riscv"
        default: "machine-\(machine)"
        }
    }

    /// Parses an ELF image held in memory.
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        try self.init(source: MemoryImageSource(bytes))
    }

    /// Parses an ELF image, reading only the ranges it needs from `source`.
    public init(source: any ImageSource) throws(ParseError) {
        var ident = try source.reader(at: 0, count: 16, field: "ELF identification")
        guard Self.hasMagic(try ident.readBytes(4, field: "ELF magic")) else {
            throw .invalid("not an ELF image: bad magic", offset: 0)
        }
        let classByte = try ident.readLE(UInt8.self, "EI_CLASS")
        let dataByte = try ident.readLE(UInt8.self, "EI_DATA")
        switch classByte {
        case 1: fileClass = .elf32
        case 2: fileClass = .elf64
        default: throw .invalid("ELF class \(classByte) is neither ELFCLASS32 (1) nor ELFCLASS64 (2)", offset: 4)
        }
        switch dataByte {
        case 1: endianness = .little
        case 2: endianness = .big
        default: throw .invalid("ELF data encoding \(dataByte) is neither LSB (1) nor MSB (2)", offset: 5)
        }
        let is64 = fileClass == .elf64
        let headerSize = is64 ? 64 : 52
        var header = try source.reader(at: 16, count: headerSize - 16, field: "ELF header")
        let order = endianness
        func half(_ r: inout ByteReader, _ f: String) throws(ParseError) -> UInt16 {
            try r.readInteger(UInt16.self, endianness: order, field: f)
        }
        func word(_ r: inout ByteReader, _ f: String) throws(ParseError) -> UInt32 {
            try r.readInteger(UInt32.self, endianness: order, field: f)
        }
        func address(_ r: inout ByteReader, _ f: String) throws(ParseError) -> UInt64 {
            is64 ? try r.readInteger(UInt64.self, endianness: order, field: f)
                : UInt64(try r.readInteger(UInt32.self, endianness: order, field: f))
        }
        fileType = try half(&header, "e_type")
        machine = try half(&header, "e_machine")
        _ = try word(&header, "e_version")
        entry = try address(&header, "e_entry")
        let phoff = try address(&header, "e_phoff")
        let shoff = try address(&header, "e_shoff")
        _ = try word(&header, "e_flags")
        _ = try half(&header, "e_ehsize")
        let phentsize = try half(&header, "e_phentsize")
        let phnum = try half(&header, "e_phnum")
        let shentsize = try half(&header, "e_shentsize")
        let shnum = try half(&header, "e_shnum")
        let shstrndx = try half(&header, "e_shstrndx")

        // Program headers.
        let phdrSize = is64 ? 56 : 32
        if phnum == 0xFFFF {
            throw ParseError(.unsupported, "extended program header numbering (e_phnum = PN_XNUM) is not supported",
                offset: is64 ? 56 : 44)
        }
        guard Int(phnum) <= Self.maxProgramHeaders else {
            throw .limit("e_phnum \(phnum) exceeds domb's limit of \(Self.maxProgramHeaders)", offset: is64 ? 56 : 44)
        }
        var programHeaders: [ProgramHeader] = []
        if phnum > 0 {
            guard Int(phentsize) == phdrSize else {
                throw .invalid("e_phentsize \(phentsize), expected \(phdrSize) for \(fileClass)", offset: is64 ? 54 : 42)
            }
            guard let tableOffset = Int(exactly: phoff) else {
                throw .invalid("e_phoff \(phoff) is out of range", offset: is64 ? 32 : 28)
            }
            var table = try source.reader(
                at: tableOffset, count: Int(phnum) * phdrSize, field: "program header table (\(phnum) entries)")
            for _ in 0..<phnum {
                var ph = ProgramHeader(
                    type: 0, flags: 0, offset: 0, virtualAddress: 0, physicalAddress: 0, fileSize: 0, memorySize: 0,
                    align: 0)
                ph.type = try word(&table, "p_type")
                if is64 { ph.flags = try word(&table, "p_flags") }
                ph.offset = try address(&table, "p_offset")
                ph.virtualAddress = try address(&table, "p_vaddr")
                ph.physicalAddress = try address(&table, "p_paddr")
                ph.fileSize = try address(&table, "p_filesz")
                ph.memorySize = try address(&table, "p_memsz")
                if !is64 { ph.flags = try word(&table, "p_flags") }
                ph.align = try address(&table, "p_align")
                programHeaders.append(ph)
            }
        }
        self.programHeaders = programHeaders
        for (index, ph) in programHeaders.enumerated() where ph.type == Self.ptLoad || ph.type == Self.ptNote {
            let location = tableOffsetDescription(phoff, index: index, size: phdrSize)
            let (end, overflow) = ph.offset.addingReportingOverflow(ph.fileSize)
            guard !overflow, end <= UInt64(source.size) else {
                throw .truncated(
                    "program header \(index) (\(location)): segment of \(ph.fileSize) bytes at offset \(ph.offset) "
                        + "runs past the end of the \(source.size)-byte image",
                    offset: Int(exactly: ph.offset))
            }
            if ph.type == Self.ptLoad, ph.fileSize > ph.memorySize {
                throw .invalid(
                    "program header \(index): p_filesz \(ph.fileSize) is larger than p_memsz \(ph.memorySize)",
                    offset: nil)
            }
        }

        // Section headers.
        let shdrSize = is64 ? 64 : 40
        var sections: [SectionHeader] = []
        var sectionNameOffsets: [UInt32] = []
        if shnum == 0 && shoff != 0 {
            throw ParseError(.unsupported, "extended section numbering (e_shnum = 0 with e_shoff set) is not supported",
                offset: is64 ? 60 : 48)
        }
        guard Int(shnum) <= Self.maxSectionHeaders else {
            throw .limit("e_shnum \(shnum) exceeds domb's limit of \(Self.maxSectionHeaders)", offset: is64 ? 60 : 48)
        }
        if shnum > 0 {
            guard Int(shentsize) == shdrSize else {
                throw .invalid("e_shentsize \(shentsize), expected \(shdrSize) for \(fileClass)", offset: is64 ? 58 : 46)
            }
            guard let tableOffset = Int(exactly: shoff) else {
                throw .invalid("e_shoff \(shoff) is out of range", offset: is64 ? 40 : 32)
            }
            var table = try source.reader(
                at: tableOffset, count: Int(shnum) * shdrSize, field: "section header table (\(shnum) entries)")
            for _ in 0..<shnum {
                let nameOffset = try word(&table, "sh_name")
                let type = try word(&table, "sh_type")
                let flags = try address(&table, "sh_flags")
                let addr = try address(&table, "sh_addr")
                let offset = try address(&table, "sh_offset")
                let size = try address(&table, "sh_size")
                _ = try word(&table, "sh_link")
                _ = try word(&table, "sh_info")
                _ = try address(&table, "sh_addralign")
                _ = try address(&table, "sh_entsize")
                sectionNameOffsets.append(nameOffset)
                sections.append(
                    SectionHeader(name: "", type: type, flags: flags, address: addr, offset: offset, size: size))
            }
            for (index, section) in sections.enumerated() where section.type != Self.shtNobits && section.type != 0 {
                let (end, overflow) = section.offset.addingReportingOverflow(section.size)
                guard !overflow, end <= UInt64(source.size) else {
                    throw .truncated(
                        "section \(index): \(section.size) bytes at offset \(section.offset) run past the end of the "
                            + "\(source.size)-byte image",
                        offset: Int(exactly: section.offset))
                }
            }
            // Section names (shstrtab); SHN_UNDEF (0) means there is none.
            if shstrndx != 0 {
                guard Int(shstrndx) < sections.count else {
                    throw .invalid("e_shstrndx \(shstrndx) is not a section (there are \(shnum))", offset: is64 ? 62 : 50)
                }
                let table = sections[Int(shstrndx)]
                guard table.size <= UInt64(Self.maxSectionNameTableSize) else {
                    throw .limit("section name table of \(table.size) bytes exceeds domb's limit of "
                        + "\(Self.maxSectionNameTableSize)", offset: Int(exactly: table.offset))
                }
                let names = try source.reader(
                    at: Int(table.offset), count: Int(table.size), field: "section name table").unread
                for index in sections.indices {
                    let start = Int(sectionNameOffsets[index])
                    guard start < names.count else {
                        throw .invalid("section \(index): name offset \(start) is outside the \(names.count)-byte "
                            + "section name table", offset: Int(table.offset))
                    }
                    let tail = names.dropFirst(start)
                    guard let end = tail.firstIndex(of: 0) else {
                        throw .invalid("section \(index): name is not NUL-terminated", offset: Int(table.offset) + start)
                    }
                    sections[index].name = String(decoding: tail[..<end], as: UTF8.self)
                }
            }
        }
        self.sectionHeaders = sections

        // Notes: PT_NOTE segments first, then SHT_NOTE sections, then __xen_guest (libelf order).
        var budget = Self.maxTotalNotes
        var notes: [XenNote] = []
        for ph in programHeaders where ph.type == Self.ptNote && ph.offset != 0 {
            // libelf skips p_offset == 0: "Some versions of binutils do not correctly set p_offset".
            notes += try Self.xenNotes(
                source: source, offset: ph.offset, size: ph.fileSize, region: "PT_NOTE segment",
                endianness: endianness, budget: &budget)
        }
        var noteSource: NoteSource = notes.isEmpty ? .none : .programHeaders
        if notes.isEmpty {
            for section in sections where section.type == Self.shtNote {
                notes += try Self.xenNotes(
                    source: source, offset: section.offset, size: section.size,
                    region: "SHT_NOTE section \(section.name.isEmpty ? "(unnamed)" : section.name)",
                    endianness: endianness, budget: &budget)
            }
            if !notes.isEmpty { noteSource = .sections }
        }
        self.xenNotes = notes
        self.legacyGuestInfo = nil
        if notes.isEmpty, let guest = sections.first(where: { $0.name == "__xen_guest" }), guest.type != Self.shtNobits {
            let length = min(Int(guest.size), XenGuestParameters.maxLegacyGuestInfoLength)
            let bytes = try source.reader(at: Int(guest.offset), count: length, field: "__xen_guest section").unread
            guard let nul = bytes.firstIndex(of: 0) else {
                throw .invalid("__xen_guest: string is not NUL-terminated within \(length) bytes",
                    offset: Int(guest.offset))
            }
            legacyGuestInfo = String(decoding: bytes[..<nul], as: UTF8.self)
            noteSource = .legacyGuestSection
        }
        self.noteSource = noteSource
    }

    /// The Xen notes of one note region. Every note must lie inside the region.
    static func xenNotes(
        source: any ImageSource, offset: UInt64, size: UInt64, region: String, endianness: Endianness,
        budget: inout Int
    ) throws(ParseError) -> [XenNote] {
        guard size <= UInt64(Self.maxNoteRegionSize) else {
            throw .limit("\(region) of \(size) bytes exceeds domb's limit of \(Self.maxNoteRegionSize)",
                offset: Int(exactly: offset))
        }
        guard let start = Int(exactly: offset) else {
            throw .invalid("\(region): offset \(offset) is out of range", offset: nil)
        }
        var reader = try source.reader(at: start, count: Int(size), field: region)
        var notes: [XenNote] = []
        while !reader.isEmpty {
            let noteOffset = reader.offset
            guard budget > 0 else {
                throw .limit("more than \(Self.maxTotalNotes) ELF notes", offset: noteOffset)
            }
            budget -= 1
            func fail(_ what: String) -> ParseError {
                .invalid("note at offset \(noteOffset) runs past the end of its \(region) (\(what))", offset: noteOffset)
            }
            guard reader.remaining >= 12 else { throw fail("\(reader.remaining) bytes left, a note header needs 12") }
            let nameSize = try reader.readInteger(UInt32.self, endianness: endianness, field: "n_namesz")
            let descSize = try reader.readInteger(UInt32.self, endianness: endianness, field: "n_descsz")
            let type = try reader.readInteger(UInt32.self, endianness: endianness, field: "n_type")
            guard nameSize <= UInt32(Self.maxNoteNameSize) else {
                throw .limit("note name of \(nameSize) bytes exceeds domb's limit of \(Self.maxNoteNameSize)",
                    offset: noteOffset)
            }
            // Name and descriptor are each padded to 4 bytes (libelf uses 4 for ELF32 and ELF64).
            let paddedName = (Int(nameSize) + 3) & ~3
            guard paddedName <= reader.remaining else {
                throw fail("name \(nameSize) + descriptor \(descSize) bytes, \(reader.remaining) left")
            }
            let name = try reader.readBytes(paddedName, field: "note name").prefix(Int(nameSize))
            let paddedDesc = (Int(descSize) + 3) & ~3
            guard Int(descSize) <= reader.remaining else {
                throw fail("descriptor of \(descSize) bytes, \(reader.remaining) left")
            }
            let descriptor = Array(try reader.readBytes(Int(descSize), field: "note descriptor"))
            // The last descriptor's padding may be cut by the region end; libelf tolerates that too.
            let padding = Array(
                try reader.readBytes(min(paddedDesc - Int(descSize), reader.remaining), field: "note padding"))
            let nameText = name.prefix { $0 != 0 }
            guard nameText.elementsEqual("Xen".utf8) else { continue }
            guard descriptor.count <= XenNote.maxDescriptorSize else {
                throw .limit("Xen note \(XenNoteType(rawValue: type)) descriptor of \(descriptor.count) bytes exceeds "
                    + "domb's limit of \(XenNote.maxDescriptorSize)", offset: noteOffset)
            }
            notes.append(
                try XenNote(
                    type: XenNoteType(rawValue: type), descriptor: descriptor, offset: noteOffset,
                    endianness: endianness, padding: padding))
        }
        return notes
    }

    /// The guest parameters libelf derives: from the notes, else from `__xen_guest`.
    public var guestParameters: XenGuestParameters? {
        if !xenNotes.isEmpty { return XenGuestParameters(notes: xenNotes) }
        if let legacyGuestInfo { return XenGuestParameters(legacyGuestInfo: legacyGuestInfo) }
        return nil
    }

    /// Whether the image carries any Xen notes or a `__xen_guest` section.
    public var hasXenMetadata: Bool { noteSource != .none }

    /// Physical extent of the loadable segments (libelf `pstart`/`pend`), nil without PT_LOAD.
    public var physicalExtent: (start: UInt64, end: UInt64)? {
        let loads = programHeaders.filter { $0.type == Self.ptLoad }
        guard let first = loads.first else { return nil }
        var start = first.physicalAddress
        var end = first.physicalAddress &+ first.memorySize
        for ph in loads {
            start = min(start, ph.physicalAddress)
            end = max(end, ph.physicalAddress &+ ph.memorySize)
        }
        return (start, end)
    }

    /// Bytes of all PT_LOAD segments in memory.
    public var loadedMemorySize: UInt64 {
        programHeaders.filter { $0.type == Self.ptLoad }.reduce(0) { $0 &+ $1.memorySize }
    }
}

private func tableOffsetDescription(_ tableOffset: UInt64, index: Int, size: Int) -> String {
    "at offset \(tableOffset &+ UInt64(index * size))"
}
