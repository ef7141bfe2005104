//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One event as the verifier sees it: whatever the log codec decoded, reduced to what the
/// checks need. UNVERIFIED: the type and data are covered by no digest, and the digests are
/// trusted only once a replay reaches a quoted PCR value.
public struct AttestedEvent: Hashable, Sendable {
    public var pcr: Int
    /// The raw `TCG_EVENTTYPE` (TCG PC Client PFP, §10.4.1).
    public var eventType: UInt32
    public var digests: DigestSet
    public var data: [UInt8]

    public init(pcr: Int, eventType: UInt32, digests: DigestSet, data: [UInt8] = []) {
        self.pcr = pcr
        self.eventType = eventType
        self.digests = digests
        self.data = data
    }
}

/// An event the launch bundle says must be in the log: the golden values.
public struct GoldenEvent: Hashable, Sendable {
    public var pcr: Int
    public var eventType: UInt32
    /// Digests per bank; every quoted bank must be present.
    public var digests: DigestSet
    /// Exact event data, when the bundle fixes it (configuration events); nil to skip.
    public var data: [UInt8]?
    /// What the event is, for messages: "domain dom1 kernel".
    public var label: String

    public init(pcr: Int, eventType: UInt32, digests: DigestSet, data: [UInt8]? = nil, label: String) {
        self.pcr = pcr
        self.eventType = eventType
        self.digests = digests
        self.data = data
        self.label = label
    }
}

/// `TCG_EVENTTYPE` values the attestation checks name (TCG PC Client PFP 1.05, §10.4.1).
public enum TCGEventType {
    public static let postCode: UInt32 = 0x1
    public static let unused: UInt32 = 0x2
    /// Not extended into any PCR; its digests are zero.
    public static let noAction: UInt32 = 0x3
    public static let separator: UInt32 = 0x4
    public static let action: UInt32 = 0x5
    public static let eventTag: UInt32 = 0x6
    public static let ipl: UInt32 = 0xD
    public static let postCode2: UInt32 = 0x13

    /// The spec name, or `EventType(0x…)` for a value domb does not know.
    public static func name(_ type: UInt32) -> String {
        let names: [UInt32: String] = [
            0x0: "EV_PREBOOT_CERT", 0x1: "EV_POST_CODE", 0x2: "EV_UNUSED", 0x3: "EV_NO_ACTION",
            0x4: "EV_SEPARATOR", 0x5: "EV_ACTION", 0x6: "EV_EVENT_TAG", 0x7: "EV_S_CRTM_CONTENTS",
            0x8: "EV_S_CRTM_VERSION", 0x9: "EV_CPU_MICROCODE", 0xA: "EV_PLATFORM_CONFIG_FLAGS",
            0xB: "EV_TABLE_OF_DEVICES", 0xC: "EV_COMPACT_HASH", 0xD: "EV_IPL", 0xE: "EV_IPL_PARTITION_DATA",
            0xF: "EV_NONHOST_CODE", 0x10: "EV_NONHOST_CONFIG", 0x11: "EV_NONHOST_INFO",
            0x12: "EV_OMIT_BOOT_DEVICE_EVENTS", 0x13: "EV_POST_CODE2",
        ]
        if let name = names[type] { return name }
        let digits = String(type, radix: 16)
        return "EventType(0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ")"
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
    /// The value a PCR holds after a TPM reset (PC Client PTP §4.5.2: PCRs 17–22 are all
    /// ones, the rest zeros; a locality-3/4 start of PCR 0 is not supported).
    public static func initialValue(pcr: Int, algorithm: HashAlgorithm) -> [UInt8]? {
        guard let size = algorithm.digestSize else { return nil }
        return [UInt8](repeating: (17...22).contains(pcr) ? 0xFF : 0x00, count: size)
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
                    "event #\(index) (\(TCGEventType.name(event.eventType))) extends PCR \(event.pcr), which the quote does not cover"))
                continue
            }
            // > EV_NO_ACTION events are not extended into any PCR (TCG PC Client PFP, §10.4.1).
            guard event.eventType != TCGEventType.noAction else { continue }
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
    public var events: [GoldenEvent]
    /// Event types that may appear at all; anything else is refused by name.
    public var allowedEventTypes: Set<UInt32>
    /// Event types that close a PCR: at most one per PCR, and nothing may follow it there.
    public var closingEventTypes: Set<UInt32>

    /// domb's own log uses configuration and image events, tags and one separator per PCR.
    public static let dombEventTypes: Set<UInt32> = [
        TCGEventType.eventTag, TCGEventType.postCode2, TCGEventType.ipl, TCGEventType.action,
        TCGEventType.separator,
    ]

    public init(
        events: [GoldenEvent], allowedEventTypes: Set<UInt32> = dombEventTypes,
        closingEventTypes: Set<UInt32> = [TCGEventType.separator]
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
        let pcrs = Set(events.map(\.pcr)).union(logEvents.map(\.pcr)).sorted()
        for pcr in pcrs {
            let log = logEvents.enumerated().filter { $0.element.pcr == pcr }
            let golden = events.filter { $0.pcr == pcr }
            var closedAt: Int?
            for (position, (index, event)) in log.enumerated() {
                let name = TCGEventType.name(event.eventType)
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
                        "event #\(index) on PCR \(pcr) has type \(name) where the golden values have \(TCGEventType.name(expected.eventType)) for \(expected.label)"))
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
