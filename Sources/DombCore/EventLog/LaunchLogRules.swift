//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The structural rules for the records of an event log: one set, applied by `domb log
/// verify` and by `domb attest verify` alike, so that a record one of them accepts the other
/// cannot refuse. Event types and data are covered by no digest, so these rules are what
/// stands between a forged record and the verdict.
///
/// Record rules (every event of the log):
/// - an `EV_NO_ACTION` record carries only zero digests: it is never extended (TCG PC Client
///   PFP §10.4.5), so a digest there can only make a verifier believe something was measured;
/// - a domb record is consistent: a module record's digests are its event's digests, a
///   configuration or separator record's digests are the hash of its data
///   (``DombEvent/consistencyProblems(_:using:)``); a record carrying domb's tag or prefix
///   that does not parse is refused.
///
/// Launch rules (the launch PCRs only): only domb's event types (module `EV_EVENT_TAG`,
/// configuration `EV_IPL`, `EV_SEPARATOR`); one closing separator per PCR, and nothing
/// after it.
public struct LaunchLogRules: Sendable {
    /// Event types that may appear on a launch PCR; anything else is refused by name.
    public var allowedEventTypes: Set<EventType>
    /// Event types that close a PCR: at most one per PCR, and nothing may follow it there.
    public var closingEventTypes: Set<EventType>

    /// domb's own log.
    public static let domb = LaunchLogRules(allowedEventTypes: [.eventTag, .ipl, .separator], closingEventTypes: [.separator])

    public init(allowedEventTypes: Set<EventType>, closingEventTypes: Set<EventType>) {
        self.allowedEventTypes = allowedEventTypes
        self.closingEventTypes = closingEventTypes
    }

    /// What is wrong with one record (the record rules); `index` numbers it in messages.
    public func recordProblems(_ event: AttestedEvent, index: Int, using hasher: some PCRHashing) -> [String] {
        var problems: [String] = []
        // Windows' EV_NO_ACTION records on PCR 0xFFFFFFFF carry real digests but lie on no PCR,
        // so nothing can be taken as measured there (EventLogQuirk.noActionOnPCRMinusOne; strict
        // parsing, which attest verify uses, refuses them anyway).
        if event.eventType == .noAction, event.pcr != Int(EventLog.pcrMinusOne),
            event.digests.digests.contains(where: { $0.bytes.contains { $0 != 0 } })
        {
            problems.append(
                "event #\(index) (EV_NO_ACTION) on PCR \(event.pcr) carries a non-zero digest: EV_NO_ACTION is never extended, so no digest there is measured")
        }
        var unverified = event.unverifiedEvent
        unverified.number = index
        problems += DombEvent.consistencyProblems(unverified, using: hasher)
        return problems
    }

    /// The launch rules over the events of `launchPCRs` (events in log order, numbered by
    /// their index in `events`).
    public func structureViolations(_ events: [AttestedEvent], launchPCRs: Set<Int>) -> [AttestationFailure] {
        var failures: [AttestationFailure] = []
        for pcr in launchPCRs.sorted() {
            var closedAt: Int?
            for (index, event) in events.enumerated() where event.pcr == pcr {
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
            }
        }
        return failures
    }

    /// Both rule sets: the record rules over every event, the launch rules over `launchPCRs`.
    public func violations(_ events: [AttestedEvent], launchPCRs: Set<Int>, using hasher: some PCRHashing) -> [AttestationFailure] {
        var failures: [AttestationFailure] = []
        for (index, event) in events.enumerated() {
            failures += recordProblems(event, index: index, using: hasher).map { AttestationFailure(.eventData, $0) }
        }
        return failures + structureViolations(events, launchPCRs: launchPCRs)
    }

    /// The PCRs a log's own records mark as launch PCRs when no policy names them (`domb
    /// log verify` of a log that may also hold firmware events): those carrying a domb record.
    public static func pcrsWithDombRecords(_ events: [AttestedEvent]) -> Set<Int> {
        Set(events.filter { (try? DombEvent($0.unverifiedEvent)) != nil && $0.eventType != .separator }.map(\.pcr))
    }
}
