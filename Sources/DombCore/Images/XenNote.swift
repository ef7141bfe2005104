//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The type of a Xen ELF note (name `"Xen"`), from Xen's `public/elfnote.h`.
public struct XenNoteType: RawRepresentable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let info = XenNoteType(rawValue: 0)
    public static let entry = XenNoteType(rawValue: 1)
    public static let hypercallPage = XenNoteType(rawValue: 2)
    public static let virtBase = XenNoteType(rawValue: 3)
    public static let paddrOffset = XenNoteType(rawValue: 4)
    public static let xenVersion = XenNoteType(rawValue: 5)
    public static let guestOS = XenNoteType(rawValue: 6)
    public static let guestVersion = XenNoteType(rawValue: 7)
    public static let loader = XenNoteType(rawValue: 8)
    public static let paeMode = XenNoteType(rawValue: 9)
    public static let features = XenNoteType(rawValue: 10)
    public static let bsdSymtab = XenNoteType(rawValue: 11)
    public static let hvStartLow = XenNoteType(rawValue: 12)
    public static let l1MFNValid = XenNoteType(rawValue: 13)
    public static let suspendCancel = XenNoteType(rawValue: 14)
    public static let initP2M = XenNoteType(rawValue: 15)
    public static let modStartPFN = XenNoteType(rawValue: 16)
    public static let supportedFeatures = XenNoteType(rawValue: 17)
    public static let phys32Entry = XenNoteType(rawValue: 18)
    /// Xen ≥ 4.20 (`XEN_ELFNOTE_PHYS32_RELOC`); decoded, but Xen 4.17 ignores it.
    public static let phys32Reloc = XenNoteType(rawValue: 19)

    private static let names: [UInt32: String] = [
        0: "INFO", 1: "ENTRY", 2: "HYPERCALL_PAGE", 3: "VIRT_BASE", 4: "PADDR_OFFSET", 5: "XEN_VERSION",
        6: "GUEST_OS", 7: "GUEST_VERSION", 8: "LOADER", 9: "PAE_MODE", 10: "FEATURES", 11: "BSD_SYMTAB",
        12: "HV_START_LOW", 13: "L1_MFN_VALID", 14: "SUSPEND_CANCEL", 15: "INIT_P2M", 16: "MOD_START_PFN",
        17: "SUPPORTED_FEATURES", 18: "PHYS32_ENTRY", 19: "PHYS32_RELOC",
        0x100_0001: "DUMPCORE_NONE", 0x100_0002: "DUMPCORE_HEADER", 0x200_0000: "DUMPCORE_XEN_VERSION",
        0x200_0001: "DUMPCORE_FORMAT_VERSION",
    ]

    /// The `XEN_ELFNOTE_*` name without the prefix, or nil for a type Xen does not define.
    public var name: String? { Self.names[rawValue] }
    public var description: String { name ?? "0x\(String(rawValue, radix: 16))" }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Types whose descriptor is a NUL-terminated string (libelf's `note_desc[].str`).
    public var isString: Bool {
        [.info, .xenVersion, .guestOS, .guestVersion, .loader, .paeMode, .features, .bsdSymtab].contains(self)
    }

    /// Types whose descriptor is one unsigned integer of 1, 2, 4 or 8 bytes (`elf_note_numeric`).
    public var isNumeric: Bool {
        [.entry, .hypercallPage, .virtBase, .paddrOffset, .hvStartLow, .suspendCancel, .initP2M, .modStartPFN,
         .phys32Entry].contains(self)
    }
}

/// A Xen feature flag named in the `FEATURES` note (`XENFEAT_*`, `public/features.h`).
public struct XenFeature: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The name as written in the note (without the `!`).
    public var name: String
    /// `!name`: the kernel cannot run unless Xen provides it.
    public var required: Bool
    public var description: String { required ? "!\(name)" : name }

    public init(name: String, required: Bool) {
        self.name = name
        self.required = required
    }

    /// The features libelf knows by name, with their `XENFEAT_*` bit (`elf_xen_feature_names`).
    public static let known: [String: Int] = [
        "writable_page_tables": 0, "writable_descriptor_tables": 1, "auto_translated_physmap": 2,
        "supervisor_mode_kernel": 3, "pae_pgdir_above_4gb": 4, "hvm_callback_vector": 8, "dom0": 11,
    ]

    /// The `XENFEAT_*` bit, or nil for a name libelf does not know.
    public var bit: Int? { Self.known[name] }

    /// Splits a `FEATURES` string (`a|!b|c`) the way `elf_xen_parse_features` does.
    public static func parseList(_ text: String) -> [XenFeature] {
        text.split(separator: "|", omittingEmptySubsequences: true).map { part in
            part.hasPrefix("!")
                ? XenFeature(name: String(part.dropFirst()), required: true)
                : XenFeature(name: String(part), required: false)
        }
    }
}

/// The decoded descriptor of a Xen ELF note.
public enum XenNoteValue: Hashable, Sendable {
    case string(String)
    case number(UInt64)
    /// `L1_MFN_VALID`: (mask, value) pairs.
    case maskValue([MaskValue])
    /// `SUPPORTED_FEATURES`: 32-bit words of `XENFEAT_*` bits.
    case featureBitmap([UInt32])
    /// `PHYS32_RELOC`: optional alignment, minimum and maximum physical address.
    case relocation(align: UInt32?, minimum: UInt32?, maximum: UInt32?)
    /// A type Xen does not define: the raw descriptor.
    case raw([UInt8])

    public struct MaskValue: Hashable, Sendable, Codable {
        public var mask: UInt64
        public var value: UInt64
        public init(mask: UInt64, value: UInt64) {
            self.mask = mask
            self.value = value
        }
    }
}

/// One Xen ELF note: its type, its raw descriptor and the typed value.
public struct XenNote: Hashable, Sendable {
    public var type: XenNoteType
    /// Absolute file offset of the note header (in the decompressed payload for a bzImage).
    public var offset: Int
    public var descriptor: [UInt8]
    public var value: XenNoteValue

    /// Largest descriptor domb accepts (Linux's biggest, FEATURES, is < 100 bytes).
    public static let maxDescriptorSize = 4096

    /// Decodes a descriptor by note type (libelf `elf_xen_parse_note`).
    /// - Throws: ``ParseError`` for a string without its NUL, or a numeric note whose size is
    ///   not 1, 2, 4 or 8 (libelf would silently read such a note as 0).
    /// - Parameter padding: the descriptor's alignment padding in the file. Linux writes
    ///   `FEATURES` with `.ascii`, so its NUL is the first padding byte; libelf's `elf_strval`
    ///   reads on until a NUL, and domb reads on through the padding only.
    public init(
        type: XenNoteType, descriptor: [UInt8], offset: Int, endianness: Endianness, padding: [UInt8] = []
    ) throws(ParseError) {
        self.type = type
        self.offset = offset
        self.descriptor = descriptor
        let descOffset = offset + 12
        if type.isString {
            if let nul = descriptor.firstIndex(of: 0) {
                value = .string(String(decoding: descriptor[..<nul], as: UTF8.self))
            } else if padding.first == 0 {
                value = .string(String(decoding: descriptor, as: UTF8.self))
            } else {
                throw .invalid("Xen note \(type): string is not NUL-terminated within its \(descriptor.count) bytes "
                    + "and their padding", offset: descOffset)
            }
        } else if type.isNumeric {
            guard [1, 2, 4, 8].contains(descriptor.count) else {
                throw .invalid("Xen note \(type): numeric value has \(descriptor.count) bytes (1, 2, 4 or 8 allowed)",
                    offset: descOffset)
            }
            value = .number(Self.unsigned(descriptor[...], endianness))
        } else if type == .l1MFNValid {
            // Pairs of (mask, value), each 4 or 8 bytes (readnotes reads one pair of descsz/2).
            let width = descriptor.count == 8 ? 4 : 8
            guard !descriptor.isEmpty, descriptor.count % (2 * width) == 0 else {
                throw .invalid("Xen note L1_MFN_VALID: \(descriptor.count) bytes is not a list of mask/value pairs",
                    offset: descOffset)
            }
            var pairs: [XenNoteValue.MaskValue] = []
            var index = 0
            while index < descriptor.count {
                let mask = Self.unsigned(descriptor[index..<(index + width)], endianness)
                let val = Self.unsigned(descriptor[(index + width)..<(index + 2 * width)], endianness)
                pairs.append(.init(mask: mask, value: val))
                index += 2 * width
            }
            value = .maskValue(pairs)
        } else if type == .supportedFeatures {
            guard !descriptor.isEmpty, descriptor.count % 4 == 0 else {
                throw .invalid("Xen note SUPPORTED_FEATURES: \(descriptor.count) bytes is not a list of 32-bit words",
                    offset: descOffset)
            }
            value = .featureBitmap(stride(from: 0, to: descriptor.count, by: 4).map {
                UInt32(truncatingIfNeeded: Self.unsigned(descriptor[$0..<($0 + 4)], endianness))
            })
        } else if type == .phys32Reloc {
            guard descriptor.count <= 12, descriptor.count % 4 == 0 else {
                throw .invalid("Xen note PHYS32_RELOC: \(descriptor.count) bytes (up to three 32-bit words allowed)",
                    offset: descOffset)
            }
            let words = stride(from: 0, to: descriptor.count, by: 4).map {
                UInt32(truncatingIfNeeded: Self.unsigned(descriptor[$0..<($0 + 4)], endianness))
            }
            value = .relocation(
                align: words.count > 0 ? words[0] : nil, minimum: words.count > 1 ? words[1] : nil,
                maximum: words.count > 2 ? words[2] : nil)
        } else {
            value = .raw(descriptor)
        }
    }

    static func unsigned(_ bytes: ArraySlice<UInt8>, _ endianness: Endianness) -> UInt64 {
        var result: UInt64 = 0
        for (i, byte) in bytes.enumerated() {
            switch endianness {
            case .little: result |= UInt64(byte) << (8 * UInt64(i))
            case .big: result = (result << 8) | UInt64(byte)
            }
        }
        return result
    }

    /// The value as text: a string, `0x…` for numbers, `mask=…/value=…` pairs, hex otherwise.
    public var valueText: String {
        switch value {
        case .string(let text): return text
        case .number(let number): return "0x" + String(number, radix: 16)
        case .maskValue(let pairs):
            return pairs.map { "mask=0x\(String($0.mask, radix: 16)) value=0x\(String($0.value, radix: 16))" }
                .joined(separator: ", ")
        case .featureBitmap(let words): return words.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
        case .relocation(let align, let minimum, let maximum):
            return [("align", align), ("min", minimum), ("max", maximum)].compactMap { name, value in
                value.map { "\(name)=0x\(String($0, radix: 16))" }
            }.joined(separator: " ")
        case .raw(let bytes): return bytes.hexString
        }
    }

    /// The line Xen's `readnotes` (tools/xcutils/readnotes.c, 4.17) prints for this note, so
    /// that tests can compare domb's decoding with Xen's own tool byte for byte.
    public var readnotesLine: String {
        let printedNumeric: Set<XenNoteType> = [
            .entry, .hypercallPage, .virtBase, .paddrOffset, .hvStartLow, .suspendCancel, .phys32Entry,
        ]
        let printedString: Set<XenNoteType> = [
            .info, .xenVersion, .guestOS, .guestVersion, .loader, .paeMode, .features,
        ]
        let label = type.name ?? ""
        if printedString.contains(type), case .string(let text) = value {
            return "\(label): \(text)"
        }
        if printedNumeric.contains(type), case .number(let number) = value {
            // printf("%s: %#*" PRIx64 " (%d bytes)", prefix, 2+2*descsz, value, descsz)
            let digits = number == 0 ? "0" : "0x" + String(number, radix: 16)
            let width = 2 + 2 * descriptor.count
            let padded = String(repeating: " ", count: max(0, width - digits.count)) + digits
            return "\(label): \(padded) (\(descriptor.count) bytes)"
        }
        if type == .l1MFNValid, case .maskValue(let pairs) = value, let first = pairs.first {
            func hex(_ v: UInt64) -> String { v == 0 ? "0" : "0x" + String(v, radix: 16) }
            return "\(label): mask=\(hex(first.mask)) value=\(hex(first.value))"
        }
        return "unknown note type 0x\(String(type.rawValue, radix: 16))"
    }
}

extension XenNote: Codable {
    private enum CodingKeys: String, CodingKey { case type, name, value, descriptor, offset }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type.rawValue, forKey: .type)
        try container.encode(type.name ?? "UNKNOWN", forKey: .name)
        try container.encode(valueText, forKey: .value)
        try container.encode(descriptor.hexString, forKey: .descriptor)
        try container.encode(offset, forKey: .offset)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = XenNoteType(rawValue: try container.decode(UInt32.self, forKey: .type))
        let hex = try container.decode(String.self, forKey: .descriptor)
        guard let bytes = [UInt8](hex: hex) else {
            throw DecodingError.dataCorruptedError(forKey: .descriptor, in: container, debugDescription: "not hex")
        }
        do {
            self = try XenNote(
                type: type, descriptor: bytes, offset: try container.decode(Int.self, forKey: .offset),
                endianness: .little)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .descriptor, in: container, debugDescription: "\(error)")
        }
    }
}

/// The Xen guest parameters libelf derives from the notes (or the legacy `__xen_guest` string):
/// what the capability rules look at.
public struct XenGuestParameters: Hashable, Sendable, Codable {
    public var loader: String?
    public var guestOS: String?
    public var guestVersion: String?
    public var xenVersion: String?
    public var paeMode: String?
    public var features: [XenFeature] = []
    public var virtBase: UInt64?
    public var entry: UInt64?
    public var hypercallPage: UInt64?
    public var paddrOffset: UInt64?
    public var phys32Entry: UInt64?
    public var hvStartLow: UInt64?
    public var initP2M: UInt64?
    public var supportedFeatureBits: [UInt32] = []

    public init() {}

    /// Parameters from Xen notes, later notes of the same type overriding earlier ones, as in libelf.
    public init(notes: [XenNote]) {
        for note in notes {
            switch (note.type, note.value) {
            case (.loader, .string(let s)): loader = s
            case (.guestOS, .string(let s)): guestOS = s
            case (.guestVersion, .string(let s)): guestVersion = s
            case (.xenVersion, .string(let s)): xenVersion = s
            case (.paeMode, .string(let s)): paeMode = s
            case (.features, .string(let s)): features += XenFeature.parseList(s)
            case (.virtBase, .number(let n)): virtBase = n
            case (.entry, .number(let n)): entry = n
            case (.hypercallPage, .number(let n)): hypercallPage = n
            case (.paddrOffset, .number(let n)): paddrOffset = n
            case (.phys32Entry, .number(let n)): phys32Entry = n
            case (.hvStartLow, .number(let n)): hvStartLow = n
            case (.initP2M, .number(let n)): initP2M = n
            case (.supportedFeatures, .featureBitmap(let words)): supportedFeatureBits = words
            default: break
            }
        }
    }

    /// Longest `__xen_guest` string domb reads.
    public static let maxLegacyGuestInfoLength = 4096

    /// Parameters from a legacy `__xen_guest` string (`KEY=value,KEY=value`, libelf
    /// `elf_xen_parse_guest_info`).
    public init(legacyGuestInfo text: String) {
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : ""
            switch key {
            case "LOADER": loader = value
            case "GUEST_OS": guestOS = value
            case "GUEST_VER": guestVersion = value
            case "XEN_VER": xenVersion = value
            case "PAE": paeMode = value
            case "FEATURES": features += XenFeature.parseList(value)
            case "VIRT_BASE": virtBase = Self.parseCNumber(value)
            case "VIRT_ENTRY": entry = Self.parseCNumber(value)
            case "ELF_PADDR_OFFSET": paddrOffset = Self.parseCNumber(value)
            case "HYPERCALL_PAGE":
                // In pages, relative to VIRT_BASE.
                if let pages = Self.parseCNumber(value) {
                    let (shifted, overflow) = pages.multipliedReportingOverflow(by: 4096)
                    if !overflow { hypercallPage = shifted &+ (virtBase ?? 0) }
                }
            default: break
            }
        }
    }

    /// `strtoull(value, NULL, 0)`: decimal, `0x` hex or leading-zero octal; nil if not a number.
    static func parseCNumber(_ text: String) -> UInt64? {
        let lowered = text.lowercased()
        if lowered.hasPrefix("0x") { return UInt64(lowered.dropFirst(2), radix: 16) }
        if lowered.count > 1, lowered.hasPrefix("0") { return UInt64(lowered.dropFirst(), radix: 8) }
        return UInt64(lowered)
    }
}
