//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

// The event-log parser proper. It walks the records without copying them: each record is
// handed on as a `RecordView` of slices into the log buffer, so that streaming replay
// allocates nothing per record, and `EventLog.init(parsing:)` materialises the views into
// `UnverifiedEvent` values.

/// One record as it lies in the log buffer.
struct RecordView {
    var number: Int
    var offset: Int
    var pcr: UInt32
    var type: EventType
    /// The event data, `buffer[dataRange]` (a range, not a slice: no reference to count per record).
    var dataRange: Range<Int>
    /// Start index in `buffer` of each bank's digest, by position in `HashAlgorithm.known`;
    /// -1 when the record has none. The Spec ID header admits only known algorithms, so
    /// five slots cover every bank.
    var digestStarts: (Int, Int, Int, Int, Int) = (-1, -1, -1, -1, -1)
    /// How many digests the record carries.
    var digestCount = 1
    var buffer: ArraySlice<UInt8>

    static func slot(_ algorithm: HashAlgorithm) -> Int? {
        switch algorithm {
        case .sha1: 0
        case .sha256: 1
        case .sha384: 2
        case .sha512: 3
        case .sm3_256: 4
        default: nil
        }
    }

    func start(_ slot: Int) -> Int {
        switch slot {
        case 0: digestStarts.0
        case 1: digestStarts.1
        case 2: digestStarts.2
        case 3: digestStarts.3
        default: digestStarts.4
        }
    }

    mutating func setStart(_ slot: Int, _ start: Int) {
        switch slot {
        case 0: digestStarts.0 = start
        case 1: digestStarts.1 = start
        case 2: digestStarts.2 = start
        case 3: digestStarts.3 = start
        default: digestStarts.4 = start
        }
    }

    var data: ArraySlice<UInt8> { buffer[dataRange] }

    func digest(_ algorithm: HashAlgorithm) -> ArraySlice<UInt8>? {
        guard let slot = Self.slot(algorithm), let size = algorithm.digestSize else { return nil }
        let start = start(slot)
        guard start >= 0 else { return nil }
        return buffer[start..<(start + size)]
    }

    /// Whether every digest is all zeros.
    var digestsAreZero: Bool {
        HashAlgorithm.known.allSatisfy { digest($0)?.allSatisfy { $0 == 0 } ?? true }
    }

    /// The banks this record carries, in TPM_ALG_ID order.
    var algorithms: [HashAlgorithm] { HashAlgorithm.known.filter { digest($0) != nil } }

    var event: UnverifiedEvent {
        var digests = DigestSet()
        for algorithm in HashAlgorithm.known {
            if let digest = digest(algorithm) { digests[algorithm] = Array(digest) }
        }
        return UnverifiedEvent(number: number, offset: offset, pcr: pcr, type: type, digests: digests, data: Array(data))
    }
}

/// Cross-record rules, tracked as the records go by (no look-back over stored records).
/// Also collects the quirks found in the records themselves.
struct RecordRules {
    /// Refuse firmware workarounds (PCR −1 records).
    let strict: Bool
    private(set) var startupLocality: UInt8?
    private var pcr0Extended = false
    private(set) var quirks: [EventLogQuirk] = []
    private var minusOne: (count: Int, first: Int, withDigests: Int)?

    init(strict: Bool) { self.strict = strict }

    mutating func check(_ event: UnverifiedEvent, headerAllowed: Bool = false) throws(ParseError) {
        try check(
            number: event.number, offset: event.offset, pcr: event.pcr, type: event.type, data: event.data[...],
            digestsAreZero: !event.hasNonZeroDigest,
            headerAllowed: headerAllowed)
    }

    mutating func check(_ record: RecordView, headerAllowed: Bool = false) throws(ParseError) {
        try check(
            number: record.number, offset: record.offset, pcr: record.pcr, type: record.type, data: record.data,
            digestsAreZero: record.digestsAreZero, headerAllowed: headerAllowed)
    }

    /// `digestsAreZero` is only consulted for PCR −1 records.
    mutating func check(
        number: Int, offset: Int, pcr: UInt32, type: EventType, data dataSlice: @autoclosure () -> ArraySlice<UInt8>,
        digestsAreZero: @autoclosure () -> Bool, headerAllowed: Bool
    ) throws(ParseError) {
        if pcr >= UInt32(PCRValues.pcrCount) {
            // Windows boot logs end with EV_NO_ACTION records on PCR −1 that are never
            // extended; anything else on a PCR a TPM does not have is refused (PC Client
            // PTP §4.5.2: PCRs 0 to 23).
            guard pcr == EventLog.pcrMinusOne, type == .noAction else {
                throw .invalid(
                    "event \(number) is \(type) on PCR \(pcr)\(pcr == EventLog.pcrMinusOne ? " (0xFFFFFFFF)" : ""); a TPM has PCRs 0 to 23, and only EV_NO_ACTION records (never extended) may name PCR 0xFFFFFFFF",
                    offset: offset)
            }
            guard !strict else {
                throw .invalid(
                    "event \(number) is an EV_NO_ACTION record on PCR 0xFFFFFFFF (a Windows boot-log record); strict reading (domb's own logs) refuses it",
                    offset: offset)
            }
            var seen = minusOne ?? (0, number, 0)
            seen.count += 1
            if !digestsAreZero() { seen.withDigests += 1 }
            minusOne = seen
        } else if type != .noAction {
            if pcr == 0, !pcr0Extended {
                pcr0Extended = true
                if startupLocality == nil, PCRValues.pcr0StartLocality(startupLocality: nil, firstEvent: type) == 4 {
                    quirks.append(.hcrtmStartValue(event: number))
                }
            }
            return
        }
        let data = dataSlice()  // EV_NO_ACTION only
        // A SHA-1 format log may open with a TPM 1.2 "Spec ID Event02" header; anywhere
        // else a Spec ID record would redefine the banks mid-log.
        if SpecIDEvent.looksLikeSpecID(data), !headerAllowed {
            throw .invalid("event \(number) is a second Spec ID header", offset: offset)
        }
        if data.starts(with: EventLog.startupLocalitySignature) {
            // PFP §10.4.5.3: on PCR 0, 17 bytes, before any PCR 0 measurement.
            guard pcr == 0, data.count == 17 else {
                throw .invalid("event \(number): StartupLocality must be on PCR 0 with 17 bytes of data", offset: offset)
            }
            let locality = data[data.startIndex + 16]
            guard locality <= 4 else {
                throw .invalid("event \(number): StartupLocality \(locality) is not 0 to 4", offset: offset)
            }
            guard startupLocality == nil, !pcr0Extended else {
                throw .invalid("event \(number): StartupLocality must come once, before any PCR 0 measurement", offset: offset)
            }
            startupLocality = locality
            quirks.append(.startupLocality(locality: locality, event: number))
        }
    }

    /// The quirks, with the PCR −1 records summed up at the end.
    var allQuirks: [EventLogQuirk] {
        guard let minusOne else { return quirks }
        return quirks + [.noActionOnPCRMinusOne(count: minusOne.count, first: minusOne.first, withDigests: minusOne.withDigests)]
    }
}

extension EventLog {
    /// What ``scan(_:limits:strict:visit:)`` learns besides the records.
    struct Header {
        var format: Format
        var specID: SpecIDEvent?
        var quirks: [EventLogQuirk] = []
    }

    /// Checks every record and hands each to `visit` in order, without keeping them.
    /// Errors from `visit` propagate unchanged.
    static func scan(
        _ bytes: ArraySlice<UInt8>, limits: Limits, strict: Bool, visit: (RecordView) throws -> Void
    ) throws -> Header {
        guard bytes.count <= limits.maximumLogSize else {
            throw ParseError.limit(
                "event log is \(bytes.count) bytes, more than the \(limits.maximumLogSize)-byte limit", offset: 0)
        }
        var reader = ByteReader(slice: bytes)
        guard !reader.isEmpty else { throw ParseError.truncated("event log is empty", offset: 0) }
        if let fill = try EventLogWorkarounds.trailingFill(reader, emptyRecordSize: 32, strict: false) {
            throw ParseError.invalid("the file holds no record, only \(fill.count) bytes of 0x\([fill.byte].hexString) (an unused log area)", offset: 0)
        }
        var rules = RecordRules(strict: strict)
        let first = try readSHA1Record(&reader, buffer: bytes, number: 0, limits: limits)
        guard first.type == .noAction, first.data.starts(with: Array("Spec ID Event03".utf8)) else {
            // The SHA-1 format: every record is a TCG_PCR_EVENT.
            var header = Header(format: .sha1, specID: nil)
            try rules.check(first, headerAllowed: true)
            try visit(first)
            var number = 1
            while !reader.isEmpty {
                if let fill = try EventLogWorkarounds.trailingFill(reader, emptyRecordSize: 32, strict: strict) {
                    header.quirks.append(.trailingFill(fill))
                    break
                }
                // Every SHA-1 format record is an event, the first one (number 0) included.
                guard number < limits.maximumEventCount else {
                    throw ParseError.limit("more than \(limits.maximumEventCount) event records", offset: reader.offset)
                }
                let record = try readSHA1Record(&reader, buffer: bytes, number: number, limits: limits)
                try rules.check(record)
                try visit(record)
                number += 1
            }
            header.quirks = rules.allQuirks + header.quirks
            return header
        }
        guard first.pcr == 0 else {
            throw ParseError.invalid("Spec ID header is on PCR \(first.pcr), not 0", offset: first.offset)
        }
        guard first.digest(.sha1)?.allSatisfy({ $0 == 0 }) ?? false else {
            throw ParseError.invalid("Spec ID header digest is not all zeros", offset: first.offset + 8)
        }
        var header = Header(format: .cryptoAgile, specID: nil)
        var headerData = Array(first.data)
        if !strict, let widened = EventLogWorkarounds.vendorInfoOutsideEventSize(headerData, reader: &reader) {
            headerData = widened
            header.quirks.append(.vendorInfoOutsideEventSize)
        }
        // The event data starts after pcrIndex, eventType, digest[20] and eventSize.
        var dataReader = ByteReader(headerData, baseOffset: first.offset + 32)
        let specID = try SpecIDEvent(parsing: &dataReader)
        header.specID = specID
        var coverage = BankCoverageTracker(banks: specID.banks)
        var fill: TrailingFill?
        var number = 1
        while !reader.isEmpty {
            if let found = try EventLogWorkarounds.trailingFill(reader, emptyRecordSize: 16, strict: strict) {
                fill = found
                break
            }
            guard number <= limits.maximumEventCount else {
                throw ParseError.limit("more than \(limits.maximumEventCount) event records", offset: reader.offset)
            }
            let record = try readEvent2(&reader, buffer: bytes, number: number, specID: specID, strict: strict, limits: limits)
            try rules.check(record)
            if record.type != .noAction {
                coverage.note(pcr: record.pcr, count: record.digestCount) { record.digest($0) != nil }
            }
            try visit(record)
            number += 1
        }
        header.quirks += rules.allQuirks
        let incomplete = coverage.coverage.filter { !$0.isComplete }
        if !incomplete.isEmpty { header.quirks.append(.bankSubset(incomplete)) }
        if let fill { header.quirks.append(.trailingFill(fill)) }
        return header
    }

    /// Reads one `TCG_PCR_EVENT` (PFP §10.2.1): pcrIndex u32, eventType u32, digest[20],
    /// eventSize u32, event[eventSize].
    static func readSHA1Record(
        _ reader: inout ByteReader, buffer: ArraySlice<UInt8>, number: Int, limits: Limits
    ) throws(ParseError) -> RecordView {
        let offset = reader.offset
        let pcr = try reader.readLE(UInt32.self, "event \(number) pcrIndex")
        let type = EventType(rawValue: try reader.readLE(UInt32.self, "event \(number) eventType"))
        assert(reader.unread.startIndex == buffer.startIndex + reader.offset, "reader must read buffer from offset 0")
        let digestStart = buffer.startIndex + reader.offset
        try reader.skip(20, field: "event \(number) SHA-1 digest")
        let data = try readEventData(&reader, buffer: buffer, number: number, limits: limits)
        var record = RecordView(number: number, offset: offset, pcr: pcr, type: type, dataRange: data, buffer: buffer)
        record.setStart(0, digestStart)
        return record
    }

    /// Reads one `TCG_PCR_EVENT2` (PFP §10.2.2): pcrIndex u32, eventType u32,
    /// TPML_DIGEST_VALUES {count u32, {hashAlg u16, digest[size from the Spec ID table]}},
    /// eventSize u32, event[eventSize].
    ///
    /// Strict: every record carries exactly the header's banks. Otherwise a record may
    /// carry any non-empty subset of them (``EventLogQuirk/bankSubset(_:)``), each at most
    /// once.
    static func readEvent2(
        _ reader: inout ByteReader, buffer: ArraySlice<UInt8>, number: Int, specID: SpecIDEvent, strict: Bool,
        limits: Limits
    ) throws(ParseError) -> RecordView {
        let offset = reader.offset
        let pcr = try reader.readLE(UInt32.self, "event \(number) pcrIndex")
        let type = EventType(rawValue: try reader.readLE(UInt32.self, "event \(number) eventType"))
        let countOffset = reader.offset
        let count = try reader.readLE(UInt32.self, "event \(number) digest count")
        let listed = specID.algorithms.count
        guard count == listed || (!strict && count >= 1 && count < listed) else {
            throw .invalid(
                "event \(number) carries \(count) digests but the Spec ID header lists \(listed) banks (\(specID.banks.map(\.name).joined(separator: ", ")))\(strict && count >= 1 && count < listed ? "; strict reading (domb's own logs) refuses a subset" : "")",
                offset: countOffset)
        }
        var record = RecordView(number: number, offset: offset, pcr: pcr, type: type, dataRange: buffer.startIndex..<buffer.startIndex, buffer: buffer)
        record.digestCount = Int(count)
        assert(reader.unread.startIndex == buffer.startIndex + reader.offset, "reader must read buffer from offset 0")
        for index in 0..<Int(count) {
            let algorithmOffset = reader.offset
            let algorithm = HashAlgorithm(rawValue: try reader.readLE(UInt16.self, "event \(number) digest[\(index)] hashAlg"))
            guard let entry = specID.algorithms.first(where: { $0.algorithm == algorithm }),
                let slot = RecordView.slot(algorithm)
            else {
                throw .invalid(
                    "event \(number) has a digest for algorithm \(algorithm), which the Spec ID header does not list",
                    offset: algorithmOffset)
            }
            guard record.start(slot) < 0 else {
                throw .invalid("event \(number) has two \(algorithm) digests", offset: algorithmOffset)
            }
            // Only the position is kept (no slice per digest: replay reads them from `buffer`).
            record.setStart(slot, buffer.startIndex + reader.offset)
            try reader.skip(entry.digestSize, field: "event \(number) \(algorithm) digest")
        }
        record.dataRange = try readEventData(&reader, buffer: buffer, number: number, limits: limits)
        return record
    }

    /// Reads eventSize and skips the data; returns the data's indices in `buffer`.
    private static func readEventData(
        _ reader: inout ByteReader, buffer: ArraySlice<UInt8>, number: Int, limits: Limits
    ) throws(ParseError) -> Range<Int> {
        let sizeOffset = reader.offset
        let size = try reader.readLE(UInt32.self, "event \(number) eventSize")
        guard let count = Int(exactly: size), count <= limits.maximumEventDataSize else {
            throw .limit(
                "event \(number) data is \(size) bytes, more than the \(limits.maximumEventDataSize)-byte limit",
                offset: sizeOffset)
        }
        let start = buffer.startIndex + reader.offset
        try reader.skip(count, field: "event \(number) data (eventSize \(size))")
        return start..<(start + count)
    }
}
