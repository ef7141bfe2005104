//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// An event whose PCR, in every bank of the log, replayed to the value the TPM reported.
/// Only ``EventLog/verify(against:using:)`` makes these. Its digests are as trustworthy as
/// the PCR values they were checked against, and only the digests of the banks checked are
/// kept; its **type and data are still claims** unless the data's digest was checked too
/// (domb's own configuration records are, see ``DombEventRecord``).
///
/// Extended records and the StartupLocality record (which sets PCR 0's start value) are
/// verified events; other EV_NO_ACTION records (PCR −1 records included) are covered by
/// no PCR and never are, and neither is fill.
public struct VerifiedEvent: Hashable, Sendable {
    public let number: Int
    public let offset: Int
    public let pcr: UInt32
    public let type: EventType
    public let digests: DigestSet
    public let data: [UInt8]

    init(_ event: UnverifiedEvent, digests: DigestSet) {
        number = event.number
        offset = event.offset
        pcr = event.pcr
        type = event.type
        self.digests = digests
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
        /// The TPM has this bank active, but `records` of the log's records on this PCR
        /// carry no digest in it (``EventLogQuirk/bankSubset(_:)``): the PCR cannot be
        /// replayed in this bank, so its value there is unexplained.
        case digestsMissing(records: Int)
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
        case .digestsMissing(let records):
            return "\(place): bank is active but \(records) of the log's records for this PCR carry no digest in it, so it cannot be replayed"
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
    /// Also fails when `pcrs` holds a bank for a PCR the log extends but cannot replay in
    /// that bank — no record carries the bank, or some record on that PCR lacks it: that
    /// bank was active and unmeasured, so it could have been forged. A PCR the log never
    /// extends is not judged here.
    public func verify(against pcrs: PCRValues, using hasher: some PCRHashing) -> EventLogVerification {
        let replayed: PCRValues
        do {
            replayed = try replay(using: hasher)
        } catch {
            return .failed([VerificationFailure(pcr: nil, bank: nil, kind: .replayFailed("\(error)"))])
        }
        var failures: [VerificationFailure] = []
        let logPCRs = extendedPCRs
        /// The banks compared per PCR, for the digests a VerifiedEvent keeps.
        var checked: [Int: [HashAlgorithm]] = [:]
        for bank in Set(headerBanks).union(pcrs.algorithms).sorted() {
            for pcr in logPCRs {
                if let expected = replayed[bank, pcr] {
                    guard let actual = pcrs[bank, pcr] else {
                        failures.append(VerificationFailure(pcr: pcr, bank: bank, kind: .missingValue))
                        continue
                    }
                    if actual != expected {
                        failures.append(
                            VerificationFailure(pcr: pcr, bank: bank, kind: .mismatch(replayed: expected, actual: actual)))
                    }
                    checked[pcr, default: []].append(bank)
                } else if pcrs[bank, pcr] != nil {
                    let without = events.count { $0.isExtended && Int($0.pcr) == pcr && $0.digests[bank] == nil }
                    let with = events.count { $0.isExtended && Int($0.pcr) == pcr && $0.digests[bank] != nil }
                    failures.append(VerificationFailure(
                        pcr: pcr, bank: bank, kind: with == 0 ? .bankNotInLog : .digestsMissing(records: without)))
                }
            }
        }
        guard failures.isEmpty else { return .failed(failures) }
        let verified = events.compactMap { event -> VerifiedEvent? in
            if event.isExtended {
                var digests = DigestSet()
                for bank in checked[Int(event.pcr)] ?? [] { digests[bank] = event.digests[bank] }
                return VerifiedEvent(event, digests: digests)
            }
            if event.pcr == 0, Self.startupLocality(in: event.data[...]) != nil {
                return VerifiedEvent(event, digests: DigestSet())
            }
            return nil
        }
        return .verified(verified, replayed: replayed)
    }
}

extension EventLog {
    /// How `current` differs from what this log says, for every PCR of `pcrs` in every bank
    /// of the log: a PCR the log extends must hold the log's replay, any other PCR its reset
    /// value. One line per difference, naming PCR, bank and both values; empty when they
    /// agree. Used before a launch measures (an empty log: the launch PCRs must be in their
    /// reset state), after it closes (the TPM must hold what the log says), and before
    /// `domb measure` appends to a log.
    public func differences(from current: PCRValues, pcrs: [Int], using hasher: some PCRHashing) -> [String] {
        let replayed: PCRValues
        do {
            replayed = try replay(using: hasher)
        } catch {
            return ["the log cannot be replayed: \(error)"]
        }
        var problems: [String] = []
        for pcr in pcrs {
            for bank in banks {
                let expected = replayed[bank, pcr] ?? PCRValues.initialValue(bank, pcr: pcr)
                guard let actual = current[bank, pcr] else {
                    problems.append("PCR \(pcr) (\(bank)) could not be read")
                    continue
                }
                if actual != expected {
                    problems.append(
                        replayed[bank, pcr] == nil
                            ? "PCR \(pcr) (\(bank)) is not in its reset state (it holds \(actual.hexString))"
                            : "PCR \(pcr) (\(bank)) holds \(actual.hexString), the log replays to \(expected.hexString)")
                }
            }
        }
        return problems
    }
}
