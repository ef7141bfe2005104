//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto

/// What a launch will leave behind, computed without a TPM.
public struct MeasurementPrediction: Hashable, Sendable {
    /// The exact event log bytes a TPM-backed launch with the same banks writes.
    public var logBytes: [UInt8]
    public var log: EventLog
    /// PCR values after the launch, for the PCRs it extends, from their reset values.
    public var pcrs: PCRValues
}

extension MeasurementPrediction {
    /// Predicts the log and PCR values of `plan` in `banks` (the target TPM's active banks).
    /// PCRs start at their PC Client reset values, as on a host where nothing else has
    /// extended them.
    ///
    /// - Parameter closeLaunch: append the separators that close the launch.
    public static func predict(
        _ plan: [PlannedMeasurement], banks: [HashAlgorithm], policy: PCRPolicy = .default, closeLaunch: Bool = true
    ) throws -> MeasurementPrediction {
        let sink = try SoftwareMeasurementSink(banks: banks)
        let measurer = Measurer(sink: sink, policy: policy)
        for measurement in plan { try measurer.perform(measurement) }
        if closeLaunch { try measurer.closeLaunch() }
        return MeasurementPrediction(logBytes: sink.logBytes, log: sink.log, pcrs: sink.pcrs)
    }
}
