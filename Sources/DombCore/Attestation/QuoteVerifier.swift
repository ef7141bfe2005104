//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// What a quote must prove. Strict by default: every field has to be given or is checked.
public struct QuotePolicy: Sendable {
    /// The verifier's fresh nonce; the quote's `extraData` must equal it.
    public var nonce: [UInt8]
    /// Exactly the PCRs to check: the quote must select these and no others
    /// (CVE-2022-0317: PCRs outside the quote must never be trusted).
    public var selection: PCRSelection
    /// Signing hashes accepted (SHA-1 is not).
    public var signatureHashes: Set<HashAlgorithm> = [.sha256, .sha384, .sha512]
    /// Golden PCR values; each must be in ``selection`` and equal the quoted value.
    public var expectedPCRs: PCRValues?
    /// Event-log checks; nil when the policy checks PCR values only.
    public var eventLog: EventLogPolicy?
    /// Refuse a quote whose `clockInfo.safe` is NO.
    public var requireSafeClock = true

    public init(nonce: [UInt8], selection: PCRSelection, expectedPCRs: PCRValues? = nil, eventLog: EventLogPolicy? = nil) {
        self.nonce = nonce
        self.selection = selection
        self.expectedPCRs = expectedPCRs
        self.eventLog = eventLog
    }
}

/// How to check the event log sent with a quote: the hooks where the TCG event-log codec
/// (``decode``, ``eventCheck``) and the bundle's golden values (``golden``) plug in.
/// ``EventLogPolicy/tcg(golden:)`` is the one domb uses.
public struct EventLogPolicy: Sendable {
    /// Decodes the log bytes into events (the TCG event-log codec). Throwing refuses the quote.
    public var decode: @Sendable ([UInt8]) throws -> [AttestedEvent]
    /// Checks one event's record (what replay cannot see: data against digests, and the
    /// record rules of ``LaunchLogRules``); gets the event's index in the log; returns problems.
    public var eventCheck: (@Sendable (AttestedEvent, Int, any AttestationHashing) -> [String])?
    /// The event structure and golden events; nil to check the replay only.
    public var golden: GoldenEventPolicy?

    public init(
        decode: @escaping @Sendable ([UInt8]) throws -> [AttestedEvent],
        eventCheck: (@Sendable (AttestedEvent, Int, any AttestationHashing) -> [String])? = nil, golden: GoldenEventPolicy?
    ) {
        self.decode = decode
        self.eventCheck = eventCheck
        self.golden = golden
    }
}

/// Verifies a TPM quote and everything it vouches for, and says why not in full.
///
/// Order of checks (all run; the verdict lists every failure): structure of the attest
/// bytes; signature over those exact bytes with the attestation key; magic and type; nonce;
/// selection equal to the policy's; PCR values sent equal to the selection and hashing to
/// `pcrDigest`; golden PCR values; clock, reset and restart counts against the stored state;
/// event-log replay per bank; golden events.
public struct QuoteVerifier: Sendable {
    public var signatureVerifier: any QuoteSignatureVerifying
    public var hashing: any AttestationHashing

    public init(signatureVerifier: any QuoteSignatureVerifying, hashing: any AttestationHashing) {
        self.signatureVerifier = signatureVerifier
        self.hashing = hashing
    }

    /// - Parameters:
    ///   - evidence: what the host sent (attest bytes, signature, PCR values, log).
    ///   - policy: what it must prove.
    ///   - state: the stored clock state; the verdict's record is what to store next.
    public func verify(_ evidence: QuoteEvidence, policy: QuotePolicy, state: AttestationState? = nil) -> QuoteVerdict {
        var failures: [AttestationFailure] = []
        if policy.selection.normalized.isEmpty {
            failures.append(.init(.policy, "no PCRs to check: give the PCR selection the quote must cover"))
        }
        if policy.nonce.isEmpty {
            failures.append(.init(.policy, "empty nonce: a quote without a fresh nonce proves nothing about now"))
        }

        // Signature first, over the exact bytes received (never a re-serialisation).
        if !policy.signatureHashes.contains(evidence.signature.hash) {
            failures.append(.init(
                .signatureHash,
                "signed with \(evidence.signature.hash), accepted: \(policy.signatureHashes.sorted().map(\.name).joined(separator: ", "))"))
        }
        if let reason = signatureVerifier.failureToVerify(evidence.signature, over: evidence.attest) {
            failures.append(.init(.signature, "the signature does not verify with the attestation key: \(reason)"))
        }

        let attest: TPMSAttest
        do {
            attest = try TPMSAttest(parsing: evidence.attest)
        } catch {
            failures.append(.init(.malformedAttest, "attest bytes: \(error)"))
            return .failed(failures)
        }
        if attest.magic != TPMSAttest.generatedValue {
            failures.append(.init(.magic, "magic is 0x\(String(attest.magic, radix: 16)), not TPM_GENERATED_VALUE 0xff544347"))
        }
        guard let quote = attest.quote else {
            failures.append(.init(.type, "type is 0x\(String(attest.type, radix: 16)), not TPM_ST_ATTEST_QUOTE 0x8018"))
            return .failed(failures)
        }
        if attest.extraData != policy.nonce {
            failures.append(.init(
                .nonce, "the quote's nonce is \(attest.extraData.hexString), expected \(policy.nonce.hexString): a stale or foreign quote"))
        }

        // CVE-2022-0317: the quote must cover exactly the PCRs that will be trusted.
        let quoted = quote.pcrSelection.normalized
        let wanted = policy.selection.normalized
        if quoted != wanted {
            let missing = Self.difference(wanted, quoted)
            let extra = Self.difference(quoted, wanted)
            var parts: [String] = []
            if !missing.isEmpty { parts.append("does not cover \(missing)") }
            if !extra.isEmpty { parts.append("also covers \(extra)") }
            failures.append(.init(
                .selection, "the quote selects \(quote.pcrSelection), the policy \(policy.selection): it \(parts.joined(separator: " and "))"))
        }
        if quote.pcrSelection.banks.count != Set(quote.pcrSelection.banks.map(\.algorithm)).count {
            failures.append(.init(.selection, "the quote's selection lists a bank twice"))
        }

        // The PCR values sent must be exactly those quoted, and hash to pcrDigest.
        var valueFailure = false
        for bank in evidence.pcrValues.algorithms {
            for pcr in evidence.pcrValues.pcrs(in: bank) where !(quoted[bank]?.contains(pcr) ?? false) {
                valueFailure = true
                failures.append(.init(.pcrValues, "a value for \(bank):\(pcr) was sent but the quote does not cover it"))
            }
        }
        var concatenated: [UInt8] = []
        for (bank, pcr) in quote.pcrSelection.pairs {
            if let value = evidence.pcrValues[bank, pcr] {
                concatenated += value
            } else {
                valueFailure = true
                failures.append(.init(.pcrValues, "the quote covers \(bank):\(pcr) but no value was sent for it"))
            }
        }
        if !valueFailure {
            let digest = hashing.hash(concatenated, with: evidence.signature.hash)
            if digest == nil || digest != quote.pcrDigest {
                failures.append(.init(
                    .pcrDigest,
                    "the PCR values sent hash to \((digest ?? []).hexString) with \(evidence.signature.hash), the quote's pcrDigest is \(quote.pcrDigest.hexString): tampered or stale PCR values"))
            }
        }
        if let expected = policy.expectedPCRs {
            for bank in expected.algorithms {
                for pcr in expected.pcrs(in: bank) {
                    guard let golden = expected[bank, pcr] else { continue }
                    guard quoted[bank]?.contains(pcr) ?? false else {
                        failures.append(.init(.goldenPCR, "golden value for \(bank):\(pcr) but the quote does not cover it"))
                        continue
                    }
                    if let value = evidence.pcrValues[bank, pcr], value != golden {
                        failures.append(.init(.goldenPCR, "\(bank):\(pcr) is \(value.hexString), the golden value is \(golden.hexString)"))
                    }
                }
            }
        }

        failures += AttestationState.check(attest.clockInfo, against: state?.record(for: attest), requireSafe: policy.requireSafeClock)

        var events: [AttestedEvent] = []
        var matched: [GoldenEvent] = []
        var goldenIndices: Set<Int>?
        if let logPolicy = policy.eventLog {
            if let log = evidence.eventLog {
                do {
                    events = try logPolicy.decode(log)
                    failures += EventReplay.check(
                        events: events, selection: quote.pcrSelection, quoted: evidence.pcrValues, hashing: hashing)
                    let quotedPCRs = Set(quoted.values.flatMap { $0 })
                    if let eventCheck = logPolicy.eventCheck {
                        for (index, event) in events.enumerated() where quotedPCRs.contains(event.pcr) {
                            failures += eventCheck(event, index, hashing).map { AttestationFailure(.eventData, $0) }
                        }
                    }
                    if let golden = logPolicy.golden {
                        let result = golden.check(
                            events: events, banks: quote.pcrSelection.banks.map(\.algorithm), coveredPCRs: quotedPCRs)
                        failures += result.failures
                        matched = result.matched
                        goldenIndices = result.matchedIndices
                    }
                } catch {
                    failures.append(.init(.eventLogMalformed, "event log: \(error)"))
                }
            } else {
                failures.append(.init(.eventLogMissing, "the policy checks the event log but the quote carries none"))
            }
        }

        guard failures.isEmpty else { return .failed(failures) }
        return .verified(VerifiedQuote(
            attest: attest, pcrValues: evidence.pcrValues, selection: quote.pcrSelection, events: events,
            matchedEvents: matched, goldenEventIndices: goldenIndices, state: AttestationState.Record(attest)))
    }

    private static func difference(_ a: [HashAlgorithm: Set<Int>], _ b: [HashAlgorithm: Set<Int>]) -> String {
        a.keys.sorted().compactMap { bank -> String? in
            let rest = (a[bank] ?? []).subtracting(b[bank] ?? [])
            return rest.isEmpty ? nil : "\(bank):\(rest.sorted().map(String.init).joined(separator: ","))"
        }.joined(separator: "+")
    }
}
