//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// What a verified bundle says a genuine launch leaves behind: every extended event of its
/// predicted event log (the golden events a quote's log must match, in order) and its
/// predicted PCR values.
public struct BundleGoldenValues: Sendable {
    public var events: [GoldenEvent]
    public var pcrs: PCRValues

    /// Verifies `bundle` under `trust` and reads its golden values.
    /// - Parameter progress: fed as the bundle is read and hashed (``LoadedBundle/load(path:trust:minimumGeneration:extraBanks:time:progress:)``).
    /// - Throws: ``BundleLoadError`` when the bundle does not verify; `ParseError` when it
    ///   carries no predicted log or the log is malformed.
    public init(bundle: String, trust: BundleTrustPolicy, progress: ByteProgress? = nil) throws {
        let loaded = try LoadedBundle.load(path: bundle, trust: trust, minimumGeneration: 0, progress: progress)
        guard let predicted = loaded.metadata[BundleLayout.predictedEventLog] else {
            throw ParseError.invalid("the bundle carries no predicted event log")
        }
        let log = try EventLog(parsing: predicted, strict: true)
        events = log.events.filter(\.isExtended).map { event in
            GoldenEvent(
                // Whole records: a rewritten domain, role, size or label is refused.
                pcr: Int(event.pcr), eventType: event.type, digests: event.digests, data: event.data,
                label: ((try? DombEvent(event)) ?? nil).map(\.summary) ?? "\(event.type) on PCR \(event.pcr)")
        }
        pcrs = loaded.manifest.predictedPCRs
    }

    /// The PCRs a quote of this launch is asked for when the verifier names none: every
    /// SHA-256 PCR the bundle predicts.
    /// - Throws: `ParseError` when the bundle predicts no SHA-256 PCR.
    public func defaultSelection() throws -> PCRSelection {
        try PCRSelection(parsing: "sha256:" + pcrs.pcrs(in: .sha256).map(String.init).joined(separator: ","))
    }

    /// The golden values of exactly the PCRs `selection` covers (none for a PCR the bundle
    /// does not predict: the quote's log replay and golden events still cover it).
    public func expectedPCRs(for selection: PCRSelection) -> PCRValues {
        var values = PCRValues()
        for (bank, pcr) in selection.pairs { values[bank, pcr] = pcrs[bank, pcr] }
        return values
    }
}
