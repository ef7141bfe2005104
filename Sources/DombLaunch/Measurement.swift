//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto

/// Measures modules, configuration and the closing separator into a ``MeasurementSink``
/// with domb's event records (docs/eventlog.md), PCRs from a ``PCRPolicy``.
public final class Measurer {
    public let sink: any MeasurementSink
    public let policy: PCRPolicy
    private let hasher = OpenSSLPCRHasher()
    /// PCRs extended so far through this measurer, for the closing separators.
    public private(set) var extendedPCRs: Set<Int> = []
    /// Whether ``closeLaunch()`` has run; nothing may be measured after it.
    public private(set) var isClosed = false

    /// PCRs already closed by a separator in the sink's log: measuring into them again is
    /// refused (a verifier treats everything after the separator as outside the launch).
    public private(set) var closedPCRs: Set<Int> = []

    /// Continues whatever the sink's log already holds: PCRs extended there and not yet
    /// closed will get a separator from ``closeLaunch()``.
    public init(sink: any MeasurementSink, policy: PCRPolicy = .default) {
        self.sink = sink
        self.policy = policy
        for event in sink.log.events where event.isExtended {
            let pcr = Int(event.pcr)
            if event.type == .separator {
                closedPCRs.insert(pcr)
                extendedPCRs.remove(pcr)
            } else {
                extendedPCRs.insert(pcr)
            }
        }
    }

    /// Measures module bytes already in memory (the same bytes then go to the domain
    /// builder: DESIGN decision 3, no re-reading). Returns the event logged.
    @discardableResult
    public func measureModule(
        _ bytes: [UInt8], domain: String, role: String, label: String, pcr: Int? = nil
    ) throws -> UnverifiedEvent {
        let digests = try MultiHasher.digest(bytes, algorithms: sink.banks)
        let record = ModuleRecord(domain: domain, role: role, size: UInt64(bytes.count), label: label, digests: digests)
        return try perform(.module(pcr: pcr ?? policy.pcrs.image, record))
    }

    /// Measures a file streamed from disk in one read pass, every bank at once, in bounded
    /// memory (for `domb measure`, where nothing is handed on afterwards).
    ///
    /// - Parameter progress: told the file's size and advanced as it is hashed.
    @discardableResult
    public func measureFile(
        path: String, domain: String, role: String, label: String, pcr: Int? = nil, progress: ByteProgress? = nil
    ) throws -> UnverifiedEvent {
        let digest = try FileDigester(algorithms: sink.banks, progress: progress).digest(path: path)
        let record = ModuleRecord(domain: domain, role: role, size: digest.size, label: label, digests: digest.digests)
        return try perform(.module(pcr: pcr ?? policy.pcrs.image, record))
    }

    /// Measures configuration inline (EV_IPL, digest = H(event data)).
    @discardableResult
    public func measureConfiguration(
        kind: String, subject: String, content: [UInt8], pcr: Int? = nil
    ) throws -> UnverifiedEvent {
        try perform(
            .configuration(
                pcr: pcr ?? policy.pcr(forConfigurationKind: kind), ConfigurationRecord(kind: kind, subject: subject, content: content)))
    }

    /// Runs one planned measurement.
    @discardableResult
    public func perform(_ measurement: PlannedMeasurement) throws -> UnverifiedEvent {
        guard !isClosed else {
            throw ParseError(.invalidValue, "the launch is closed by its separator; nothing more may be measured")
        }
        guard PCRPolicy.isExtendableFromLocality0(measurement.pcr) else {
            throw ParseError.invalid("PCR \(measurement.pcr) is not extendable by domb (0–16 or 23)")
        }
        guard !closedPCRs.contains(measurement.pcr) else {
            throw ParseError.invalid("PCR \(measurement.pcr) is already closed by an EV_SEPARATOR in the log")
        }
        let event = try measurement.event(banks: sink.banks, using: hasher)
        try sink.record(event)
        if case .separator = measurement {
            extendedPCRs.remove(measurement.pcr)
            closedPCRs.insert(measurement.pcr)
        } else {
            extendedPCRs.insert(measurement.pcr)
        }
        return event
    }

    /// Closes the launch: an EV_SEPARATOR on every PCR extended and not yet closed, ascending.
    public func closeLaunch() throws {
        for pcr in extendedPCRs.sorted() { try perform(.separator(pcr: pcr)) }
        isClosed = true
    }
}
