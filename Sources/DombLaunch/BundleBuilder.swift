//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombCrypto
import DombFiles
import DombModel
import Foundation

/// How the manifest is signed.
public enum BundleSigning: Sendable {
    /// CMS/PKCS#7 detached DER with the signer certificate and chain (`manifest.sig`, plus
    /// `signer.pem` for OpenSSL CLI users).
    case cms(key: SigningKey, certificate: X509Certificate, chain: [X509Certificate])
    /// A raw signature with the key alone (`manifest.rawsig`).
    case raw(key: SigningKey)
}

/// What `domb build` was asked for.
public struct BundleBuildOptions: Sendable {
    public var output: String
    public var generation: UInt64
    /// Banks to hash in; sha256 is always added (the OpenSSL-only check uses sha256sum).
    public var banks: [HashAlgorithm]
    /// Which PCR each class of measurement goes to (recorded in the manifest, handed to
    /// the predictor); its required banks are always hashed.
    public var pcrPolicy: PCRPolicy
    /// `SOURCE_DATE_EPOCH`: archive mtimes and the CMS signingTime.
    public var sourceDateEpoch: Int64
    public var signing: BundleSigning
    /// Files the build reads besides the description and the modules (key, certificates,
    /// policy): the output may not be one of them.
    public var inputs: [String]
    /// Sign even with a certificate no verifier accepts (expired, not yet valid, not for
    /// code signing): for tests of the verifiers only.
    public var allowUnusableCertificate: Bool
    /// Sign the PCR policy of the predicted PCRs with a PCR-policy key (`pcr-policy.json`).
    public var pcrPolicySigning: PCRPolicySigningOptions?

    public init(
        output: String, generation: UInt64, banks: [HashAlgorithm], pcrPolicy: PCRPolicy = .default,
        sourceDateEpoch: Int64, signing: BundleSigning, inputs: [String] = [], allowUnusableCertificate: Bool = false,
        pcrPolicySigning: PCRPolicySigningOptions? = nil
    ) {
        self.inputs = inputs
        self.allowUnusableCertificate = allowUnusableCertificate
        self.pcrPolicySigning = pcrPolicySigning
        self.output = output
        self.generation = generation
        self.banks = banks
        self.pcrPolicy = pcrPolicy
        self.sourceDateEpoch = sourceDateEpoch
        self.signing = signing
    }
}

/// What a build produced.
public struct BundleBuildResult: Sendable {
    public var manifest: BundleManifest
    public var manifestBytes: [UInt8]
    public var path: String
    /// What the user should know about the inputs: module paths that are symbolic links
    /// (and where they lead), and why the bundle was written readable by its owner only.
    public var notes: [String] = []
    /// Permissions the bundle was written with: 0644, or 0600 when an input was not
    /// readable by other users (the bundle must not publish what its inputs did not).
    public var mode: UInt32 = 0o644
}

/// Builds a signed launch bundle (DESIGN.md decision 5, docs/bundle.md).
///
/// Each module is read exactly once: every chunk is hashed in all banks and written to the
/// archive in the same pass, so memory stays bounded by the chunk size. The manifest and
/// its signature are therefore written last. The archive appears at the output path only
/// when complete (temporary file, fsync, rename).
public struct BundleBuilder: Sendable {
    /// Reads the description and passes it through the validation gate (images included):
    /// ``LaunchFileLoader`` in production.
    public var loader: any LaunchSpecLoading
    public var predictor: (any MeasurementPredicting)?
    public var xenstorePlanner: (any XenstorePlanning)?

    public init(
        loader: any LaunchSpecLoading, predictor: (any MeasurementPredicting)? = nil,
        xenstorePlanner: (any XenstorePlanning)? = nil
    ) {
        self.loader = loader
        self.predictor = predictor
        self.xenstorePlanner = xenstorePlanner
    }

    /// The launch with every module path replaced by its bundle member path: what the
    /// launch DTB carries and the boot domain sees.
    static func rebased(_ launch: ValidatedLaunch, _ planned: [PlannedModule]) throws -> ValidatedLaunch {
        var copy = launch.spec
        var index = 0
        for d in copy.domains.indices {
            for m in copy.domains[d].modules.indices where index < planned.count {
                copy.domains[d].modules[m].path = planned[index].bundlePath
                index += 1
            }
        }
        return try copy.validated()
    }

    /// A module to archive: where it comes from and where it goes.
    struct PlannedModule {
        var domain: DomainSpec
        var module: ModuleSpec
        var role: String
        var file: String
        var size: UInt64
        /// Where `file` leads when it is a symbolic link.
        var symbolicLinkTarget: String?
        var isWorldReadable: Bool
        var bundlePath: String { BundleLayout.modulePath(domain: domain.name, role: role) }
    }

    /// Builds the bundle for the launch description at `configuration`.
    /// - Parameter progress: told the bytes of every module once they are planned, and
    ///   advanced as each is hashed and archived.
    /// - Throws: the first error, naming the file, domain or module; nothing is left at the output path.
    public func build(
        configuration: String, options: BundleBuildOptions, progress: ByteProgress? = nil
    ) throws -> BundleBuildResult {
        var notes: [String] = []
        // A bundle signed with a certificate no verifier accepts would only fail at boot,
        // far from here: refuse it now (the verifiers apply the same policy).
        if case .cms(_, let certificate, let chain) = options.signing {
            let problems = certificate.signingProblems(at: nil) + chain.flatMap { $0.validityProblems(at: nil) }
            if !problems.isEmpty {
                guard options.allowUnusableCertificate else { throw UnusableCertificateError(problems: problems) }
                notes += problems.map { "signing anyway (allowUnusableCertificate): \($0)" }
            }
        }
        let launch = try loader.load(configuration: configuration)
        // Secrets are released only with the bundle's signed PCR policy: without one, every
        // boot of this bundle would be refused at the release.
        if options.pcrPolicySigning == nil, let domain = launch.launch.domains.first(where: { !($0.secrets ?? []).isEmpty }) {
            throw ParseError.invalid(
                "domain \(domain.name) receives secrets (domb,secrets), which only a bundle with a signed PCR policy can release: build it with --pcr-key")
        }
        let banks = Array(Set(options.banks + options.pcrPolicy.requiredBanks + [.sha256])).sorted()
        for bank in banks where bank.digestSize == nil || !MultiHasher.supports(bank) {
            throw CryptoError("build", "bank \(bank) cannot be hashed by this OpenSSL")
        }
        let planned = try plan(launch)
        let xenstorePlan = try xenstorePlanner?.plan(for: launch.launch)
        // The launch description as the boot domain sees it: module paths are bundle members.
        let bundleLaunch = try Self.rebased(launch.launch, planned)
        let launchDTB = try LaunchEncoder.dtb(bundleLaunch)

        for item in planned {
            if let target = item.symbolicLinkTarget {
                notes.append("\(item.bundlePath): \(item.file) is a symbolic link to \(target)")
            }
        }
        let configurationReadable = (try? InputFile(path: configuration).isWorldReadable) ?? true
        let unreadable = planned.filter { !$0.isWorldReadable }.map(\.file) + (configurationReadable ? [] : [configuration])
        let mode: UInt32 = unreadable.isEmpty ? 0o644 : 0o600
        if !unreadable.isEmpty {
            notes.append(
                "\(unreadable.joined(separator: ", ")) \(unreadable.count == 1 ? "is" : "are") not readable by other users: the bundle is written mode 0600")
        }
        let writer = try TarWriter(
            path: options.output, modificationTime: options.sourceDateEpoch, inputs: [configuration] + planned.map(\.file) + options.inputs,
            mode: mode)
        progress?.expect(planned.reduce(0) { $0 + $1.size })
        var measurements: [ModuleMeasurement] = []
        var domains: [BundleDomain] = []
        var domainIndex: [String: Int] = [:]
        for item in planned {
            // Every bank at once (on every core) while the chunk is written to the archive.
            progress?.begin(item.bundlePath)
            var hasher = try MultiHasher(algorithms: banks, progress: progress)
            let size = try writer.add(item.bundlePath, file: item.file) { chunk in hasher.update(chunk) }
            let digests = try hasher.finalize()
            measurements.append(
                ModuleMeasurement(domain: item.domain.name, role: item.role, module: item.module, size: size, digests: digests))
            let member = BundleMember(path: item.bundlePath, size: size, digests: digests)
            if let index = domainIndex[item.domain.name] {
                domains[index].modules.append(BundleModule(role: item.role, member: member))
            } else {
                domainIndex[item.domain.name] = domains.count
                domains.append(BundleDomain(name: item.domain.name, modules: [BundleModule(role: item.role, member: member)]))
            }
        }
        // Domains without modules still appear, so the manifest lists the whole launch.
        for domain in launch.spec.domains where domainIndex[domain.name] == nil {
            domains.append(BundleDomain(name: domain.name, modules: []))
        }
        progress?.begin("metadata")

        let pcrs = options.pcrPolicy.pcrs
        var manifest = BundleManifest(
            generation: options.generation, banks: banks, domains: domains,
            pcrPolicy: ["configuration": pcrs.configuration, "commandLine": pcrs.commandLine, "image": pcrs.image])
        func addSmall(_ path: String, _ bytes: [UInt8]) throws -> BundleMember {
            try writer.add(path, bytes: bytes)
            return BundleMember(path: path, size: UInt64(bytes.count), digests: try MultiHasher.digest(bytes, algorithms: banks))
        }
        manifest.launchDTB = try addSmall(BundleLayout.launchDTB, launchDTB)
        if let xenstorePlan { manifest.xenstorePlan = try addSmall(BundleLayout.xenstorePlan, xenstorePlan) }
        if let predictor {
            let prediction = try predictor.predict(
                PredictionInput(
                    launch: bundleLaunch, banks: banks, modules: measurements, launchDTB: launchDTB,
                    xenstorePlan: xenstorePlan, pcrPolicy: options.pcrPolicy))
            manifest.predictedEventLog = try addSmall(BundleLayout.predictedEventLog, prediction.eventLog)
            manifest.predictedPCRs = prediction.pcrs
        }
        if let pcrPolicySigning = options.pcrPolicySigning {
            guard !manifest.predictedPCRs.algorithms.isEmpty else {
                throw ParseError.invalid("a signed PCR policy needs predicted PCRs, and this build predicts none")
            }
            let policy = try ContextError.wrap("PCR policy") {
                try PCRPolicySigner.sign(predicted: manifest.predictedPCRs, options: pcrPolicySigning)
            }
            manifest.signedPCRPolicy = try addSmall(BundleLayout.signedPCRPolicy, policy.canonicalBytes)
        }
        if case .cms(_, let certificate, let chain) = options.signing {
            let pem = ([certificate] + chain).flatMap(\.pem)
            manifest.signerCertificates = try addSmall(BundleLayout.signerCertificates, pem)
        }

        let manifestBytes = manifest.canonicalBytes
        try writer.add(BundleLayout.manifest, bytes: manifestBytes)
        switch options.signing {
        case .cms(let key, let certificate, let chain):
            let signature = try CMSSignature.sign(
                manifestBytes, key: key, certificate: certificate, chain: chain, signingTime: options.sourceDateEpoch)
            try writer.add(BundleLayout.cmsSignature, bytes: signature)
        case .raw(let key):
            try writer.add(BundleLayout.rawSignature, bytes: try key.sign(manifestBytes))
        }
        try writer.commit()
        return BundleBuildResult(
            manifest: manifest, manifestBytes: manifestBytes, path: options.output, notes: notes, mode: mode)
    }

    /// Resolves module files and assigns roles (`kernel`, `ramdisk`: validation allows one
    /// module of each kind per domain, and domain names are safe path components).
    func plan(_ launch: LoadedLaunch) throws -> [PlannedModule] {
        let files = ModuleImageChecker(baseDirectory: launch.baseDirectory)
        var planned: [PlannedModule] = []
        for domain in launch.spec.domains {
            let roles = BundleLayout.moduleRoles(domain.modules.map(\.kind))
            for (module, role) in zip(domain.modules, roles) {
                let file = files.file(of: module)
                let input = try ContextError.wrap("domain \(domain.name), \(role)") { try InputFile(path: file) }
                planned.append(
                    PlannedModule(
                        domain: domain, module: module, role: role, file: file, size: input.size,
                        symbolicLinkTarget: input.symbolicLinkTarget, isWorldReadable: input.isWorldReadable))
            }
        }
        return planned
    }
}

/// The signer certificate cannot make a bundle that verifies.
public struct UnusableCertificateError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String {
        "the signer certificate cannot sign bundles that verify:\n  " + problems.joined(separator: "\n  ")
    }
}
