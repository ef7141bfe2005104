//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTPM

/// Where measurements go: a PCR extend plus an event-log record, as one step.
///
/// The boot flow talks only to this protocol, so the same flow measures into a TPM
/// (``TPMMeasurementSink``), predicts offline (``SoftwareMeasurementSink``), or runs in tests.
public protocol MeasurementSink: AnyObject {
    /// The banks every event must carry a digest for: the TPM's active banks.
    var banks: [HashAlgorithm] { get }
    /// The log so far (parsed form).
    var log: EventLog { get }
    /// The log so far, byte for byte as it will be written: the original bytes of an
    /// appended-to log, then each new record.
    var logBytes: [UInt8] { get }
    /// Extends `event.pcr` with `event.digests` in every bank and appends `event` to the
    /// log. Nothing is logged when the extend fails; nothing is extended when the event
    /// does not fit the log.
    func record(_ event: UnverifiedEvent) throws
}

/// The log half shared by both sinks: checks an event against the log before the PCR
/// half runs, then commits it.
struct MeasurementLogState {
    private(set) var log: EventLog
    private(set) var bytes: [UInt8]

    /// A new crypto-agile log whose header lists exactly `banks`.
    init(banks: [HashAlgorithm]) {
        log = EventLog(banks: banks)
        bytes = log.serialized()
    }

    /// Continues `existing` (a log file's bytes), which must be a strict crypto-agile log
    /// over exactly `banks`.
    init(existing: [UInt8], banks: [HashAlgorithm]) throws {
        let log = try EventLog(parsing: existing, strict: true)
        guard log.format == .cryptoAgile else {
            throw ParseError(.unsupported, "existing log is in the SHA-1 format; domb appends only to crypto-agile logs")
        }
        guard log.banks == banks.sorted() else {
            throw ParseError.invalid(
                "existing log has banks \(log.banks.map(\.name).joined(separator: ", ")) but the TPM has \(banks.map(\.name).joined(separator: ", ")) active"
            )
        }
        self.log = log
        self.bytes = existing
    }

    /// Appends `event` when it fits the log and `extend` (the PCR half) succeeds; when
    /// either fails nothing changes. In place: the log is never copied, so a launch of
    /// thousands of events costs the same per event as one of ten.
    mutating func append(_ event: UnverifiedEvent, extend: () throws -> Void) throws {
        try log.append(event)
        do {
            try extend()
        } catch {
            log.events.removeLast()
            throw error
        }
        if let last = log.events.last { bytes += log.record(last) }
    }
}
