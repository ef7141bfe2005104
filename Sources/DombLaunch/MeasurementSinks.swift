//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTPM

/// Measures into a real TPM: one `TPM2_PCR_Extend` carrying every active bank per event,
/// then the log record.
public final class TPMMeasurementSink: MeasurementSink {
    public let tpm: TPM
    public let banks: [HashAlgorithm]
    private var state: MeasurementLogState

    public var log: EventLog { state.log }
    public var logBytes: [UInt8] { state.bytes }

    /// - Parameters:
    ///   - requiredBanks: banks the policy requires; refused if any is not active.
    ///   - existingLog: bytes of a log to continue (its banks must be the TPM's), or nil
    ///     for a new log.
    /// - Throws: ``TPMError`` for a missing bank, ``CryptoError`` when OpenSSL cannot hash
    ///   an active bank (it could not be extended, so it could be forged), ``ParseError``
    ///   for an existing log that does not fit.
    public init(tpm: TPM, requiredBanks: [HashAlgorithm], existingLog: [UInt8]? = nil) throws {
        self.tpm = tpm
        let active = try tpm.activeBanks(requiring: requiredBanks)
        for bank in active where !MultiHasher.supports(bank) {
            throw CryptoError(
                "PCR banks", "the TPM has bank \(bank) active but this OpenSSL cannot hash it; refusing to leave it unmeasured")
        }
        banks = active
        state = try existingLog.map { try MeasurementLogState(existing: $0, banks: active) }
            ?? MeasurementLogState(banks: active)
    }

    public func record(_ event: UnverifiedEvent) throws {
        try state.append(event) {
            if event.isExtended { try tpm.extend(pcr: Int(event.pcr), digests: event.digests) }
        }
    }
}

/// Measures into software PCRs: prediction, and tests of orchestration. Produces the same
/// log bytes a TPM sink with the same banks would.
public final class SoftwareMeasurementSink: MeasurementSink {
    public let banks: [HashAlgorithm]
    /// PCR values after the events so far; PCRs never extended are absent.
    public private(set) var pcrs = PCRValues()
    private var state: MeasurementLogState
    private let hasher: OpenSSLPCRHasher
    /// Extends performed, counted like ``TPM/commandCount`` would count them.
    public private(set) var extendCount = 0

    public var log: EventLog { state.log }
    public var logBytes: [UInt8] { state.bytes }

    /// - Parameter initial: starting PCR values (e.g. read from a TPM); missing PCRs start
    ///   at their PC Client reset value.
    public init(banks: [HashAlgorithm], initial: PCRValues = PCRValues(), existingLog: [UInt8]? = nil) throws {
        let sorted = Set(banks).sorted()
        self.banks = sorted
        for bank in sorted where !MultiHasher.supports(bank) {
            throw CryptoError("PCR banks", "this OpenSSL cannot hash bank \(bank)")
        }
        pcrs = initial
        hasher = OpenSSLPCRHasher()
        state = try existingLog.map { try MeasurementLogState(existing: $0, banks: sorted) }
            ?? MeasurementLogState(banks: sorted)
        // Continue an existing log from the values it replays to.
        if existingLog != nil {
            let replayed = try state.log.replay(using: hasher)
            for bank in replayed.algorithms {
                for pcr in replayed.pcrs(in: bank) where pcrs[bank, pcr] == nil { pcrs[bank, pcr] = replayed[bank, pcr] }
            }
        }
    }

    public func record(_ event: UnverifiedEvent) throws {
        try state.append(event) {
            guard event.isExtended else { return }
            let pcr = Int(event.pcr)
            var updated = pcrs
            for bank in banks {
                let old = pcrs[bank, pcr] ?? PCRValues.initialValue(bank, pcr: pcr)
                updated[bank, pcr] = try hasher.extend(bank, old, with: event.digests[bank] ?? [])
            }
            pcrs = updated
            extendCount += 1
        }
    }
}
