//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One reason a quote was refused. A verdict lists every reason found, not only the first.
public struct AttestationFailure: Hashable, Sendable, CustomStringConvertible, Codable {
    /// Stable, machine-readable names (`--json` prints them); extensible like ``ParseError/Code-swift.struct``.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The verifier was asked to check nothing, or with inconsistent inputs.
        public static let policy = Code(rawValue: "policy")
        /// The attest bytes are not a well-formed `TPMS_ATTEST`.
        public static let malformedAttest = Code(rawValue: "malformed-attest")
        /// The signature does not verify with the attestation key over the exact attest bytes.
        public static let signature = Code(rawValue: "signature")
        /// The signing hash is not one the policy accepts, or does not fit the key.
        public static let signatureHash = Code(rawValue: "signature-hash")
        /// `magic` is not `TPM_GENERATED_VALUE`: the TPM did not produce these bytes.
        public static let magic = Code(rawValue: "magic")
        /// `type` is not `TPM_ST_ATTEST_QUOTE`.
        public static let type = Code(rawValue: "type")
        /// `extraData` is not the verifier's nonce: a stale or foreign quote.
        public static let nonce = Code(rawValue: "nonce")
        /// The quote does not select exactly the PCRs to check (CVE-2022-0317).
        public static let selection = Code(rawValue: "selection")
        /// The PCR values sent do not match the quote's selection.
        public static let pcrValues = Code(rawValue: "pcr-values")
        /// The PCR values sent do not hash to the signed `pcrDigest`.
        public static let pcrDigest = Code(rawValue: "pcr-digest")
        /// A quoted PCR differs from its golden value.
        public static let goldenPCR = Code(rawValue: "golden-pcr")
        /// `clockInfo.safe` is NO: the clock may have gone back.
        public static let clockUnsafe = Code(rawValue: "clock-unsafe")
        /// `resetCount` is lower than in the last verified quote.
        public static let resetCountWentBack = Code(rawValue: "reset-count-went-back")
        /// `restartCount` is lower than in the last verified quote of the same boot.
        public static let restartCountWentBack = Code(rawValue: "restart-count-went-back")
        /// `clock` is not later than in the last verified quote: a replayed quote.
        public static let clockWentBack = Code(rawValue: "clock-went-back")
        /// The policy needs an event log and the evidence has none.
        public static let eventLogMissing = Code(rawValue: "event-log-missing")
        /// The event log does not decode.
        public static let eventLogMalformed = Code(rawValue: "event-log-malformed")
        /// An event extends a PCR the quote does not cover, so nothing authenticates it.
        public static let eventOnUnquotedPCR = Code(rawValue: "event-on-unquoted-pcr")
        /// Replaying the log does not give the quoted value of a PCR.
        public static let replay = Code(rawValue: "replay")
        /// A quoted PCR has a non-initial value but the log has no event for it.
        public static let pcrWithoutEvents = Code(rawValue: "pcr-without-events")
        /// An event's data does not match its digests (a configuration record edited in the log).
        public static let eventData = Code(rawValue: "event-data")
        /// An event type that domb does not accept at all.
        public static let unknownEventType = Code(rawValue: "unknown-event-type")
        /// An event type that may appear once appears again (a second separator).
        public static let duplicateEvent = Code(rawValue: "duplicate-event")
        /// An event where its type may not be (after the separator, retyped).
        public static let outOfPlaceEvent = Code(rawValue: "out-of-place-event")
        /// An event whose type, digest or data differ from the golden values.
        public static let goldenEvent = Code(rawValue: "golden-event")
        /// The golden values list an event the log does not have (a truncated log).
        public static let missingEvent = Code(rawValue: "missing-event")
        /// The log has an event the golden values do not list.
        public static let extraEvent = Code(rawValue: "extra-event")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "[\(code)] \(message)" }
}

/// The outcome of verifying a quote: a value, never an exception.
public enum QuoteVerdict: Sendable {
    case verified(VerifiedQuote)
    /// Every reason found, in the order the checks ran.
    case failed([AttestationFailure])

    public var isVerified: Bool {
        if case .verified = self { return true }
        return false
    }

    public var failures: [AttestationFailure] {
        if case .failed(let reasons) = self { return reasons }
        return []
    }
}

/// A quote whose every check passed: from here on its contents are trusted.
public struct VerifiedQuote: Sendable {
    public var attest: TPMSAttest
    /// The quoted PCR values, authenticated by the signature through `pcrDigest`.
    public var pcrValues: PCRValues
    public var selection: PCRSelection
    /// Events that replayed to the quoted PCRs (empty when no log was checked).
    public var events: [AttestedEvent]
    /// Golden events matched, in log order, when golden events were given.
    public var matchedEvents: [GoldenEvent]
    /// Indices (in ``events``) of the events equal to their golden event, whole record
    /// included; nil when no golden events were given.
    public var goldenEventIndices: Set<Int>?
    /// The record to store so that the next quote from this TPM must be later.
    public var state: AttestationState.Record
}
