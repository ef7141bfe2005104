//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One thing wrong with a launch description: what it is about, which rule it breaks,
/// and a sentence saying why. Validation returns one problem per fault; it never stops at
/// the first.
public struct LaunchProblem: Hashable, Sendable, CustomStringConvertible {
    /// A rule of the launch description. The raw value is a stable kebab-case name shown
    /// in messages and documented in `docs/binding.md` ("Validation rules").
    public struct Rule: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let noDomains = Rule("no-domains")
        public static let tooMany = Rule("limit")
        public static let invalidName = Rule("invalid-name")
        public static let duplicateName = Rule("duplicate-name")
        public static let duplicateDomid = Rule("duplicate-domid")
        public static let reservedDomid = Rule("reserved-domid")
        public static let invalidUUID = Rule("invalid-uuid")
        public static let duplicateUUID = Rule("duplicate-uuid")
        public static let missingKernel = Rule("missing-kernel")
        public static let modeModuleMismatch = Rule("mode-module-mismatch")
        public static let duplicateModule = Rule("duplicate-module")
        public static let modulePath = Rule("module-path")
        public static let memory = Rule("memory")
        public static let vcpus = Rule("vcpus")
        public static let cpuAffinity = Rule("cpu-affinity")
        public static let unknownCPUPool = Rule("unknown-cpupool")
        public static let cpupool = Rule("cpupool")
        public static let cpupoolOverlap = Rule("cpupool-overlap")
        public static let capabilities = Rule("capabilities")
        public static let xenstoreDomains = Rule("single-xenstore-domain")
        public static let bootDomains = Rule("single-boot-domain")
        public static let staticControl = Rule("static-mode-control")
        public static let unknownBackend = Rule("unknown-backend")
        public static let backendCycle = Rule("backend-cycle")
        public static let backendCapability = Rule("backend-capability")
        public static let deviceSetting = Rule("device-setting")
        public static let duplicateDevice = Rule("duplicate-device")
        public static let eventChannel = Rule("evtchn")
        public static let sharedMemory = Rule("shared-memory")
        public static let image = Rule("image")
        public static let secret = Rule("secret")
    }

    /// What the problem is about, e.g. `domain "web"` or `domain "web" vif 0`.
    public var subject: String
    /// The domain involved, if any (callers use it to name the node or file).
    public var domain: String?
    public var rule: Rule
    public var message: String

    public init(_ subject: String, domain: String? = nil, _ rule: Rule, _ message: String) {
        self.subject = subject
        self.domain = domain
        self.rule = rule
        self.message = message
    }

    public var description: String { "\(subject): \(message) [\(rule)]" }
}

/// A check of a domain's module files, supplied by the image inspector (an ELF/bzImage
/// reader lives outside the model): the file must exist and fit the module's kind and the
/// domain's mode. Return one problem per fault, using rule ``LaunchProblem/Rule/image``.
public protocol ImageCapabilityChecking: Sendable {
    func problems(domain: DomainSpec, module: ModuleSpec) -> [LaunchProblem]
}

/// A launch description that does not validate, with every problem.
public struct LaunchValidationError: Error, Sendable, CustomStringConvertible {
    public var problems: [LaunchProblem]
    /// One line per problem, each naming the file and node or line it concerns.
    public var lines: [String]

    public init(problems: [LaunchProblem], lines: [String]? = nil) {
        self.problems = problems
        self.lines = lines ?? problems.map(\.description)
    }

    public var description: String {
        "the launch description is invalid (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n  "
            + lines.joined(separator: "\n  ")
    }
}
