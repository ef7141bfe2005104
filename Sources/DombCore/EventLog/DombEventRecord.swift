//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

// domb's own event records (docs/eventlog.md). Chosen so that Debian 12's tpm2_eventlog
// (tpm2-tools 5.4) reads them without a warning (reference measured-boot.md §10):
//   module        EV_EVENT_TAG, TCG_PCClientTaggedEvent with domb's tag ID; the digests are
//                 those of the module bytes, so `openssl dgst` of the file reproduces them.
//   configuration EV_IPL carrying its content inline; digest = H(event data).
//   separator     EV_SEPARATOR, data 00000000, digest = H(data).

/// What a module event says about the module it measured: a self-describing record inside
/// a `TCG_PCClientTaggedEvent` (PFP §10.4.2.1: taggedEventID u32, taggedEventDataSize u32,
/// taggedEventData[]).
///
/// Record version 1, little-endian like the rest of the log:
/// `version u8 = 1 | domainLength u8 | domain | roleLength u8 | role | size u64 |
///  labelLength u8 | label | digestCount u8 | {hashAlg u16 | digest[size of hashAlg]}[n]`.
public struct ModuleRecord: Hashable, Sendable {
    /// `taggedEventID` of domb module records: the ASCII bytes "dmbM" read as a
    /// little-endian u32. Not in any registry; chosen not to collide with systemd's IDs.
    public static let tagID: UInt32 = 0x4D62_6D64
    public static let version: UInt8 = 1
    /// Longest domain, role or label, in UTF-8 bytes (one length byte each).
    public static let maximumStringLength = 255

    /// The domain the module belongs to ("" when not measured for a domain).
    public var domain: String
    /// What the module is: "kernel", "ramdisk", "device-tree", "firmware", "file", …
    public var role: String
    /// Size of the module in bytes.
    public var size: UInt64
    /// Informational name (the file's base name); not trusted for anything.
    public var label: String
    /// Digests of the module bytes; equal to the event's digests.
    public var digests: DigestSet

    public init(domain: String, role: String, size: UInt64, label: String, digests: DigestSet) {
        self.domain = domain
        self.role = role
        self.size = size
        self.label = label
        self.digests = digests
    }

    /// The `TCG_PCClientTaggedEvent` bytes (the event data of the EV_EVENT_TAG record).
    public func serialized() throws(ParseError) -> [UInt8] {
        var record = ByteWriter()
        record.writeLE(Self.version)
        for (name, text) in [("domain", domain), ("role", role)] {
            let utf8 = Array(text.utf8)
            guard utf8.count <= Self.maximumStringLength else {
                throw .limit("module \(name) \"\(text)\" is longer than \(Self.maximumStringLength) bytes")
            }
            record.writeLE(UInt8(utf8.count))
            record.writeBytes(utf8)
        }
        record.writeLE(size)
        let labelBytes = Array(Array(label.utf8).prefix(Self.maximumStringLength))
        record.writeLE(UInt8(labelBytes.count))
        record.writeBytes(labelBytes)
        record.writeLE(UInt8(digests.count))
        for digest in digests.digests {
            record.writeLE(digest.algorithm.rawValue)
            record.writeBytes(digest.bytes)
        }
        var tagged = ByteWriter(capacity: 8 + record.bytes.count)
        tagged.writeLE(Self.tagID)
        tagged.writeLE(UInt32(record.bytes.count))
        tagged.writeBytes(record.bytes)
        return tagged.bytes
    }

    /// Parses the event data of an EV_EVENT_TAG record; nil when the tag is not domb's.
    public init?(parsing data: [UInt8], baseOffset: Int = 0) throws(ParseError) {
        var reader = ByteReader(data, baseOffset: baseOffset)
        let tag = try reader.readLE(UInt32.self, "taggedEventID")
        guard tag == Self.tagID else { return nil }
        var record = ByteReader(
            slice: try reader.readLengthPrefixed(UInt32.self, endianness: .little, field: "taggedEventData"),
            baseOffset: reader.offset)
        try reader.expectEnd("tagged event")
        let versionOffset = record.offset
        let version = try record.readLE(UInt8.self, "module record version")
        guard version == Self.version else {
            throw ParseError(.unsupported, "module record version \(version), expected \(Self.version)", offset: versionOffset)
        }
        domain = try Self.readString(&record, "domain")
        role = try Self.readString(&record, "role")
        size = try record.readLE(UInt64.self, "module size")
        label = try Self.readString(&record, "label")
        let count = try record.readLE(UInt8.self, "digest count")
        var digests = DigestSet()
        for _ in 0..<count {
            let offset = record.offset
            let algorithm = HashAlgorithm(rawValue: try record.readLE(UInt16.self, "module digest algorithm"))
            guard let size = algorithm.digestSize else {
                throw ParseError(.unsupported, "module record names unknown algorithm \(algorithm)", offset: offset)
            }
            guard digests[algorithm] == nil else { throw .invalid("module record lists \(algorithm) twice", offset: offset) }
            digests[algorithm] = Array(try record.readBytes(size, field: "module \(algorithm) digest"))
        }
        self.digests = digests
        try record.expectEnd("module record")
    }

    private static func readString(_ reader: inout ByteReader, _ name: String) throws(ParseError) -> String {
        let offset = reader.offset
        let bytes = try reader.readLengthPrefixed(UInt8.self, endianness: .little, field: "module \(name)")
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalid("module \(name) is not UTF-8", offset: offset)
        }
        return text
    }
}

/// A configuration record: content carried inline in an EV_IPL event, whose digest is the
/// hash of the whole event data. Event data: `"domb:<kind>:<subject>" NUL <content>`.
public struct ConfigurationRecord: Hashable, Sendable {
    public static let prefix: [UInt8] = Array("domb:".utf8)
    /// Largest inline content; bigger inputs are measured as modules (a ``ModuleRecord``
    /// with the digests of the content), see `LaunchMeasurementPlan`.
    public static let maximumContentSize = 256 << 10

    /// Whether `count` bytes of content are carried inline.
    public static func fitsInline(_ count: Int) -> Bool { count <= maximumContentSize }

    /// "cmdline", "config", "launch-dtb", "string", …
    public var kind: String
    /// Usually a domain name; may be empty.
    public var subject: String
    public var content: [UInt8]

    public init(kind: String, subject: String, content: [UInt8]) {
        self.kind = kind
        self.subject = subject
        self.content = content
    }

    public func serialized() throws(ParseError) -> [UInt8] {
        guard !kind.contains(":"), !kind.utf8.contains(0), !subject.utf8.contains(0) else {
            throw .invalid("configuration kind \"\(kind)\" or subject \"\(subject)\" contains ':' or NUL")
        }
        guard content.count <= Self.maximumContentSize else {
            throw .limit("inline configuration is \(content.count) bytes, more than \(Self.maximumContentSize)")
        }
        return Self.prefix + Array("\(kind):\(subject)".utf8) + [0] + content
    }

    /// Parses EV_IPL event data; nil when it is not a domb record.
    public init?(parsing data: [UInt8]) {
        guard data.starts(with: Self.prefix), let nul = data.firstIndex(of: 0) else { return nil }
        guard let header = String(validating: data[Self.prefix.count..<nul], as: UTF8.self),
            let colon = header.firstIndex(of: ":")
        else { return nil }
        kind = String(header[..<colon])
        subject = String(header[header.index(after: colon)...])
        content = Array(data[(nul + 1)...])
    }
}

/// domb's events as a reader sees them.
public enum DombEvent: Hashable, Sendable {
    case module(ModuleRecord)
    case configuration(ConfigurationRecord)
    case separator

    /// The domb record in `event`, nil if it is not one of domb's. Throws when a record
    /// carries domb's tag but is malformed.
    public init?(_ event: UnverifiedEvent) throws(ParseError) {
        switch event.type {
        case .eventTag:
            guard let record = try ModuleRecord(parsing: event.data, baseOffset: event.offset) else { return nil }
            self = .module(record)
        case .ipl:
            guard let record = ConfigurationRecord(parsing: event.data) else { return nil }
            self = .configuration(record)
        case .separator:
            self = .separator
        default:
            return nil
        }
    }

    /// Problems with the record's claims that can be checked from the log alone: a module
    /// record's digests must be the event's; a configuration's and separator's digests
    /// must be the hash of the event data. Empty when consistent.
    public static func consistencyProblems(_ event: UnverifiedEvent, using hasher: some PCRHashing) -> [String] {
        do {
            guard let decoded = try DombEvent(event) else { return [] }
            switch decoded {
            case .module(let record):
                return record.digests == event.digests
                    ? [] : ["event \(event.number): module record digests differ from the event's digests"]
            case .configuration, .separator:
                let expected = try hasher.digests(event.data[...], banks: event.digests.algorithms)
                return expected == event.digests
                    ? [] : ["event \(event.number): digest is not the hash of the event data"]
            }
        } catch {
            return ["event \(event.number): \(error)"]
        }
    }
}

/// Builders for domb's records.
public enum DombEvents {
    /// EV_SEPARATOR event data (PFP §10.4.4: 0x00000000 for a normal separator).
    public static let separatorData: [UInt8] = [0, 0, 0, 0]

    /// A module event: EV_EVENT_TAG whose digests are `record.digests` (the module bytes).
    public static func module(pcr: Int, _ record: ModuleRecord) throws(ParseError) -> UnverifiedEvent {
        UnverifiedEvent(
            pcr: UInt32(pcr), type: .eventTag, digests: record.digests, data: try record.serialized())
    }

    /// A configuration event: EV_IPL, data inline, digests = H(data) in `banks`.
    public static func configuration(
        pcr: Int, _ record: ConfigurationRecord, banks: [HashAlgorithm], using hasher: some PCRHashing
    ) throws -> UnverifiedEvent {
        let data = try record.serialized()
        return UnverifiedEvent(pcr: UInt32(pcr), type: .ipl, digests: try hasher.digests(data[...], banks: banks), data: data)
    }

    /// The EV_SEPARATOR that closes a launch on `pcr`.
    public static func separator(pcr: Int, banks: [HashAlgorithm], using hasher: some PCRHashing) throws -> UnverifiedEvent {
        UnverifiedEvent(
            pcr: UInt32(pcr), type: .separator, digests: try hasher.digests(separatorData[...], banks: banks),
            data: separatorData)
    }
}
