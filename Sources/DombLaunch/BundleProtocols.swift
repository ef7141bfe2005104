//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel

// The seams of `BundleBuilder`. Each stage of the pipeline (DESIGN.md "The pipeline")
// lives behind one small protocol so that the real implementations (device-tree loader,
// image inspection, event-log prediction, Xenstore plan) plug in without touching the
// builder, and a test can replace any one of them.

/// A launch description, loaded and through the validation gate (its images checked).
public struct LoadedLaunch: Sendable {
    public var launch: ValidatedLaunch
    /// The directory module paths are relative to.
    public var baseDirectory: String

    public init(launch: ValidatedLaunch, baseDirectory: String) {
        self.launch = launch
        self.baseDirectory = baseDirectory
    }

    public var spec: LaunchSpec { launch.spec }
}

/// Turns a configuration file (Hyperlaunch .dts/.dtb, xl.cfg, the JSON model) into a
/// ``LoadedLaunch``: the builder's only way to a ``ValidatedLaunch``.
public protocol LaunchSpecLoading: Sendable {
    /// - Throws: an error naming the file, node or domain that is wrong.
    func load(configuration path: String) throws -> LoadedLaunch
}

/// One module as measured at build time.
public struct ModuleMeasurement: Hashable, Sendable {
    public var domain: String
    public var role: String
    public var module: ModuleSpec
    public var size: UInt64
    public var digests: DigestSet

    public init(domain: String, role: String, module: ModuleSpec, size: UInt64, digests: DigestSet) {
        self.domain = domain
        self.role = role
        self.module = module
        self.size = size
        self.digests = digests
    }
}

/// What the predictor is given: everything measured, in launch order.
public struct PredictionInput: Sendable {
    /// The launch as the boot domain sees it (module paths are bundle members).
    public var launch: ValidatedLaunch
    public var banks: [HashAlgorithm]
    public var modules: [ModuleMeasurement]
    public var launchDTB: [UInt8]?
    public var xenstorePlan: [UInt8]?
    public var pcrPolicy: PCRPolicy
}

/// The predicted measurement of a launch.
public struct Prediction: Sendable {
    /// The predicted TCG PC Client event log.
    public var eventLog: [UInt8]
    /// The PCR values the log replays to, per bank.
    public var pcrs: PCRValues

    public init(eventLog: [UInt8], pcrs: PCRValues) {
        self.eventLog = eventLog
        self.pcrs = pcrs
    }
}

/// Predicts the event log and final PCR values of a launch.
public protocol MeasurementPredicting: Sendable {
    func predict(_ input: PredictionInput) throws -> Prediction
}

/// Plans the Xenstore prepopulation of a launch.
public protocol XenstorePlanning: Sendable {
    /// - Returns: the plan, serialised (canonical JSON), as stored in the bundle.
    func plan(for launch: ValidatedLaunch) throws -> [UInt8]
}
