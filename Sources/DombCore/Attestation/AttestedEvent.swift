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
    /// Exact event data, when the bundle fixes it (configuration events); nil to skip.
    public var data: [UInt8]?
    /// What the event is, for messages: "domain dom1 kernel".
    public var label: String

    public init(pcr: Int, eventType: EventType, digests: DigestSet, data: [UInt8]? = nil, label: String) {
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
/// in order, with nothing unknown, repeated, retyped or missing. Event types are covered by
/// no digest, so they are judged here, strictly (go-attestation's event-type disclosure).
public struct GoldenEventPolicy: Sendable {
    /// The golden events; nil checks the structure only (types, separators).
    public var events: [GoldenEvent]?
    /// Event types that may appear at all; anything else is refused by name.
    public var allowedEventTypes: Set<EventType>
    /// Event types that close a PCR: at most one per PCR, and nothing may follow it there.
    public var closingEventTypes: Set<EventType>

    /// domb's own log: module records (EV_EVENT_TAG), configuration records (EV_IPL) and one
    /// EV_SEPARATOR per PCR.
    public static let dombEventTypes: Set<EventType> = [.eventTag, .ipl, .separator]

    public init(
        events: [GoldenEvent]?, allowedEventTypes: Set<EventType> = dombEventTypes,
        closingEventTypes: Set<EventType> = [.separator]
    ) {
        self.events = events
        self.allowedEventTypes = allowedEventTypes
        self.closingEventTypes = closingEventTypes
    }

    /// Compares the log's events on the checked PCRs with the golden list, PCR by PCR (the
    /// order within a PCR is what its hash chain binds). Returns the failures and the
    /// golden events matched.
    public func check(events logEvents: [AttestedEvent], banks: [HashAlgorithm]) -> (failures: [AttestationFailure], matched: [GoldenEvent]) {
        var failures: [AttestationFailure] = []
        var matched: [GoldenEvent] = []
        let pcrs = Set((events ?? []).map(\.pcr)).union(logEvents.map(\.pcr)).sorted()
        for pcr in pcrs {
            let log = logEvents.enumerated().filter { $0.element.pcr == pcr }
            let golden = (events ?? []).filter { $0.pcr == pcr }
            var closedAt: Int?
            for (position, (index, event)) in log.enumerated() {
                let name = event.eventType.description
                if !allowedEventTypes.contains(event.eventType) {
                    failures.append(.init(.unknownEventType, "event #\(index) on PCR \(pcr) has type \(name), which a domb launch never logs"))
                }
                if closingEventTypes.contains(event.eventType) {
                    if let first = closedAt {
                        failures.append(.init(.duplicateEvent, "event #\(index) on PCR \(pcr) is a second \(name) (the first is event #\(first))"))
                    } else {
                        closedAt = index
                    }
                } else if let first = closedAt {
                    failures.append(.init(.outOfPlaceEvent, "event #\(index) (\(name)) on PCR \(pcr) comes after its closing event #\(first)"))
                }
                guard events != nil else { continue }
                guard position < golden.count else {
                    failures.append(.init(.extraEvent, "event #\(index) (\(name)) on PCR \(pcr) is not in the golden values (they list \(golden.count) events for PCR \(pcr))"))
                    continue
                }
                let expected = golden[position]
                var ok = true
                if event.eventType != expected.eventType {
                    ok = false
                    failures.append(.init(
                        .goldenEvent,
                        "event #\(index) on PCR \(pcr) has type \(name) where the golden values have \(expected.eventType.description) for \(expected.label)"))
                }
                for bank in banks {
                    guard let want = expected.digests[bank] else {
                        ok = false
                        failures.append(.init(.goldenEvent, "the golden values have no \(bank) digest for \(expected.label)"))
                        continue
                    }
                    if event.digests[bank] != want {
                        ok = false
                        failures.append(.init(
                            .goldenEvent,
                            "event #\(index) on PCR \(pcr): \(bank) digest \((event.digests[bank] ?? []).hexString) is not the golden \(want.hexString) of \(expected.label)"))
                    }
                }
                if let data = expected.data, data != event.data {
                    ok = false
                    failures.append(.init(.goldenEvent, "event #\(index) on PCR \(pcr): data differs from the golden data of \(expected.label)"))
                }
                if ok { matched.append(expected) }
            }
            for expected in golden.dropFirst(log.count) {
                failures.append(.init(
                    .missingEvent, "the log has no event for \(expected.label) on PCR \(pcr): truncated or incomplete log"))
            }
        }
        return (failures, matched)
    }
}
