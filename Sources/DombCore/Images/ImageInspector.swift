//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The container format of an image file.
public enum ImageFormat: String, Hashable, Sendable, Codable {
    case elf
    case bzImage
    /// An initramfs: one or more cpio newc archives, possibly compressed.
    case cpio = "cpio-newc"
    /// A compressed file (the whole file), whose content is reported separately.
    case compressed
    /// A UEFI firmware volume (`_FVH`), e.g. OVMF.fd.
    case uefiFirmwareVolume = "uefi-firmware-volume"
    case unknown
}

/// Everything `domb inspect` reports about one image. Values only.
public struct ImageReport: Sendable, Encodable {
    public struct ELFSummary: Hashable, Sendable, Codable {
        public var fileClass: ELFImage.FileClass
        public var endianness: String
        public var machine: UInt16
        public var fileType: UInt16
        public var programHeaders: Int
        public var sectionHeaders: Int
        public var loadSegments: Int
        public var noteSource: ELFImage.NoteSource
        public var physicalStart: UInt64?
        public var physicalEnd: UInt64?
        public var loadedMemorySize: UInt64
    }

    public struct EntryPoints: Hashable, Sendable, Codable {
        /// ELF `e_entry`.
        public var elf: UInt64?
        /// Xen `ENTRY` note (PV virtual entry), or `VIRT_ENTRY` from `__xen_guest`.
        public var xen: UInt64?
        /// Xen `PHYS32_ENTRY` note (PVH entry).
        public var phys32: UInt64?
        /// Xen `HYPERCALL_PAGE` note.
        public var hypercallPage: UInt64?
        /// bzImage `code32_start`.
        public var bzImage32: UInt32?
        /// bzImage 64-bit entry (`code32_start + 0x200` when XLF_KERNEL_64).
        public var bzImage64: UInt64?

        private enum CodingKeys: String, CodingKey { case elf, xen, phys32, hypercallPage, bzImage32, bzImage64 }

        // Addresses are "0x…" strings in JSON: 64-bit values do not survive a double.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            func hex(_ v: (some BinaryInteger)?) -> String? { v.map { "0x" + String($0, radix: 16) } }
            try c.encodeIfPresent(hex(elf), forKey: .elf)
            try c.encodeIfPresent(hex(xen), forKey: .xen)
            try c.encodeIfPresent(hex(phys32), forKey: .phys32)
            try c.encodeIfPresent(hex(hypercallPage), forKey: .hypercallPage)
            try c.encodeIfPresent(hex(bzImage32), forKey: .bzImage32)
            try c.encodeIfPresent(hex(bzImage64), forKey: .bzImage64)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func value(_ key: CodingKeys) throws -> UInt64? {
                guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
                guard text.hasPrefix("0x"), let v = UInt64(text.dropFirst(2), radix: 16) else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not 0x-hex: \(text)")
                }
                return v
            }
            elf = try value(.elf)
            xen = try value(.xen)
            phys32 = try value(.phys32)
            hypercallPage = try value(.hypercallPage)
            bzImage32 = try value(.bzImage32).flatMap { UInt32(exactly: $0) }
            bzImage64 = try value(.bzImage64)
        }

        public init() {}
    }

    public struct RamdiskSegment: Hashable, Sendable, Codable {
        public var offset: Int
        public var compression: CompressionFormat?
        public var entries: Int
        /// Bytes of cpio data (after decompression).
        public var cpioBytes: Int
    }

    public var format: ImageFormat
    public var kind: ImageKind
    public var size: Int
    /// Filled in by the caller that streams the whole file (``ImageInspector`` reads only what it needs).
    public var sha256: String?
    public var architecture: String?
    /// Compression of the bzImage payload, or of the whole file.
    public var compression: CompressionFormat?
    public var decompressedSize: Int?
    public var bzImage: BzImageHeader?
    /// The bzImage boot protocol as "2.15".
    public var bootProtocol: String?
    public var elf: ELFSummary?
    public var entryPoints: EntryPoints
    public var notes: [XenNote]
    public var legacyGuestInfo: String?
    public var ramdisk: [RamdiskSegment]?
    /// A name for recognised firmware ("hvmloader").
    public var firmware: String?
    public var capabilities: ImageCapabilities
    /// Guest types the image supports as a domU.
    public var supportedModes: [GuestType]
    /// Why each other guest type is refused.
    public var refusals: [String: String]

    // `capabilities` is summarised by supportedModes/refusals; its raw 64-bit values would
    // not survive JSON numbers.
    private enum CodingKeys: String, CodingKey {
        case format, kind, size, sha256, architecture, compression, decompressedSize, bzImage, bootProtocol, elf
        case entryPoints
        case notes, legacyGuestInfo, ramdisk, firmware, supportedModes, refusals
    }

    init(format: ImageFormat, size: Int, capabilities: ImageCapabilities) {
        self.format = format
        self.kind = capabilities.kind
        self.size = size
        self.entryPoints = EntryPoints()
        self.notes = []
        self.capabilities = capabilities
        self.supportedModes = []
        self.refusals = [:]
        updateModes()
    }

    mutating func updateModes() {
        kind = capabilities.kind
        supportedModes = capabilities.supportedTypes
        refusals = [:]
        for type in GuestType.allCases {
            if let reason = capabilities.supports(type).reason { refusals[type.rawValue] = reason }
        }
    }

    /// The lines Xen's `readnotes` prints for the notes (see ``XenNote/readnotesLine``).
    public var readnotesLines: [String] {
        var lines = notes.map(\.readnotesLine)
        if let legacyGuestInfo { lines.append("__xen_guest: \(legacyGuestInfo)") }
        return lines
    }
}

/// Inspects images the way libxenguest's loaders probe them: ELF, bzImage (payload
/// decompressed), gzip-compressed ELF, cpio initramfs (plain or compressed), firmware.
public struct ImageInspector: Sendable {
    /// Largest decompressed payload or ramdisk domb produces (a Debian vmlinux is ~66 MiB).
    public static let defaultMaxDecompressedSize = 512 << 20
    /// Largest file domb reads whole into memory (ramdisks, compressed files).
    public static let maxWholeFileSize = 1 << 30
    /// Most concatenated initramfs segments domb walks.
    public static let maxRamdiskSegments = 64

    public var decompressor: (any Decompressing)?
    public var maxDecompressedSize: Int

    public init(decompressor: (any Decompressing)?, maxDecompressedSize: Int = Self.defaultMaxDecompressedSize) {
        self.decompressor = decompressor
        self.maxDecompressedSize = maxDecompressedSize
    }

    /// Inspects an image held in memory.
    public func inspect(_ bytes: [UInt8]) throws -> ImageReport {
        try inspect(source: MemoryImageSource(bytes))
    }

    /// Inspects an image, reading from `source` only the ranges the format needs.
    /// - Throws: ``ParseError`` for malformed input, or the decompressor's error.
    public func inspect(source: any ImageSource) throws -> ImageReport {
        let head = try source.reader(at: 0, count: min(source.size, 0x300), field: "image header").unread
        if ELFImage.hasMagic(head) {
            let elf = try ELFImage(source: source)
            var report = ImageReport(format: .elf, size: source.size, capabilities: ImageCapabilities(elf: elf))
            describe(elf, into: &report)
            if report.kind == .firmware, try isHVMLoader(source) { report.firmware = "hvmloader" }
            return report
        }
        if BzImageHeader.hasMagic(head) {
            return try inspectBzImage(source: source)
        }
        if CPIOArchive.hasMagic(head) || (CompressionFormat.detect(head) != nil) {
            return try inspectWhole(source: source, head: head)
        }
        if head.count >= 0x2C, head[0x28..<0x2C].elementsEqual("_FVH".utf8) {
            var report = ImageReport(
                format: .uefiFirmwareVolume, size: source.size, capabilities: ImageCapabilities(kind: .firmware))
            report.firmware = "UEFI firmware volume"
            return report
        }
        return ImageReport(format: .unknown, size: source.size, capabilities: ImageCapabilities(kind: .unknown))
    }

    private func describe(_ elf: ELFImage, into report: inout ImageReport) {
        let extent = elf.physicalExtent
        report.architecture = elf.architecture
        report.elf = .init(
            fileClass: elf.fileClass, endianness: elf.endianness == .little ? "little" : "big", machine: elf.machine,
            fileType: elf.fileType, programHeaders: elf.programHeaders.count, sectionHeaders: elf.sectionHeaders.count,
            loadSegments: elf.programHeaders.filter { $0.type == ELFImage.ptLoad }.count, noteSource: elf.noteSource,
            physicalStart: extent?.start, physicalEnd: extent?.end, loadedMemorySize: elf.loadedMemorySize)
        report.notes = elf.xenNotes
        report.legacyGuestInfo = elf.legacyGuestInfo
        report.entryPoints.elf = elf.entry
        if let p = elf.guestParameters {
            report.entryPoints.xen = p.entry
            report.entryPoints.phys32 = p.phys32Entry
            report.entryPoints.hypercallPage = p.hypercallPage
        }
    }

    /// hvmloader announces itself as "HVM Loader"; look for it in the first loadable segment.
    private func isHVMLoader(_ source: any ImageSource) throws -> Bool {
        let window = try source.reader(at: 0, count: min(source.size, 256 << 10), field: "firmware").unread
        let needle = Array("HVM Loader".utf8)
        guard window.count >= needle.count else { return false }
        var index = window.startIndex
        while index <= window.endIndex - needle.count {
            if window[index] == needle[0], window[index..<(index + needle.count)].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }

    private func requireDecompressor(_ format: CompressionFormat, _ what: String) throws -> any Decompressing {
        guard let decompressor else {
            throw ParseError(.unsupported, "\(what) is \(format)-compressed and no decompressor is available")
        }
        return decompressor
    }

    private func inspectBzImage(source: any ImageSource) throws -> ImageReport {
        let header = try BzImageHeader(source: source)
        let payload = try source.reader(at: header.payloadOffset, count: header.payloadLength, field: "bzImage payload")
            .unread
        var elfBytes: [UInt8]
        let compression = CompressionFormat.detect(payload)
        if let compression {
            let decompressor = try requireDecompressor(compression, "the bzImage payload")
            // Linux appends the decompressed size as a little-endian u32 to every payload but a
            // gzip one (arch/x86/boot/compressed/Makefile, `*_with_size`); gzip carries ISIZE.
            var stream = payload
            var sizeHint: Int?
            if compression != .gzip {
                guard payload.count > 4 else {
                    throw ParseError.truncated("bzImage \(compression) payload of \(payload.count) bytes has no size trailer",
                        offset: header.payloadOffset)
                }
                stream = payload.dropLast(4)
                sizeHint = Int(XenNote.unsigned(payload.suffix(4), .little))
            }
            elfBytes = try ContextError.wrap("bzImage payload at offset \(header.payloadOffset) (\(compression))") {
                try decompressor.decompress(stream, format: compression, limit: maxDecompressedSize)
            }
            if let sizeHint, sizeHint != elfBytes.count {
                throw ParseError.invalid(
                    "bzImage payload decompressed to \(elfBytes.count) bytes, but its size trailer says \(sizeHint)",
                    offset: header.payloadOffset + header.payloadLength - 4)
            }
        } else if ELFImage.hasMagic(payload) {
            elfBytes = Array(payload)
        } else {
            throw ParseError(.unsupported,
                "bzImage payload starts with \(payload.prefix(6).hexString): not a known compression magic or an ELF",
                offset: header.payloadOffset)
        }
        guard ELFImage.hasMagic(elfBytes) else {
            throw ParseError.invalid(
                "bzImage payload decompressed to \(elfBytes.count) bytes that are not an ELF (Xen requires one)",
                offset: header.payloadOffset)
        }
        let elf = try ContextError.wrap("bzImage payload (decompressed ELF)") { try ELFImage(parsing: elfBytes) }
        var capabilities = ImageCapabilities(elf: elf)
        if capabilities.kind == .firmware { capabilities.kind = .unknown }  // a bzImage without notes is not firmware
        var report = ImageReport(format: .bzImage, size: source.size, capabilities: capabilities)
        describe(elf, into: &report)
        report.bzImage = header
        report.bootProtocol = header.protocolText
        report.compression = compression
        report.decompressedSize = elfBytes.count
        report.entryPoints.bzImage32 = header.code32Start
        if header.is64Bit { report.entryPoints.bzImage64 = UInt64(header.code32Start) + 0x200 }
        elfBytes = []
        return report
    }

    private func inspectWhole(source: any ImageSource, head: ArraySlice<UInt8>) throws -> ImageReport {
        guard source.size <= Self.maxWholeFileSize else {
            throw ParseError.limit("image of \(source.size) bytes exceeds domb's limit of \(Self.maxWholeFileSize)")
        }
        let bytes = try source.reader(at: 0, count: source.size, field: "image").unread
        if !CPIOArchive.hasMagic(head), let format = CompressionFormat.detect(head) {
            let decompressor = try requireDecompressor(format, "the image")
            let content = try ContextError.wrap("\(format) stream at offset 0") {
                try decompressor.decompress(bytes, format: format, limit: maxDecompressedSize)
            }
            if ELFImage.hasMagic(content) {
                // xc_dom_kernel_file gunzips a whole kernel file; other compressions are not unpacked.
                let elf = try ContextError.wrap("decompressed \(format) content (ELF)") {
                    try ELFImage(parsing: content)
                }
                var capabilities = ImageCapabilities(elf: elf)
                if format != .gzip {
                    capabilities = ImageCapabilities(kind: .unknown, architecture: elf.architecture)
                }
                var report = ImageReport(format: .compressed, size: source.size, capabilities: capabilities)
                describe(elf, into: &report)
                report.compression = format
                report.decompressedSize = content.count
                if format != .gzip {
                    report.refusals = GuestType.allCases.reduce(into: [:]) {
                        $0[$1.rawValue] = "an \(format)-compressed ELF: Xen only unpacks gzip kernels"
                    }
                }
                return report
            }
            if CPIOArchive.hasMagic(content) {
                var report = ImageReport(format: .compressed, size: source.size,
                    capabilities: ImageCapabilities(kind: .ramdisk))
                report.compression = format
                report.decompressedSize = content.count
                report.ramdisk = try ramdiskSegments(content[...], compression: format)
                return report
            }
            var report = ImageReport(format: .compressed, size: source.size,
                capabilities: ImageCapabilities(kind: .unknown))
            report.compression = format
            report.decompressedSize = content.count
            return report
        }
        var report = ImageReport(format: .cpio, size: source.size, capabilities: ImageCapabilities(kind: .ramdisk))
        report.ramdisk = try ramdiskSegments(bytes, compression: nil)
        return report
    }

    /// Walks concatenated initramfs segments (Linux `unpack_to_rootfs`): cpio archives,
    /// zero padding, and compressed archives.
    private func ramdiskSegments(_ bytes: ArraySlice<UInt8>, compression: CompressionFormat?) throws
        -> [ImageReport.RamdiskSegment]
    {
        var segments: [ImageReport.RamdiskSegment] = []
        var position = bytes.startIndex
        while position < bytes.endIndex {
            if bytes[position] == 0 {  // padding between segments
                position += 1
                continue
            }
            guard segments.count < Self.maxRamdiskSegments else {
                throw ParseError.limit("initramfs has more than \(Self.maxRamdiskSegments) segments", offset: position)
            }
            let rest = bytes[position...]
            if CPIOArchive.hasMagic(rest) {
                let archive = try CPIOArchive(parsing: rest, baseOffset: position - bytes.startIndex)
                segments.append(.init(offset: position - bytes.startIndex, compression: compression,
                    entries: archive.entries.count, cpioBytes: archive.length))
                position += archive.length
            } else if compression == nil, let format = CompressionFormat.detect(rest) {
                let decompressor = try requireDecompressor(format, "initramfs segment")
                let content = try ContextError.wrap("\(format) initramfs segment at offset \(position)") {
                    try decompressor.decompress(rest, format: format, limit: maxDecompressedSize)
                }
                let inner = try ContextError.wrap("\(format) initramfs segment at offset \(position)") {
                    try ramdiskSegments(content[...], compression: format)
                }
                segments += inner.map { var s = $0; s.offset = position - bytes.startIndex; return s }
                break  // the decompressor consumed the stream; trailing bytes are its own
            } else {
                throw ParseError.invalid(
                    "initramfs data at offset \(position - bytes.startIndex) is neither cpio newc nor compressed "
                        + "(starts \(rest.prefix(6).hexString))", offset: position - bytes.startIndex)
            }
        }
        guard !segments.isEmpty else { throw ParseError.invalid("initramfs holds no cpio archive") }
        return segments
    }
}

/// One image as `domb inspect --json` prints it: the report's fields and the path, or the
/// path and the error when the image could not be read.
public struct ImageInspection: Encodable, Sendable {
    public var path: String
    public var report: ImageReport?
    public var error: String?

    public init(path: String, report: ImageReport) {
        self.path = path
        self.report = report
    }

    public init(path: String, error: String) {
        self.path = path
        self.error = error
    }

    private enum CodingKeys: String, CodingKey { case path, error }

    /// What `domb inspect --json` prints: every image, in the order given.
    public struct Document: Encodable, Sendable {
        public var images: [ImageInspection]

        public init(images: [ImageInspection]) { self.images = images }
    }

    public func encode(to encoder: any Encoder) throws {
        // The report's own keys and `path` side by side in one object.
        try report?.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encodeIfPresent(error, forKey: .error)
    }
}
