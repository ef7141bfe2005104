//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombTestSupport
import Foundation

/// A Xen (or other) ELF note for hand-built test images.
struct TestNote {
    var name = "Xen"
    var type: UInt32
    var descriptor: [UInt8]

    static func string(_ type: XenNoteType, _ text: String, terminated: Bool = true) -> TestNote {
        TestNote(type: type.rawValue, descriptor: Array(text.utf8) + (terminated ? [0] : []))
    }

    static func number64(_ type: XenNoteType, _ value: UInt64) -> TestNote {
        var w = ByteWriter()
        w.writeLE(value)
        return TestNote(type: type.rawValue, descriptor: w.bytes)
    }

    static func number32(_ type: XenNoteType, _ value: UInt32) -> TestNote {
        var w = ByteWriter()
        w.writeLE(value)
        return TestNote(type: type.rawValue, descriptor: w.bytes)
    }

    /// The notes a Linux PV+PVH kernel carries (values as in Debian's 6.1 kernel).
    static let linux: [TestNote] = [
        .string(.guestOS, "linux"), .string(.guestVersion, "2.6"), .string(.xenVersion, "xen-3.0"),
        .number64(.virtBase, 0), .number64(.entry, 0x100000),
        .string(.features, "!writable_page_tables|pae_pgdir_above_4gb"), .string(.loader, "generic"),
        .number64(.paddrOffset, 0), .number64(.phys32Entry, 0x100040),
    ]
}

/// Builds small ELF images field by field (System V gABI), so tests can lie in any field.
struct TestELF {
    enum NotePlacement { case segment, section, both, none }

    var elf64 = true
    var bigEndian = false
    var machine: UInt16 = 62
    var entry: UInt64 = 0x100000
    var notes: [TestNote] = []
    var placement: NotePlacement = .segment
    var legacyGuest: String?
    /// Bytes of zero filler after the notes (to make large images).
    var filler = 0

    /// Offsets of interest in the built image.
    struct Layout {
        var phoff = 0
        var noteOffset = 0
        var noteSize = 0
        var shoff = 0
        var phentsize = 0
        var shentsize = 0
        var notePhdr: Int?
        var loadPhdr = 0
    }

    func build() -> (bytes: [UInt8], layout: Layout) {
        let order: Endianness = bigEndian ? .big : .little
        var layout = Layout()
        let ehsize = elf64 ? 64 : 52
        layout.phentsize = elf64 ? 56 : 32
        layout.shentsize = elf64 ? 64 : 40
        let hasSegment = placement == .segment || placement == .both
        let hasSection = placement == .section || placement == .both
        let phnum = hasSegment ? 2 : 1
        layout.phoff = ehsize
        layout.loadPhdr = ehsize
        if hasSegment { layout.notePhdr = ehsize + layout.phentsize }

        // Note data.
        var noteData = ByteWriter()
        for note in notes {
            let name = Array(note.name.utf8) + [0]
            noteData.writeInteger(UInt32(name.count), endianness: order)
            noteData.writeInteger(UInt32(note.descriptor.count), endianness: order)
            noteData.writeInteger(note.type, endianness: order)
            noteData.writeBytes(name)
            noteData.writeZeros((4 - name.count % 4) % 4)
            noteData.writeBytes(note.descriptor)
            noteData.writeZeros((4 - note.descriptor.count % 4) % 4)
        }
        layout.noteOffset = ehsize + phnum * layout.phentsize
        layout.noteSize = noteData.bytes.count
        var body = noteData.bytes
        let legacyOffset = layout.noteOffset + body.count
        let legacyBytes: [UInt8] = legacyGuest.map { Array($0.utf8) + [UInt8(0)] } ?? []
        body += legacyBytes
        body += [UInt8](repeating: 0, count: filler)
        // Section names.
        var names: [UInt8] = [0]
        func addName(_ n: String) -> UInt32 {
            let offset = UInt32(names.count)
            names += Array(n.utf8) + [0]
            return offset
        }
        let noteName = addName(".note.Xen")
        let legacyName = addName("__xen_guest")
        let shstrName = addName(".shstrtab")
        let shstrOffset = layout.noteOffset + body.count
        body += names
        while body.count % 8 != 0 { body.append(0) }
        layout.shoff = layout.noteOffset + body.count

        struct Section { var name: UInt32; var type: UInt32; var offset: Int; var size: Int }
        var sections = [Section(name: 0, type: 0, offset: 0, size: 0)]
        if hasSection { sections.append(.init(name: noteName, type: 7, offset: layout.noteOffset, size: layout.noteSize)) }
        if legacyGuest != nil {
            sections.append(.init(name: legacyName, type: 1, offset: legacyOffset, size: legacyBytes.count))
        }
        sections.append(.init(name: shstrName, type: 3, offset: shstrOffset, size: names.count))
        let total = layout.shoff + sections.count * layout.shentsize

        var w = ByteWriter()
        func half(_ v: UInt16) { w.writeInteger(v, endianness: order) }
        func word(_ v: UInt32) { w.writeInteger(v, endianness: order) }
        func addr(_ v: UInt64) { elf64 ? w.writeInteger(v, endianness: order) : w.writeInteger(UInt32(v), endianness: order) }
        w.writeBytes([0x7F, 0x45, 0x4C, 0x46, elf64 ? 2 : 1, bigEndian ? 2 : 1, 1, 0])
        w.writeZeros(8)
        half(2)  // ET_EXEC
        half(machine)
        word(1)
        addr(entry)
        addr(UInt64(layout.phoff))
        addr(UInt64(layout.shoff))
        word(0)
        half(UInt16(ehsize))
        half(UInt16(layout.phentsize))
        half(UInt16(phnum))
        half(UInt16(layout.shentsize))
        half(UInt16(sections.count))
        half(UInt16(sections.count - 1))  // .shstrtab is last
        func phdr(type: UInt32, offset: Int, size: Int, address: UInt64) {
            word(type)
            if elf64 { word(7) }
            addr(UInt64(offset))
            addr(address)
            addr(address)
            addr(UInt64(size))
            addr(UInt64(size))
            if !elf64 { word(7) }
            addr(type == 1 ? 0x1000 : 4)
        }
        phdr(type: 1, offset: 0, size: total, address: 0x100000)
        if hasSegment {
            phdr(type: 4, offset: layout.noteOffset, size: layout.noteSize, address: 0x100000 + UInt64(layout.noteOffset))
        }
        w.writeBytes(body)
        for s in sections {
            word(s.name)
            word(s.type)
            addr(s.type == 7 || s.type == 1 ? 2 : 0)
            addr(0)
            addr(UInt64(s.offset))
            addr(UInt64(s.size))
            word(0)
            word(0)
            addr(s.type == 7 ? 4 : 1)
            addr(0)
        }
        return (w.bytes, layout)
    }

    var bytes: [UInt8] { build().bytes }
}

/// Writes integers into an existing image, to make it lie.
func patch<T: FixedWidthInteger>(_ bytes: inout [UInt8], at offset: Int, _ value: T, bigEndian: Bool = false) {
    for i in 0..<MemoryLayout<T>.size {
        let shift = bigEndian ? 8 * (MemoryLayout<T>.size - 1 - i) : 8 * i
        bytes[offset + i] = UInt8(truncatingIfNeeded: value >> shift)
    }
}

/// Builds a minimal bzImage: setup sectors with the 2.15 header, then the payload.
struct TestBzImage {
    var setupSectors: UInt8 = 4
    var version: UInt16 = 0x020F
    var payload: [UInt8]
    var payloadOffsetOverride: UInt32?
    var payloadLengthOverride: UInt32?

    var bytes: [UInt8] {
        var image = [UInt8](repeating: 0, count: max(Int(setupSectors) + 1, 2) * 512)
        image[0x1F1] = setupSectors
        patch(&image, at: 0x1FE, UInt16(0xAA55))
        image[0x202..<0x206] = ArraySlice("HdrS".utf8)
        patch(&image, at: 0x206, version)
        patch(&image, at: 0x20E, UInt16(0x300 - 0x200))  // kernel_version
        image[0x300..<0x30B] = ArraySlice("6.1.0-test\0".utf8)
        image[0x211] = 1
        patch(&image, at: 0x214, UInt32(0x100000))
        patch(&image, at: 0x236, UInt16(1))  // XLF_KERNEL_64
        patch(&image, at: 0x248, payloadOffsetOverride ?? 0)
        patch(&image, at: 0x24C, payloadLengthOverride ?? UInt32(payload.count))
        return image + payload
    }
}

enum TestFiles {
    /// Builds images/ with its Makefile once per test process; returns images/out.
    static var built: Result<String, any Error> { GuestImages.built }

    static func path(_ name: String) throws -> String { try built.get() + "/" + name }

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: try path(name))))
    }

    /// Compresses `bytes` with the command-line tool for `format` (an independent encoder).
    static func compress(_ bytes: [UInt8], _ format: CompressionFormat) throws -> [UInt8] {
        let (tool, arguments): (String, [String])
        switch format {
        case .gzip: (tool, arguments) = ("gzip", ["-n", "-9", "-c"])
        case .bzip2: (tool, arguments) = ("bzip2", ["-9", "-c"])
        case .xz: (tool, arguments) = ("xz", ["--check=crc32", "-c"])
        case .lzma: (tool, arguments) = ("xz", ["--format=lzma", "-c"])
        case .lz4: (tool, arguments) = ("lz4", ["-l", "-9", "-c"])
        case .zstd: (tool, arguments) = ("zstd", ["-19", "-q", "-c"])
        case .lzo: (tool, arguments) = ("lzop", ["-c"])
        }
        return try Tools.run(tool, arguments, input: bytes).stdout
    }

    static let inspector = ImageInspector(decompressor: Decompressor())
}
