//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A quote verdict as `domb attest verify --json` prints it.
public struct QuoteVerdictReport: Encodable, Sendable {
    public struct Quote: Encodable, Sendable {
        public var qualifiedSigner: String
        public var nonce: String
        public var clock: UInt64
        public var resetCount: UInt32
        public var restartCount: UInt32
        public var safe: Bool
        /// Hexadecimal, as TPM2_GetCapability reports it.
        public var firmwareVersion: String
    }

    public struct PCR: Encodable, Sendable {
        public var bank: String
        public var pcr: Int
        public var digest: String
    }

    /// One event extended on the quoted PCRs, with how far it is verified.
    public struct Event: Encodable, Sendable {
        public var index: Int
        public var pcr: Int
        public var type: String
        /// Bank name to hex digest.
        public var digests: [String: String]
        /// `golden`, `content` or `digest-only` (``LaunchedEvent/Evidence``).
        public var verified: String
    }

    public struct Reason: Encodable, Sendable {
        public var code: String
        public var message: String
    }

    public var verified: Bool
    /// The quoted selection, tpm2-tools syntax.
    public var selection: String
    public var quote: Quote?
    public var pcrs: [PCR]?
    /// One line per event extended on the quoted PCRs (``LaunchedEvent/line``).
    public var launched: [String]?
    public var events: [Event]?
    /// Every reason a refused quote failed; empty when verified.
    public var reasons: [Reason]
    /// What the event log did and did not prove.
    public var eventLog: String

    public init(_ verdict: QuoteVerdict, selection: PCRSelection, eventLogNote: String, hashing: any AttestationHashing) {
        self.verified = verdict.isVerified
        self.selection = selection.description
        self.eventLog = eventLogNote
        switch verdict {
        case .verified(let verified):
            let clock = verified.attest.clockInfo
            quote = Quote(
                qualifiedSigner: verified.attest.qualifiedSigner.hexString, nonce: verified.attest.extraData.hexString,
                clock: clock.clock, resetCount: clock.resetCount, restartCount: clock.restartCount, safe: clock.safe,
                firmwareVersion: String(verified.attest.firmwareVersion, radix: 16))
            pcrs = verified.selection.pairs.map { bank, pcr in
                PCR(bank: bank.name, pcr: pcr, digest: (verified.pcrValues[bank, pcr] ?? []).hexString)
            }
            let launchedEvents = verified.launchedEvents(hashing: hashing)
            launched = launchedEvents.map(\.line)
            events = launchedEvents.map { event in
                Event(
                    index: event.index, pcr: event.pcr, type: event.eventType.description,
                    digests: Dictionary(uniqueKeysWithValues: event.digests.digests.map { ($0.algorithm.name, $0.bytes.hexString) }),
                    verified: event.evidence.rawValue)
            }
            reasons = []
        case .failed(let failures):
            reasons = failures.map { Reason(code: $0.code.rawValue, message: $0.message) }
        }
    }
}

extension DombEvent {
    /// One line for a person: "dom1 kernel modules/dom1/kernel (1234 bytes) sha256:…".
    public var summary: String {
        switch self {
        case .module(let module):
            let digest = module.digests[.sha256].map { " sha256:\($0.hexString)" } ?? ""
            return "\(module.domain.isEmpty ? "-" : module.domain) \(module.role) \(module.label) (\(module.size) bytes)\(digest)"
        case .configuration(let configuration):
            return "\(configuration.kind) \(configuration.subject) (\(configuration.content.count) bytes inline)"
        case .separator:
            return "separator"
        }
    }
}
