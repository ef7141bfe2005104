//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombModel

/// Predicts a bundle's event log and PCRs from ``LaunchMeasurementPlan``: the same list of
/// measurements ``BootFlow`` performs, run through a software sink in the bundle's banks.
public struct LaunchPredictor: MeasurementPredicting {
    public init() {}

    public func predict(_ input: PredictionInput) throws -> Prediction {
        let policy = input.pcrPolicy
        let modules = input.modules.map {
            LaunchMeasurementPlan.Module(domain: $0.domain, kind: $0.module.kind, size: $0.size, digests: $0.digests)
        }
        let plan = try LaunchMeasurementPlan.measurements(
            launch: input.launch, modules: modules,
            launchDTB: try .init(bytes: input.launchDTB ?? [], banks: input.banks),
            xenstorePlan: try input.xenstorePlan.map { try .init(bytes: $0, banks: input.banks) }, policy: policy)
        let prediction = try MeasurementPrediction.predict(plan, banks: input.banks, policy: policy)
        return Prediction(eventLog: prediction.logBytes, pcrs: prediction.pcrs)
    }
}

/// The Xenstore plan a bundle carries: libxl's layout for every domain and device, with
/// placeholders for what the hypervisor decides, in its canonical bytes.
public struct LaunchXenstorePlanner: XenstorePlanning {
    public var planner: XenstorePlanner

    public init(planner: XenstorePlanner = XenstorePlanner()) { self.planner = planner }

    public func plan(for launch: ValidatedLaunch) throws -> [UInt8] {
        try planner.plan(launch).canonicalBytes()
    }
}
