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
    /// workarounds), every record checked by the record rules of ``LaunchLogRules`` (the
    /// same rules as `domb log verify`), the structure checked on the quoted PCRs (only
    /// module, configuration and separator events; one separator per PCR, last), and the
    /// golden events, whole records, when given.
    public static func tcg(golden events: [GoldenEvent]?) -> EventLogPolicy {
        EventLogPolicy(
            decode: { bytes in
                let log = try EventLog(parsing: bytes, strict: true)
                guard log.format == .cryptoAgile else {
                    throw ParseError(.unsupported, "a SHA-1-only (TPM 1.2 format) log; domb writes crypto-agile logs")
                }
                return log.events.map(AttestedEvent.init)
            },
            eventCheck: { event, index, hashing in
                LaunchLogRules.domb.recordProblems(event, index: index, using: AttestationPCRHashing(hashing: hashing))
            },
            golden: GoldenEventPolicy(events: events))
    }
}

/// One event a verified quote vouches for, and how much of it is verified. Everything the
/// launch extended on the quoted PCRs appears, so nothing measured is hidden; only what is
/// verified is presented as fact.
public struct LaunchedEvent: Hashable, Sendable {
    /// How far the event is verified.
    public enum Evidence: String, Hashable, Sendable {
        /// Type, every digest and the whole record equal the bundle's golden event.
        case golden
        /// The digest is authentic (replayed to the quote) and covers the data itself: a
        /// configuration or separator record, whose content is therefore verified.
        case content
        /// The digest is authentic but the record's text (a module's domain, role, size,
        /// label; or data that is not a domb record) is only a claim.
        case digestOnly = "digest-only"
    }

    /// Index in the log.
    public var index: Int
    public var pcr: Int
    public var eventType: EventType
    public var digests: DigestSet
    public var record: DombEvent?
    public var evidence: Evidence

    /// One line for a person, untrusted text escaped, the unverified part marked.
    public var line: String {
        let sha256 = digests[.sha256].map { " sha256:\($0.hexString)" } ?? ""
        switch (evidence, record) {
        case (.golden, .module(let module)):
            return "\(Self.describe(module))\(sha256) [golden]"
        case (.golden, .configuration(let configuration)), (.content, .configuration(let configuration)):
            return "\(Self.describe(configuration)) [\(evidence == .golden ? "golden" : "content verified by its digest")]"
        case (.golden, .separator), (.content, .separator):
            return "PCR \(pcr) separator [\(evidence == .golden ? "golden" : "content verified by its digest")]"
        case (_, .module(let module)):
            return "PCR \(pcr) \(eventType)\(sha256) [UNVERIFIED record, claims: \(Self.describe(module))]"
        default:
            return "PCR \(pcr) \(eventType)\(sha256) [UNVERIFIED data: not a domb record]"
        }
    }

    static func describe(_ module: ModuleRecord) -> String {
        let domain = module.domain.isEmpty ? "-" : TerminalText.escape(module.domain)
        return "\(domain) \(TerminalText.escape(module.role)) \(TerminalText.escape(module.label)) (\(module.size) bytes)"
    }

    static func describe(_ configuration: ConfigurationRecord) -> String {
        let what = "\(TerminalText.escape(configuration.kind)) \(TerminalText.escape(configuration.subject))"
        guard configuration.kind == "cmdline" || configuration.kind == "string" else {
            return "\(what) (\(configuration.content.count) bytes inline)"
        }
        return "\(what) \"\(TerminalText.escape(bytes: configuration.content))\""
    }
}

extension VerifiedQuote {
    /// Every extended event on the quoted PCRs, in log order, with how far it is verified.
    public func launchedEvents(hashing: any AttestationHashing) -> [LaunchedEvent] {
        let quoted = Set(selection.banks.flatMap(\.pcrs))
        let hasher = AttestationPCRHashing(hashing: hashing)
        return events.enumerated().compactMap { index, event -> LaunchedEvent? in
            guard quoted.contains(event.pcr), event.eventType != .noAction else { return nil }
            let record = try? DombEvent(event.unverifiedEvent)
            let evidence: LaunchedEvent.Evidence
            if goldenEventIndices?.contains(index) == true {
                evidence = .golden
            } else if let record, DombEvent.consistencyProblems(event.unverifiedEvent, using: hasher).isEmpty,
                case .module = record
            {
                evidence = .digestOnly
            } else if record != nil, DombEvent.consistencyProblems(event.unverifiedEvent, using: hasher).isEmpty {
                evidence = .content
            } else {
                evidence = .digestOnly
            }
            return LaunchedEvent(
                index: index, pcr: event.pcr, eventType: event.eventType, digests: event.digests, record: record ?? nil,
                evidence: evidence)
        }
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
