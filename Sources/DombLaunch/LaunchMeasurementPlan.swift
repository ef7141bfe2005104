//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombModel

/// The measurements of one launch, in order: the single definition that `domb build`
/// predicts from and `domb boot` performs, so the predicted log and the real one can only
/// differ where the bytes differ.
///
/// Order (docs/eventlog.md):
/// 1. the launch DTB on the configuration PCR;
/// 2. the Xenstore plan on the configuration PCR;
/// 3. per domain in start order: its kernel command line inline on the command-line PCR
///    (when it has one), then each module's ``ModuleRecord`` on the image PCR, in the
///    order the launch description lists them;
/// 4. (added by the measurer) an `EV_SEPARATOR` on every PCR extended.
///
/// Configuration (1, 2) is carried inline up to ``ConfigurationRecord/maximumContentSize``;
/// larger configuration — the Xenstore plan and launch DTB of a system of a few dozen
/// domains and up — is measured like a module: a ``ModuleRecord`` (no domain, role = the
/// configuration kind, label = the bundle member) whose digests are those of the member's
/// bytes, so no valid system is too large to measure and `openssl dgst` of the extracted
/// member still reproduces the event's digest.
public enum LaunchMeasurementPlan {
    /// A configuration member of the bundle (`launch.dtb`, `xenstore-plan.json`): its bytes
    /// and, for bytes measured as a module, their digests in at least the banks measured.
    public struct ConfigurationMember: Sendable {
        public var bytes: [UInt8]
        public var digests: DigestSet

        public init(bytes: [UInt8], digests: DigestSet) {
            self.bytes = bytes
            self.digests = digests
        }

        /// Hashes `bytes` in `banks` when they are too large to be carried inline (the only
        /// case that needs the digests).
        public init(bytes: [UInt8], banks: [HashAlgorithm]) throws {
            self.bytes = bytes
            digests = ConfigurationRecord.fitsInline(bytes.count) ? DigestSet() : try MultiHasher.digest(bytes, algorithms: banks)
        }
    }

    /// Configuration kinds, and the bundle members they come from.
    public static let launchDTBKind = "launch-dtb"
    public static let xenstorePlanKind = "xenstore-plan"

    /// How a configuration member is measured: inline when it fits, else as a module record
    /// of the member's bytes.
    static func configuration(kind: String, path: String, _ member: ConfigurationMember, pcr: Int) throws -> PlannedMeasurement {
        if ConfigurationRecord.fitsInline(member.bytes.count) {
            return .configuration(pcr: pcr, ConfigurationRecord(kind: kind, subject: path, content: member.bytes))
        }
        guard !member.digests.algorithms.isEmpty else {
            throw ParseError.invalid("\(path) is \(member.bytes.count) bytes, measured as a module, but has no digests")
        }
        return .module(
            pcr: pcr,
            ModuleRecord(domain: "", role: kind, size: UInt64(member.bytes.count), label: path, digests: member.digests))
    }

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
        public var label: String { Self.label(domain: domain, kind: kind) }

        static func label(domain: String, kind: ModuleKind) -> String {
            BundleLayout.modulePath(domain: domain, role: kind.rawValue)
        }
    }

    /// - Throws: when a module of the description has no digests.
    public static func measurements(
        launch: ValidatedLaunch, modules: [Module], launchDTB: ConfigurationMember, xenstorePlan: ConfigurationMember?,
        policy: PCRPolicy
    ) throws -> [PlannedMeasurement] {
        var plan = [
            try configuration(kind: launchDTBKind, path: BundleLayout.launchDTB, launchDTB, pcr: policy.pcrs.configuration)
        ]
        if let xenstorePlan {
            plan.append(
                try configuration(kind: xenstorePlanKind, path: BundleLayout.xenstorePlan, xenstorePlan, pcr: policy.pcrs.configuration))
        }
        var measured: [String: Module] = [:]
        for module in modules { measured[module.label] = measured[module.label] ?? module }
        for domain in launch.domainsInStartOrder {
            if let bootargs = domain.module(.kernel)?.bootargs, !bootargs.isEmpty {
                plan.append(
                    .configuration(
                        pcr: policy.pcrs.commandLine,
                        ConfigurationRecord(kind: "cmdline", subject: domain.name, content: Array(bootargs.utf8))))
            }
            for module in domain.modules {
                guard let measured = measured[Module.label(domain: domain.name, kind: module.kind)] else {
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
