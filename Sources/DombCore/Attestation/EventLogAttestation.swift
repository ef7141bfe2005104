//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

// The TCG event-log codec (EventLog/) wired into the quote verifier's hooks.

extension AttestedEvent {
    /// The verifier's view of a decoded log event.
    public init(_ event: UnverifiedEvent) {
        self.init(pcr: Int(event.pcr), eventType: event.type, digests: event.digests, data: event.data)
    }

    /// Back to the codec's type, to read domb's records in it.
    public var unverifiedEvent: UnverifiedEvent {
        UnverifiedEvent(pcr: UInt32(clamping: pcr), type: eventType, digests: digests, data: data)
    }
}

extension EventLogPolicy {
    /// domb's own logs: a crypto-agile TCG PC Client log parsed strictly (no firmware
    /// workarounds), every domb record checked against its digests, the structure checked
    /// (only module, configuration and separator events; one separator per PCR, last), and
    /// the golden events when given.
    public static func tcg(golden events: [GoldenEvent]?) -> EventLogPolicy {
        EventLogPolicy(
            decode: { bytes in
                let log = try EventLog(parsing: bytes, strict: true)
                guard log.format == .cryptoAgile else {
                    throw ParseError(.unsupported, "a SHA-1-only (TPM 1.2 format) log; domb writes crypto-agile logs")
                }
                return log.events.map(AttestedEvent.init)
            },
            eventCheck: { event, hashing in
                DombEvent.consistencyProblems(event.unverifiedEvent, using: AttestationPCRHashing(hashing: hashing))
            },
            golden: GoldenEventPolicy(events: events))
    }
}

extension VerifiedQuote {
    /// The domb records among the verified events, in log order: what was launched.
    public var launchRecords: [DombEvent] {
        events.compactMap { try? DombEvent($0.unverifiedEvent) }
    }
}

/// ``AttestationHashing`` seen as the event-log codec's ``PCRHashing``.
struct AttestationPCRHashing: PCRHashing {
    let hashing: any AttestationHashing

    func digest(_ algorithm: HashAlgorithm, _ data: ArraySlice<UInt8>) throws -> [UInt8] {
        guard let digest = hashing.hash(Array(data), with: algorithm) else {
            throw ParseError(.unsupported, "cannot hash \(algorithm)")
        }
        return digest
    }
}
