//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombFDT
import DombFiles
import Foundation

// The real stages behind BundleBuilder's protocols: the Hyperlaunch/xl.cfg loader with
// validation and the image inspector (the predictor and the Xenstore planner are in
// LaunchPipeline.swift).

/// Loads `.dts`, `.dtb` or xl.cfg through `LaunchFile`, and `.json` (the LaunchSpec model)
/// through ``JSONLaunchSpecLoader``; then validates the whole description and refuses it
/// with every problem listed.
public struct LaunchFileLoader: LaunchSpecLoading {
    public init() {}

    public func load(configuration path: String) throws -> LoadedLaunch {
        let loaded: LoadedLaunch
        let describe: (LaunchProblem) -> String
        if path.lowercased().hasSuffix(".json") {
            loaded = try JSONLaunchSpecLoader().load(configuration: path)
            describe = { "\(path): \($0)" }
        } else {
            let document = try LaunchFile.load(path)
            loaded = LoadedLaunch(spec: document.spec, baseDirectory: URL(fileURLWithPath: path).deletingLastPathComponent().path)
            describe = { document.describe($0, file: path) }
        }
        let problems = loaded.spec.validate()
        guard problems.isEmpty else { throw LaunchDescriptionError(problems: problems.map(describe)) }
        return loaded
    }
}

/// A launch description that does not validate; lists every problem.
public struct LaunchDescriptionError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String {
        "the launch description is invalid (\(problems.count) problems):\n  " + problems.joined(separator: "\n  ")
    }
}

/// Checks images with the ELF/bzImage inspector: a kernel must carry the Xen notes its
/// domain's mode needs (PVH: PHYS32_ENTRY; PV: xen-3.0 and a loader), HVM boots firmware.
/// Other modules (ramdisks, configuration, device trees) must be readable regular files.
public struct InspectingImageChecker: ImageChecking {
    public init() {}

    public func check(module: ModuleSpec, of domain: DomainSpec, file: String) throws {
        try BasicImageChecker().check(module: module, of: domain, file: file)
        guard module.kind == .kernel || module.kind == .firmware else { return }
        let context = "domain \(domain.name), \(module.kind.rawValue) \(file)"
        let report = try ContextError.wrap(context) {
            try ImageInspector(decompressor: Decompressor()).inspect(source: try FileImageSource(path: file))
        }
        let privileged = domain.capabilities.contains(.hardware) || domain.capabilities.contains(.control)
        if case .refused(let reason) = report.capabilities.supports(domain.type, privileged: privileged) {
            throw ContextError(context, ParseError.invalid("cannot boot as \(domain.type.rawValue): \(reason)"))
        }
    }
}
