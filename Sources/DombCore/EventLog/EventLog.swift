//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One record of an event log, exactly as the log states it. **Unverified**: nothing in
/// here has been checked against a TPM; the event type and the event data are not covered
/// by any digest at all (go-attestation `docs/event-log-disclosure.md`). Use
/// ``EventLog/verify(against:using:)`` to obtain ``VerifiedEvent`` values.
public struct UnverifiedEvent: Hashable, Sendable {
    /// Position in the log, the header record counting as 0 (tpm2_eventlog's `EventNum`).
    public var number: Int
    /// Byte offset of the record in the log file.
    public var offset: Int
    public var pcr: UInt32
    /// Untrusted type of the event.
    public var type: EventType
    /// Digests per bank (one SHA-1 digest in the SHA-1 format).
    public var digests: DigestSet
    /// Untrusted event data.
    public var data: [UInt8]

    public init(number: Int = 0, offset: Int = 0, pcr: UInt32, type: EventType, digests: DigestSet, data: [UInt8]) {
        self.number = number
        self.offset = offset
        self.pcr = pcr
        self.type = type
        self.digests = digests
        self.data = data
    }

    /// Whether replay extends this record into its PCR (everything but `EV_NO_ACTION`).
    public var isExtended: Bool { type != .noAction }

    /// Whether some digest has a non-zero byte. The PFP's own EV_NO_ACTION records (Spec
    /// ID, StartupLocality) carry zero digests; Windows' PCR −1 records carry real ones,
    /// which mean nothing since nothing is extended.
    public var hasNonZeroDigest: Bool { digests.digests.contains { $0.bytes.contains { $0 != 0 } } }
}

/// A TCG PC Client event log: the crypto-agile format (TCG PC Client PFP §10.2.2, a SHA-1
/// format `TCG_PCR_EVENT` header carrying ``SpecIDEvent`` followed by `TCG_PCR_EVENT2`
/// records) or the legacy SHA-1 format (§10.2.1, `TCG_PCR_EVENT` records only). All
/// fields are little-endian.
///
/// Parsing checks structure only and yields ``UnverifiedEvent`` values; it throws
/// ``ParseError`` with the byte offset and the reason on anything malformed, never
/// returns a partial log.
public struct EventLog: Hashable, Sendable {
    public enum Format: String, Hashable, Sendable {
        /// `TCG_PCR_EVENT` records, SHA-1 only (TPM 1.2 style firmware).
        case sha1
        /// Spec ID Event03 header, then `TCG_PCR_EVENT2` records.
        case cryptoAgile = "crypto-agile"
    }

    /// Resource caps for untrusted logs (go-attestation caps event data at 1 MB too).
    public struct Limits: Hashable, Sendable {
        /// Largest log accepted, in bytes.
        public var maximumLogSize: Int
        /// Most records accepted.
        public var maximumEventCount: Int
        /// Largest event data of one record, in bytes.
        public var maximumEventDataSize: Int

        public init(maximumLogSize: Int, maximumEventCount: Int, maximumEventDataSize: Int) {
            self.maximumLogSize = maximumLogSize
            self.maximumEventCount = maximumEventCount
            self.maximumEventDataSize = maximumEventDataSize
        }

        /// 128 MiB, 2,000,000 records, 1 MiB per record.
        public static let `default` = Limits(
            maximumLogSize: 128 << 20, maximumEventCount: 2_000_000, maximumEventDataSize: 1 << 20)
    }

    /// `"StartupLocality\0"` (PFP §10.4.5.3), followed by one byte.
    public static let startupLocalitySignature: [UInt8] = Array("StartupLocality".utf8) + [0]
    /// PCR index 0xFFFFFFFF ("PCR −1"), where Windows boot logs put EV_NO_ACTION records.
    public static let pcrMinusOne: UInt32 = 0xFFFF_FFFF

    /// The locality in a StartupLocality record's data (17 bytes: signature, locality),
    /// nil for other data.
    public static func startupLocality(in data: ArraySlice<UInt8>) -> UInt8? {
        guard data.count == 17, data.starts(with: startupLocalitySignature) else { return nil }
        return data[data.startIndex + 16]
    }

    public var format: Format
    /// The header of a crypto-agile log; nil for the SHA-1 format.
    public var specID: SpecIDEvent?
    /// Every record after the crypto-agile header (for the SHA-1 format, every record),
    /// EV_NO_ACTION records on PCR 0xFFFFFFFF included.
    public var events: [UnverifiedEvent] {
        didSet { appendState.state = nil }  // changed other than by append: rebuilt on the next
    }
    /// What the log needed to be read and replayed, in the order found; empty for a clean
    /// log. ``EventLogQuirk/isWorkaround`` tells firmware workarounds (never in a strict
    /// log) from rules of the spec.
    public var quirks: [EventLogQuirk] = []
    /// ``append(_:limits:)``'s knowledge of ``events`` (a cache).
    var appendState = AppendStateCache()

    /// The banks the log claims: the Spec ID header's, or sha1 for the SHA-1 format.
    public var headerBanks: [HashAlgorithm] { specID?.banks ?? [.sha1] }

    /// How completely the records cover each of ``headerBanks`` (computed from
    /// ``events``).
    public var bankCoverage: [BankCoverage] {
        var tracker = BankCoverageTracker(banks: headerBanks)
        for event in events where event.isExtended {
            let carried = headerBanks.count { event.digests[$0] != nil }
            tracker.note(pcr: event.pcr, count: carried) { event.digests[$0] != nil }
        }
        return tracker.coverage
    }

    /// The banks every extended record carries a digest for: the header's banks, less any
    /// that some record lacks (``EventLogQuirk/bankSubset(_:)``).
    public var banks: [HashAlgorithm] { bankCoverage.filter(\.isComplete).map(\.bank) }

    /// The fill after the last record, if the log had one.
    public var trailingFill: TrailingFill? {
        for case .trailingFill(let fill) in quirks { return fill }
        return nil
    }

    /// The locality announced by a `StartupLocality` EV_NO_ACTION record, if any.
    public var startupLocality: UInt8? {
        for event in events where event.type == .noAction && event.pcr == 0 {
            if let locality = Self.startupLocality(in: event.data[...]) { return locality }
        }
        return nil
    }

    /// The last byte of PCR 0's start value for this log: the StartupLocality, else 4 for
    /// an H-CRTM log, else 0 (``PCRValues/pcr0StartLocality(startupLocality:firstEvent:)``).
    public var pcr0StartLocality: UInt8 {
        guard let first = events.first(where: { $0.pcr == 0 && $0.isExtended }) else { return startupLocality ?? 0 }
        return PCRValues.pcr0StartLocality(startupLocality: startupLocality, firstEvent: first.type)
    }

    /// An empty crypto-agile log for `banks`.
    public init(banks: [HashAlgorithm]) {
        format = .cryptoAgile
        specID = SpecIDEvent(banks: banks)
        events = []
    }

    public init(format: Format, specID: SpecIDEvent?, events: [UnverifiedEvent]) {
        self.format = format
        self.specID = specID
        self.events = events
    }

    /// Parses a log. A log whose first record is an EV_NO_ACTION "Spec ID Event03" header
    /// is crypto-agile; any other log is read as the SHA-1 format.
    ///
    /// - Throws: ``ParseError`` with the offset of the offending field: truncation, sizes
    ///   beyond ``Limits``, a second Spec ID header, a digest for an algorithm the header
    ///   does not list or listed twice, a record with no digest, a PCR index ≥ 24 (except
    ///   EV_NO_ACTION on 0xFFFFFFFF), a StartupLocality that is malformed, repeated or
    ///   late, anything but fill bytes after a fill.
    ///
    /// - Parameter strict: refuse the firmware workarounds (``EventLogQuirk/isWorkaround``:
    ///   vendor info outside the header, trailing fill, PCR −1 records, records carrying a
    ///   subset of the header's banks). domb's own logs never need them.
    public init(parsing bytes: [UInt8], limits: Limits = .default, strict: Bool = false) throws(ParseError) {
        try self.init(parsing: bytes[...], limits: limits, strict: strict)
    }

    public init(parsing bytes: ArraySlice<UInt8>, limits: Limits = .default, strict: Bool = false) throws(ParseError) {
        var events: [UnverifiedEvent] = []
        // The smallest crypto-agile record is 34 bytes (one SHA-1 digest, no data).
        events.reserveCapacity(min(bytes.count / 34 + 1, limits.maximumEventCount))
        let header: Header
        do {
            header = try Self.scan(bytes, limits: limits, strict: strict) { record in events.append(record.event) }
        } catch let error as ParseError {
            throw error
        } catch {
            throw .invalid("\(error)")  // unreachable: appending does not throw
        }
        format = header.format
        specID = header.specID
        quirks = header.quirks
        self.events = events
    }

    // MARK: Writing

    /// The header record of a crypto-agile log for `specID`: a `TCG_PCR_EVENT` on PCR 0,
    /// EV_NO_ACTION, zero SHA-1 digest, carrying the ``SpecIDEvent``.
    public static func headerRecord(_ specID: SpecIDEvent) -> [UInt8] {
        let data = specID.serialized()
        var writer = ByteWriter(capacity: 32 + data.count)
        writer.writeLE(UInt32(0))
        writer.writeLE(EventType.noAction.rawValue)
        writer.writeZeros(20)
        writer.writeLE(UInt32(data.count))
        writer.writeBytes(data)
        return writer.bytes
    }

    /// A `TCG_PCR_EVENT2` record with digests in the header's bank order.
    ///
    /// - Precondition: `event.digests` has exactly the header's banks with the right sizes
    ///   (callers build events from the same bank list; a mismatch is a programming error
    ///   caught by ``append(_:)``).
    public static func event2Record(_ event: UnverifiedEvent, specID: SpecIDEvent) -> [UInt8] {
        var writer = ByteWriter(capacity: 16 + event.data.count + 4 * specID.algorithms.count + 64 * specID.algorithms.count)
        writer.writeLE(event.pcr)
        writer.writeLE(event.type.rawValue)
        let present = specID.algorithms.filter { event.digests[$0.algorithm] != nil }
        writer.writeLE(UInt32(present.count))
        for entry in present {
            writer.writeLE(entry.algorithm.rawValue)
            let digest = event.digests[entry.algorithm] ?? []
            writer.writeBytes(digest.prefix(entry.digestSize))
            writer.writeZeros(max(0, entry.digestSize - digest.count))
        }
        writer.writeLE(UInt32(truncatingIfNeeded: event.data.count))
        writer.writeBytes(event.data)
        return writer.bytes
    }

    /// A `TCG_PCR_EVENT` (SHA-1 format) record.
    public static func sha1Record(_ event: UnverifiedEvent) -> [UInt8] {
        var writer = ByteWriter(capacity: 32 + event.data.count)
        writer.writeLE(event.pcr)
        writer.writeLE(event.type.rawValue)
        let digest = event.digests[.sha1] ?? []
        writer.writeBytes(digest.prefix(20))
        writer.writeZeros(max(0, 20 - digest.count))
        writer.writeLE(UInt32(truncatingIfNeeded: event.data.count))
        writer.writeBytes(event.data)
        return writer.bytes
    }

    /// The record bytes of `event` in this log's format.
    public func record(_ event: UnverifiedEvent) -> [UInt8] {
        if let specID { return Self.event2Record(event, specID: specID) }
        return Self.sha1Record(event)
    }

    /// The whole log in its format.
    public func serialized() -> [UInt8] {
        var bytes: [UInt8] = []
        if let specID { bytes += Self.headerRecord(specID) }
        for event in events { bytes += record(event) }
        return bytes
    }

    /// Checks that `event` fits this log (a PCR below 24, exactly the log's banks with the
    /// right digest sizes, data within the limit) and appends it, numbering it. Nothing
    /// changes when it throws. Costs the same for the thousandth event as for the first:
    /// what the checks need to know of the earlier events is kept from one append to the
    /// next (``AppendState``).
    public mutating func append(_ event: UnverifiedEvent, limits: Limits = .default) throws(ParseError) {
        var event = event
        guard event.pcr < UInt32(PCRValues.pcrCount) else {
            throw .invalid("PCR \(event.pcr) is outside 0 to 23")
        }
        var state = try currentAppendState()
        let banks = state.coverage.coverage.filter(\.isComplete).map(\.bank)
        guard Set(event.digests.algorithms) == Set(banks) else {
            throw .invalid(
                "event for PCR \(event.pcr) has banks \(event.digests.algorithms.map(\.name).joined(separator: ", ")), the log has \(banks.map(\.name).joined(separator: ", "))"
            )
        }
        for digest in event.digests.digests where digest.bytes.count != digest.algorithm.digestSize {
            throw .invalid("\(digest.algorithm) digest has \(digest.bytes.count) bytes")
        }
        guard event.data.count <= limits.maximumEventDataSize else {
            throw .limit("event data is \(event.data.count) bytes, more than \(limits.maximumEventDataSize)")
        }
        event.number = (events.last?.number ?? 0) + 1
        event.offset = state.nextOffset
        try state.note(event, in: self)
        events.append(event)
        appendState.state = state
    }

    /// What ``append(_:limits:)`` knows of ``events``: the record rules run over them, the
    /// banks their extended records carry, where the next record starts. Kept between
    /// appends, and rebuilt from ``events`` when they were changed some other way.
    struct AppendState: Sendable {
        var nextOffset: Int
        var rules = RecordRules(strict: true)
        var coverage: BankCoverageTracker

        init(_ log: EventLog) throws(ParseError) {
            nextOffset = log.specID.map { EventLog.headerRecord($0).count } ?? 0
            coverage = BankCoverageTracker(banks: log.headerBanks)
            for event in log.events { try note(event, in: log) }
        }

        mutating func note(_ event: UnverifiedEvent, in log: EventLog) throws(ParseError) {
            try rules.check(event, headerAllowed: event.number == 0 && log.format == .sha1)
            if event.isExtended {
                let banks = log.headerBanks
                coverage.note(pcr: event.pcr, count: banks.count { event.digests[$0] != nil }) { event.digests[$0] != nil }
            }
            nextOffset = event.offset + log.record(event).count
        }
    }

    /// A cache, not part of the log's value: equal and hashed alike whatever it holds.
    struct AppendStateCache: Hashable, Sendable {
        var state: AppendState?
        static func == (_: Self, _: Self) -> Bool { true }
        func hash(into hasher: inout Hasher) {}
    }

    private func currentAppendState() throws(ParseError) -> AppendState {
        if let state = appendState.state { return state }
        return try AppendState(self)
    }
}

/// The fuzzing entry point for the event-log reader: parses `bytes`, then writes and
/// replays what parsed. Must never crash, whatever the input; returns whether the bytes
/// parsed. Traps if the stored and the streaming replay disagree (values or quirks).
public enum EventLogFuzz {
    @discardableResult
    public static func parse(_ bytes: [UInt8]) -> Bool {
        do {
            let log = try EventLog(parsing: bytes)
            // Exercise the writer and domb's record decoders on whatever parsed.
            _ = log.serialized()
            for event in log.events {
                _ = try? DombEvent(event)
                // `log show`'s readings, the UEFI_VARIABLE_DATA decoder on any data.
                _ = try? UEFIVariableData(parsing: event.data)
                _ = EventSummary.describe(event, long: true)
            }
            _ = log.summaryTable.text
            _ = log.quirks.map(\.description)
            // Replay (PCR 0 start, bank coverage, fill) both ways, with a stand-in hash:
            // DombCore has no crypto, and the paths under test do not depend on it.
            let stored = try log.replay(using: FuzzHashing())
            let streamed = try EventLog.replay(parsing: bytes[...], using: FuzzHashing())
            precondition(stored == streamed.values && streamed.quirks == log.quirks, "stored and streaming replay differ")
            return true
        } catch {
            return false
        }
    }

    /// A cheap, deterministic stand-in for a hash function (not a hash: fuzzing only).
    struct FuzzHashing: PCRHashing {
        func digest(_ algorithm: HashAlgorithm, _ data: ArraySlice<UInt8>) throws -> [UInt8] {
            var state: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
            for byte in data { state = (state ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return (0..<(algorithm.digestSize ?? 0)).map { UInt8(truncatingIfNeeded: state >> (8 * UInt64($0 % 8)) &+ UInt64($0)) }
        }
    }
}
