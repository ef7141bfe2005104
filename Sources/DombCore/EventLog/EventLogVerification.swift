//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// An event whose PCR, in every bank of the log, replayed to the value the TPM reported.
/// Only ``EventLog/verify(against:using:)`` makes these. Its digests are as trustworthy as
/// the PCR values they were checked against; its **type and data are still claims** unless
/// the data's digest was checked too (domb's own configuration records are, see
/// ``DombEventRecord``).
public struct VerifiedEvent: Hashable, Sendable {
    public let number: Int
    public let offset: Int
    public let pcr: UInt32
    public let type: EventType
    public let digests: DigestSet
    public let data: [UInt8]

    init(_ event: UnverifiedEvent) {
        number = event.number
        offset = event.offset
        pcr = event.pcr
        type = event.type
        digests = event.digests
        data = event.data
    }
}

/// Why a log did not verify.
public struct VerificationFailure: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// Replaying the log gives `replayed`, the TPM says `actual`.
        case mismatch(replayed: [UInt8], actual: [UInt8])
        /// The log extends this PCR but the PCR values given do not include it.
        case missingValue
        /// The TPM has this bank active but the log has no digests for it: its PCRs
        /// could hold anything (DESIGN decision 3).
        case bankNotInLog
        /// A replay could not be computed (hash algorithm unavailable).
        case replayFailed(String)
    }

    public var pcr: Int?
    public var bank: HashAlgorithm?
    public var kind: Kind

    public init(pcr: Int?, bank: HashAlgorithm?, kind: Kind) {
        self.pcr = pcr
        self.bank = bank
        self.kind = kind
    }

    public var description: String {
        let place = [pcr.map { "PCR \($0)" }, bank.map(\.name)].compactMap { $0 }.joined(separator: " ")
        switch kind {
        case .mismatch(let replayed, let actual):
            return "\(place): log replays to \(replayed.hexString), PCR holds \(actual.hexString)"
        case .missingValue:
            return "\(place): the log extends it but no PCR value was given"
        case .bankNotInLog:
            return "\(place): bank is active but the log has no digests for it"
        case .replayFailed(let reason):
            return "\(place.isEmpty ? "" : place + ": ")replay failed: \(reason)"
        }
    }
}

/// The outcome of checking a log against PCR values. A value, not an error: a log that
/// does not match is an expected answer of a verifier (swift-certificates'
/// `VerificationResult`).
public enum EventLogVerification: Sendable {
    /// Every PCR the log extends replayed to the given value in every bank.
    case verified([VerifiedEvent], replayed: PCRValues)
    /// At least one PCR did not; nothing in the log should be trusted.
    case failed([VerificationFailure])

    public var isVerified: Bool {
        if case .verified = self { return true }
        return false
    }
}

extension EventLog {
    /// Replays the log and compares every PCR it extends, in every bank it carries, with
    /// `pcrs` (read from the TPM, or from a quote after checking its signature).
    ///
    /// Also fails when `pcrs` holds a bank the log does not carry, for a PCR the log
    /// extends: that bank was active and unmeasured, so it could have been forged.
    /// A PCR the log never extends is not judged here.
    public func verify(against pcrs: PCRValues, using hasher: some PCRHashing) -> EventLogVerification {
        let replayed: PCRValues
        do {
            replayed = try replay(using: hasher)
        } catch {
            return .failed([VerificationFailure(pcr: nil, bank: nil, kind: .replayFailed("\(error)"))])
        }
        var failures: [VerificationFailure] = []
        let logPCRs = extendedPCRs
        for bank in banks {
            for pcr in logPCRs {
                guard let expected = replayed[bank, pcr] else { continue }
                guard let actual = pcrs[bank, pcr] else {
                    failures.append(VerificationFailure(pcr: pcr, bank: bank, kind: .missingValue))
                    continue
                }
                if actual != expected {
                    failures.append(
                        VerificationFailure(pcr: pcr, bank: bank, kind: .mismatch(replayed: expected, actual: actual)))
                }
            }
        }
        for bank in pcrs.algorithms where !banks.contains(bank) {
            for pcr in logPCRs where pcrs[bank, pcr] != nil {
                failures.append(VerificationFailure(pcr: pcr, bank: bank, kind: .bankNotInLog))
            }
        }
        guard failures.isEmpty else { return .failed(failures) }
        return .verified(events.map(VerifiedEvent.init), replayed: replayed)
    }
}
