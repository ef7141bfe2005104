//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One event as the verifier sees it: whatever the log codec decoded, reduced to what the
/// checks need. UNVERIFIED: the type and data are covered by no digest, and the digests are
/// trusted only once a replay reaches a quoted PCR value.
public struct AttestedEvent: Hashable, Sendable {
    public var pcr: Int
    /// The `TCG_EVENTTYPE` (TCG PC Client PFP, §10.4.1): covered by no digest.
    public var eventType: EventType
    public var digests: DigestSet
    public var data: [UInt8]

    public init(pcr: Int, eventType: EventType, digests: DigestSet, data: [UInt8] = []) {
        self.pcr = pcr
        self.eventType = eventType
        self.digests = digests
        self.data = data
    }
}

/// An event the launch bundle says must be in the log: the golden values.
public struct GoldenEvent: Hashable, Sendable {
    public var pcr: Int
    public var eventType: EventType
    /// Digests per bank; every quoted bank must be present.
    public var digests: DigestSet
    /// The exact event data: the whole record (a module record's domain, role, size, label
    /// and digests; a configuration record's content). A logged event is the golden event
    /// only if its data is equal byte for byte; nil refuses every event (nothing to compare).
    public var data: [UInt8]?
    /// What the event is, for messages: "domain dom1 kernel".
    public var label: String

    public init(pcr: Int, eventType: EventType, digests: DigestSet, data: [UInt8]?, label: String) {
        self.pcr = pcr
        self.eventType = eventType
        self.digests = digests
        self.data = data
        self.label = label
    }
}

/// The hash function the verifier needs (PCR digest, replay). DombCore has no crypto of its
/// own; DombCrypto implements this with OpenSSL.
public protocol AttestationHashing: Sendable {
    /// The digest of `bytes` with `algorithm`, or nil if the algorithm is not available.
    func hash(_ bytes: [UInt8], with algorithm: HashAlgorithm) -> [UInt8]?
}

/// Checks a quote's signature with the attestation key. DombCrypto implements it with OpenSSL.
public protocol QuoteSignatureVerifying: Sendable {
    /// Nil if `signature` is a valid signature over exactly `message`, else why not.
    func failureToVerify(_ signature: QuoteSignature, over message: [UInt8]) -> String?
}

/// Replays events into PCR values, one bank at a time, and compares them to quoted values.
public enum EventReplay {
    /// The value a PCR holds after a TPM reset (``PCRValues/initialValue(_:pcr:startupLocality:)``;
    /// a locality-3/4 start of PCR 0 is not supported here: domb quotes its launch PCRs).
    public static func initialValue(pcr: Int, algorithm: HashAlgorithm) -> [UInt8]? {
        guard algorithm.digestSize != nil else { return nil }
        return PCRValues.initialValue(algorithm, pcr: pcr)
    }

    /// Replays `events` over the PCRs of `selection` and compares every selected PCR with
    /// `quoted`. A PCR whose value is not the initial one must have events; an event on a
    /// PCR outside the selection is refused (its PCR is not authenticated by the quote).
    public static func check(
        events: [AttestedEvent], selection: PCRSelection, quoted: PCRValues, hashing: any AttestationHashing
    ) -> [AttestationFailure] {
        var failures: [AttestationFailure] = []
        let covered = selection.normalized
        var values = PCRValues()
        var eventCounts: [Int: Int] = [:]
        for (bank, pcr) in selection.pairs { values[bank, pcr] = initialValue(pcr: pcr, algorithm: bank) }
        for (index, event) in events.enumerated() {
            let banksCovering = covered.filter { $0.value.contains(event.pcr) }.keys.sorted()
            if banksCovering.isEmpty {
                failures.append(.init(
                    .eventOnUnquotedPCR,
                    "event #\(index) (\(event.eventType.description)) extends PCR \(event.pcr), which the quote does not cover"))
                continue
            }
            // > EV_NO_ACTION events are not extended into any PCR (TCG PC Client PFP, §10.4.1).
            guard event.eventType != .noAction else { continue }
            eventCounts[event.pcr, default: 0] += 1
            for bank in banksCovering {
                guard let digest = event.digests[bank], digest.count == bank.digestSize else {
                    failures.append(.init(.replay, "event #\(index) on PCR \(event.pcr) has no \(bank) digest of the right size"))
                    continue
                }
                guard let old = values[bank, event.pcr], let new = hashing.hash(old + digest, with: bank) else {
                    failures.append(.init(.replay, "cannot compute \(bank) to replay PCR \(event.pcr)"))
                    continue
                }
                values[bank, event.pcr] = new
            }
        }
        for (bank, pcr) in selection.pairs {
            guard let quotedValue = quoted[bank, pcr] else { continue }  // reported by the PCR-value check
            let count = eventCounts[pcr] ?? 0
            if count == 0 {
                if quotedValue != initialValue(pcr: pcr, algorithm: bank) {
                    failures.append(.init(
                        .pcrWithoutEvents,
                        "\(bank):\(pcr) is \(quotedValue.hexString) but the log has no event for PCR \(pcr): something else extended it"))
                }
            } else if values[bank, pcr] != quotedValue {
                failures.append(.init(
                    .replay,
                    "\(bank):\(pcr): the log's \(count) events replay to \((values[bank, pcr] ?? []).hexString), the quote has \(quotedValue.hexString)"))
            }
        }
        return failures
    }
}

/// The golden-value checks: every event on a checked PCR must be exactly the bundle's,
/// whole record included, in order, with nothing unknown, repeated, retyped or missing. Event
/// types and data are covered by no digest, so they are judged here, strictly
/// (go-attestation's event-type disclosure); the structure by ``LaunchLogRules``, the same
/// rules `domb log verify` applies.
public struct GoldenEventPolicy: Sendable {
    /// The golden events; nil checks the structure only (types, separators).
    public var events: [GoldenEvent]?
    /// The structural rules (``LaunchLogRules/domb``).
    public var rules: LaunchLogRules

    /// domb's own log: module records (EV_EVENT_TAG), configuration records (EV_IPL) and one
    /// EV_SEPARATOR per PCR.
    public static let dombEventTypes: Set<EventType> = LaunchLogRules.domb.allowedEventTypes

    public init(
        events: [GoldenEvent]?, allowedEventTypes: Set<EventType> = dombEventTypes,
        closingEventTypes: Set<EventType> = [.separator]
    ) {
        self.events = events
        self.rules = LaunchLogRules(allowedEventTypes: allowedEventTypes, closingEventTypes: closingEventTypes)
    }

    /// The banks the golden values fix: those every golden event has a digest for (a
    /// bundle's banks). Empty when there are no golden events.
    public var goldenBanks: Set<HashAlgorithm> {
        guard let first = events?.first else { return [] }
        return (events ?? []).reduce(Set(first.digests.algorithms)) { $0.intersection($1.digests.algorithms) }
    }

    /// Compares the log's events on the checked PCRs with the golden list, PCR by PCR (the
    /// order within a PCR is what its hash chain binds). Returns the failures, the golden
    /// events matched, and the indices (in `logEvents`) of the events that equal their
    /// golden event in type, every digest and the whole data.
    ///
    /// Digests are judged in the quoted banks the golden values fix (``goldenBanks``). A TPM
    /// may have other active banks than the bundle: digests in banks the bundle lacks are
    /// authenticated by the replay only, and a module record lists the banks the launch
    /// extended, not the bundle's (``recordMatches(_:_:)``). A quote with no bank in common
    /// with the golden values is refused: nothing could be judged.
    /// - Parameter banks: the quoted banks.
    /// - Parameter coveredPCRs: judge only log events on these PCRs (the quoted ones; an
    ///   event elsewhere is refused by the replay check); nil for all.
    public func check(
        events logEvents: [AttestedEvent], banks: [HashAlgorithm], coveredPCRs: Set<Int>? = nil
    ) -> (failures: [AttestationFailure], matched: [GoldenEvent], matchedIndices: Set<Int>) {
        let judged = logEvents.map(\.pcr).filter { coveredPCRs?.contains($0) ?? true }
        let pcrs = Set((events ?? []).map(\.pcr)).union(judged)
        var failures = rules.structureViolations(logEvents, launchPCRs: pcrs)
        var matched: [GoldenEvent] = []
        var matchedIndices = Set<Int>()
        guard let events else { return (failures, matched, matchedIndices) }
        let goldenBanks = goldenBanks
        let banks = banks.filter { goldenBanks.contains($0) }
        if banks.isEmpty, !events.isEmpty {
            failures.append(.init(
                .goldenEvent,
                "the golden values are for \(goldenBanks.sorted().map(\.description).joined(separator: ", ")) and the quote covers none of those banks: no event can be judged"))
            return (failures, matched, matchedIndices)
        }
        for pcr in pcrs.sorted() {
            let log = logEvents.enumerated().filter { $0.element.pcr == pcr }
            let golden = events.filter { $0.pcr == pcr }
            for (position, (index, event)) in log.enumerated() {
                let name = event.eventType.description
                guard position < golden.count else {
                    failures.append(.init(.extraEvent, "event #\(index) (\(name)) on PCR \(pcr) is not in the golden values (they list \(golden.count) events for PCR \(pcr))"))
                    continue
                }
                let expected = golden[position]
                let label = expected.label
                var ok = true
                if event.eventType != expected.eventType {
                    ok = false
                    failures.append(.init(
                        .goldenEvent,
                        "event #\(index) on PCR \(pcr) has type \(name) where the golden values have \(expected.eventType.description) for \(label)"))
                }
                for bank in banks {
                    guard let want = expected.digests[bank] else {
                        ok = false
                        failures.append(.init(.goldenEvent, "the golden values have no \(bank) digest for \(label)"))
                        continue
                    }
                    if event.digests[bank] != want {
                        ok = false
                        failures.append(.init(
                            .goldenEvent,
                            "event #\(index) on PCR \(pcr): \(bank) digest \((event.digests[bank] ?? []).hexString) is not the golden \(want.hexString) of \(label)"))
                    }
                }
                if let data = expected.data {
                    if !Self.recordMatches(data, event) {
                        ok = false
                        failures.append(.init(
                            .goldenEvent,
                            "event #\(index) on PCR \(pcr): its record (\(event.data.count) bytes of event data) is not the golden record of \(label): a rewritten domain, role, size, label or content"))
                    }
                } else {
                    ok = false
                    failures.append(.init(.goldenEvent, "the golden values do not fix the event data of \(label): its record cannot be verified"))
                }
                if ok {
                    matched.append(expected)
                    matchedIndices.insert(index)
                }
            }
            for expected in golden.dropFirst(log.count) {
                failures.append(.init(
                    .missingEvent, "the log has no event for \(expected.label) on PCR \(pcr): truncated or incomplete log"))
            }
        }
        return (failures, matched, matchedIndices)
    }

    /// Whether `event`'s data is the golden record `golden`: equal byte for byte, or — for
    /// a module record (``ModuleRecord``) of a launch on a TPM whose active banks are not
    /// the bundle's (more banks, or fewer) — the same domain, role, size and label, in
    /// every bank both list the golden digest (at least one bank in common), and in every
    /// bank exactly the digests the event extended (a record never names one digest and
    /// extends another). The quoted banks' event digests are judged by the caller.
    public static func recordMatches(_ golden: [UInt8], _ event: AttestedEvent) -> Bool {
        if golden == event.data { return true }
        guard event.eventType == .eventTag,
            let expected = (try? ModuleRecord(parsing: golden)) ?? nil,
            let logged = (try? ModuleRecord(parsing: event.data)) ?? nil
        else { return false }
        guard logged.domain == expected.domain, logged.role == expected.role, logged.size == expected.size,
            logged.label == expected.label, logged.digests == event.digests
        else { return false }
        let common = expected.digests.algorithms.filter { logged.digests[$0] != nil }
        return !common.isEmpty && common.allSatisfy { logged.digests[$0] == expected.digests[$0] }
    }
}
