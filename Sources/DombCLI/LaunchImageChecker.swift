//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombFiles
import Foundation

/// Plugs the image inspector into launch validation (`domb config check --images`):
/// each module file must exist, be the kind its node says, and (kernels, firmware) be
/// able to boot in the domain's mode.
struct LaunchImageChecker: ImageCapabilityChecking {
    /// Module paths are relative to this directory (the description file's).
    var baseDirectory: String
    var inspector = ImageInspector(decompressor: Decompressor())

    func problems(domain: DomainSpec, module: ModuleSpec) -> [LaunchProblem] {
        let subject = "domain \"\(domain.name)\" module \(module.kind.rawValue)"
        func problem(_ message: String) -> [LaunchProblem] {
            [LaunchProblem(subject, domain: domain.name, .image, message)]
        }
        let path = module.path.hasPrefix("/") ? module.path : baseDirectory + "/" + module.path
        let report: ImageReport
        do {
            report = try inspector.inspect(source: try FileImageSource(path: path))
        } catch {
            return problem("\(path): \(error)")
        }
        switch module.kind {
        case .kernel:
            // HVM may direct-boot a kernel; PV and PVH must be able to boot it themselves.
            guard domain.type != .hvm else { return [] }
            let privileged = !domain.capabilities.intersection([.control, .hardware]).isEmpty
            if let reason = report.capabilities.supports(domain.type, privileged: privileged).reason {
                return problem("\(path) cannot boot as \(domain.type.rawValue): \(reason)")
            }
        case .firmware:
            if let reason = report.capabilities.supports(.hvm).reason {
                return problem("\(path) is not HVM firmware: \(reason)")
            }
        case .ramdisk:
            guard report.kind == .ramdisk else {
                return problem("\(path) is not a ramdisk (found \(report.kind.rawValue), format \(report.format.rawValue))")
            }
        case .config, .deviceTree:
            break
        }
        return []
    }
}
