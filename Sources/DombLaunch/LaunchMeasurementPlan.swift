//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel

/// The measurements of one launch, in order: the single definition that `domb build`
/// predicts from and `domb boot` performs, so the predicted log and the real one can only
/// differ where the bytes differ.
///
/// Order (docs/eventlog.md):
/// 1. the launch DTB, inline, on the configuration PCR;
/// 2. the Xenstore plan, inline, on the configuration PCR;
/// 3. per domain in start order: its kernel command line inline on the command-line PCR
///    (when it has one), then each module's ``ModuleRecord`` on the image PCR, in the
///    order the launch description lists them;
/// 4. (added by the measurer) an `EV_SEPARATOR` on every PCR extended.
public enum LaunchMeasurementPlan {
    /// A module's identity and the digests of its bytes.
    public struct Module: Hashable, Sendable {
        public var domain: String
        public var kind: ModuleKind
        public var size: UInt64
        public var digests: DigestSet

        public init(domain: String, kind: ModuleKind, size: UInt64, digests: DigestSet) {
            self.domain = domain
            self.kind = kind
            self.size = size
            self.digests = digests
        }

        /// Where the module lives in a bundle, and its label in the event log.
        public var label: String { "modules/\(domain)/\(kind.rawValue)" }
    }

    /// - Throws: when a module of the description has no digests.
    public static func measurements(
        launch: ValidatedLaunch, modules: [Module], launchDTB: [UInt8], xenstorePlan: [UInt8]?, policy: PCRPolicy
    ) throws -> [PlannedMeasurement] {
        var plan: [PlannedMeasurement] = [
            .configuration(
                pcr: policy.pcrs.configuration,
                ConfigurationRecord(kind: "launch-dtb", subject: "launch.dtb", content: launchDTB))
        ]
        if let xenstorePlan {
            plan.append(
                .configuration(
                    pcr: policy.pcrs.configuration,
                    ConfigurationRecord(kind: "xenstore-plan", subject: "xenstore-plan.json", content: xenstorePlan)))
        }
        for domain in launch.domainsInStartOrder {
            if let bootargs = domain.module(.kernel)?.bootargs, !bootargs.isEmpty {
                plan.append(
                    .configuration(
                        pcr: policy.pcrs.commandLine,
                        ConfigurationRecord(kind: "cmdline", subject: domain.name, content: Array(bootargs.utf8))))
            }
            for module in domain.modules {
                guard let measured = modules.first(where: { $0.domain == domain.name && $0.kind == module.kind }) else {
                    throw ParseError.invalid("domain \(domain.name): no digests for its \(module.kind.rawValue) module")
                }
                plan.append(
                    .module(
                        pcr: policy.pcrs.image,
                        ModuleRecord(
                            domain: domain.name, role: module.kind.rawValue, size: measured.size,
                            label: measured.label, digests: measured.digests)))
            }
        }
        return plan
    }
}
