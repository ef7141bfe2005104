//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles
import Foundation

// The seams of `BundleBuilder`. Each stage of the pipeline (DESIGN.md "The pipeline")
// lives behind one small protocol so that the real implementations (device-tree loader,
// image inspection, event-log prediction, Xenstore plan) plug in without touching the
// builder, and a test can replace any one of them.

/// A launch description, loaded and validated.
public struct LoadedLaunch: Sendable {
    public var spec: LaunchSpec
    /// The launch device tree handed to Xen, when the front end produces one.
    public var launchDTB: [UInt8]?
    /// The directory module paths are relative to.
    public var baseDirectory: String

    public init(spec: LaunchSpec, launchDTB: [UInt8]? = nil, baseDirectory: String) {
        self.spec = spec
        self.launchDTB = launchDTB
        self.baseDirectory = baseDirectory
    }
}

/// Turns a configuration file (Hyperlaunch .dts/.dtb, xl.cfg, …) into a ``LoadedLaunch``.
public protocol LaunchSpecLoading: Sendable {
    /// - Throws: an error naming the file, node or domain that is wrong.
    func load(configuration path: String) throws -> LoadedLaunch
}

/// Checks that an image fits the domain it is loaded into (mode, format, Xen notes).
public protocol ImageChecking: Sendable {
    /// - Parameter file: the resolved path of the module.
    /// - Throws: an error naming the domain, module and reason.
    func check(module: ModuleSpec, of domain: DomainSpec, file: String) throws
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
    public var spec: LaunchSpec
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
    func plan(for spec: LaunchSpec) throws -> [UInt8]
}

// MARK: - Interim implementations

/// Loads a ``LaunchSpec`` from its JSON form (the `Codable` model), for tools and tests
/// that generate descriptions; the builder emits the launch DTB from it.
public struct JSONLaunchSpecLoader: LaunchSpecLoading {
    /// Largest JSON launch description accepted.
    public static let maximumSize = 4 << 20

    public init() {}

    public func load(configuration path: String) throws -> LoadedLaunch {
        let url = URL(fileURLWithPath: path)
        let bytes = try InputFile.read(path, limit: Self.maximumSize)
        let spec = try ContextError.wrap(path) { try JSONDecoder().decode(LaunchSpec.self, from: Data(bytes)) }
        return LoadedLaunch(spec: spec, baseDirectory: url.deletingLastPathComponent().path)
    }
}

/// The interim image check: the module is a readable, non-empty regular file within the
/// size cap (opened through ``InputFile``). The image-inspection checker (ELF/bzImage notes
/// against the mode) replaces it.
public struct BasicImageChecker: ImageChecking {
    public init() {}

    public func check(module: ModuleSpec, of domain: DomainSpec, file: String) throws {
        let size = try ContextError.wrap("domain \(domain.name), \(module.kind.rawValue)") { try InputFile(path: file).size }
        let context = "domain \(domain.name), \(module.kind.rawValue) \(file)"
        guard size > 0 else { throw ContextError(context, ParseError.invalid("the image is empty")) }
        guard size <= BundleLayout.maximumModuleSize else {
            throw ContextError(context, ParseError.limit("the image is \(size) bytes, more than \(BundleLayout.maximumModuleSize)"))
        }
    }
}
