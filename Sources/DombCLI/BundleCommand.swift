//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombArchive
import DombCore
import DombCrypto
import DombFDT
import DombLaunch
import DombModel
import Foundation

/// `domb bundle …`: verify, inspect and unpack launch bundles.
struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Verify, show and extract signed launch bundles.",
        subcommands: [Verify.self, Show.self, Extract.self]
    )

    /// Exactly one source of trust.
    struct TrustOptions: ParsableArguments {
        init() {}

        @Option(help: "Trust anchors for a CMS signature: a directory of *.pem/*.crt or a CA file.") var trust: String?
        @Option(help: "Pinned signer certificate (CMS), or the certificate whose key made a raw signature.") var cert: String?
        @Option(help: "Public key (PEM) of a raw signature, or of the CMS signer.") var pubkey: String?
        @Option(name: .customLong("min-generation"), help: "Refuse bundles with a lower generation.")
        var minimumGeneration: UInt64 = 0
        @Option(name: .customLong("at"), help: "Check certificate validity at this time (seconds since the epoch).")
        var time: Int64?

        func validate() throws {
            let given = [trust, cert, pubkey].compactMap { $0 }.count
            guard given == 1 else { throw ValidationError("give exactly one of --trust DIR, --cert FILE, --pubkey FILE") }
        }

        func policy() throws -> BundleTrustPolicy {
            try bundleTrustPolicy(trust: trust, cert: cert, pubkey: pubkey)
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a bundle: signature and trust, every member's digest, nothing missing or extra, generation.",
            discussion: ExitStatus.help(success: "the bundle verifies", refused: "it does not (every reason is printed)"))

        @Argument(help: "The bundle (tar).") var bundle: String
        @OptionGroup var trust: TrustOptions
        @Flag(help: "Print the result as JSON.") var json = false
        @OptionGroup var progressOptions: ProgressOptions

        func run() async throws {
            try requireInputFile(bundle)
            let progress = progressOptions.progress("verifying", bundle, json: json)
            let result = BundleVerifier.verify(
                bundle: bundle, trust: try trust.policy(), minimumGeneration: trust.minimumGeneration, time: trust.time,
                progress: progress?.bytes)
            progress?.finish()
            report(result, bundle: bundle, json: json)
            if !result.isVerified { throw ExitCode(ExitStatus.refused.rawValue) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a bundle's manifest, or draw its launch (--dot, --svg, --png), WITHOUT verifying it (use `bundle verify` to trust it).",
            discussion: ExitStatus.help(success: "the manifest was printed", refused: "the file is not a bundle or its manifest is malformed"))

        @Argument(help: "The bundle (tar).") var bundle: String
        @Flag(help: "Print the manifest's canonical JSON.") var json = false
        @OptionGroup var picture: PictureOptions

        func validate() throws {
            guard !(json && picture.isDrawing) else { throw ValidationError("give --json or a picture, not both") }
        }

        func run() async throws {
            try requireInputFile(bundle)
            let reader = try TarReader(path: bundle, policy: BundleVerifier.readPolicy)
            var manifestBytes: [UInt8]?
            var policyBytes: [UInt8]?
            var launchDTB: [UInt8]?
            var members: [TarMember] = []
            while let member = try reader.next() {
                members.append(member)
                if member.path == BundleLayout.manifest {
                    manifestBytes = try reader.readAll(limit: BundleLayout.maximumManifestSize)
                } else if member.path == BundleLayout.signedPCRPolicy {
                    policyBytes = try reader.readAll(limit: SignedPCRPolicy.maximumSize)
                } else if member.path == BundleLayout.launchDTB, picture.isDrawing {
                    launchDTB = try reader.readAll(limit: FDT.maxSize)
                }
            }
            guard let manifestBytes else { throw ContextError(bundle, ParseError.invalid("the bundle has no manifest.json")) }
            let manifest = try ContextError.wrap("\(bundle): manifest.json") { try BundleManifest(canonicalBytes: manifestBytes) }
            if json {
                print(String(decoding: manifestBytes, as: UTF8.self))
                return
            }
            if picture.isDrawing { return try draw(manifest, launchDTB: launchDTB) }
            // Everything below comes from an unverified archive: escaped before it is printed
            // (the tables escape every cell).
            let e: (String) -> String = { TerminalText.escape($0) }
            print("UNVERIFIED manifest of \(e(bundle)) (run `domb bundle verify` before trusting it)")
            print("generation: \(manifest.generation)")
            print("banks:      \(manifest.banks.map(\.name).joined(separator: ", "))")
            print("pcr policy: \(manifest.pcrPolicy.sorted { $0.key < $1.key }.map { "\(e($0.key))=\($0.value)" }.joined(separator: ", "))")
            print("\n" + manifest.moduleTable.text, terminator: "")
            print("\n" + manifest.configurationTable.text, terminator: "")
            if manifest.predictedPCRs.algorithms.isEmpty {
                print("\nthe bundle predicts no PCR values")
            } else {
                print("\npredicted PCR values:\n" + manifest.predictedPCRs.table.text, terminator: "")
            }
            print()
            if let policyBytes {
                let policy = try ContextError.wrap("\(bundle): \(BundleLayout.signedPCRPolicy)") {
                    try SignedPCRPolicy(canonicalBytes: policyBytes)
                }
                print("signed PCR policy: key fingerprint \(policy.keyFingerprint.hexString), TPM name \(policy.keyName.hexString)")
                for item in policy.policies {
                    print(
                        "  \(item.bank.name) PCRs \(item.pcrs.map(String.init).joined(separator: ",")), policyRef \(describePolicyRef(item.policyRef)): "
                            + "approved policy \(item.policyDigest.hexString)")
                }
            }
            print("archive members: \(members.count)")
        }
        /// The picture of the launch in the bundle's `launch.dtb`, each module labelled with
        /// its digest from the manifest. Nothing is verified: the title says so.
        private func draw(_ manifest: BundleManifest, launchDTB: [UInt8]?) throws {
            guard launchDTB != nil else {
                throw ContextError(bundle, ParseError.invalid("the bundle has no \(BundleLayout.launchDTB) to draw (bundles `domb build` writes have one)"))
            }
            let launch: ValidatedLaunch
            switch BundleVerifier.launchDescription(launchDTB, manifest: manifest) {
            case .success(let decoded?): launch = decoded
            case .success(nil): throw ContextError(bundle, ParseError.invalid("the bundle has no \(BundleLayout.launchDTB)"))
            case .failure(let refusal):
                throw ContextError("\(bundle): \(BundleLayout.launchDTB)", ParseError.invalid(refusal.failures.map(\.message).joined(separator: "; ")))
            }
            var digests: [String: String] = [:]
            for domain in manifest.domains {
                for module in domain.modules {
                    digests[module.member.path] = "\(module.role) sha256:\((module.member.digests[.sha256] ?? []).hexString)"
                }
            }
            let name = bundle.split(separator: "/").last.map(String.init) ?? bundle
            let title = "bundle \(name), generation \(manifest.generation) (UNVERIFIED: run domb bundle verify)"
            let graph = LaunchTopology.dot(launch, title: title) { _, module in digests[module.path] ?? "\(module.kind.rawValue): \(module.path)" }
            try picture.write(graph, inputs: [bundle])
        }
    }

    struct Extract: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a bundle and extract it into a new directory (which appears only if it verifies).",
            discussion: ExitStatus.help(success: "the bundle verifies and was extracted", refused: "it does not verify (nothing is extracted)"))

        @Argument(help: "The bundle (tar).") var bundle: String
        @Option(name: .shortAndLong, help: "The directory to create.") var output: String
        @OptionGroup var trust: TrustOptions
        @Flag(help: "Print the result as JSON.") var json = false
        @OptionGroup var progressOptions: ProgressOptions

        func run() async throws {
            try requireInputFile(bundle)
            let progress = progressOptions.progress("extracting", bundle, json: json)
            let result = BundleVerifier.verify(
                bundle: bundle, trust: try trust.policy(), minimumGeneration: trust.minimumGeneration, time: trust.time,
                extractTo: output, progress: progress?.bytes)
            progress?.finish()
            report(result, bundle: bundle, json: json)
            if !result.isVerified { throw ExitCode(ExitStatus.refused.rawValue) }
            if !json { print("extracted to \(output)") }
        }
    }
}

/// Prints a verification result: a summary on stdout, each failure on stderr (or JSON).
private func report(_ result: BundleVerification, bundle: String, json: Bool) {
    if json {
        var object: [String: JSONValue] = [
            "bundle": .string(bundle),
            "verified": .bool(result.isVerified),
            "failures": .array(
                result.failures.map { failure in
                    var entry: [String: JSONValue] = ["kind": .string(failure.kind.rawValue), "message": .string(failure.message)]
                    if let member = failure.member { entry["member"] = .string(member) }
                    return .object(entry)
                }),
        ]
        if let signer = result.signer { object["signer"] = .string(signer) }
        if let manifest = result.manifest { object["generation"] = .integer(Int64(clamping: manifest.generation)) }
        print(JSONFormat.bundleVerdict.document(object).canonicalString)
        return
    }
    if result.isVerified, let manifest = result.manifest {
        let modules = manifest.domains.reduce(0) { $0 + $1.modules.count }
        print(
            "\(TerminalText.escape(bundle)): verified: signed by \(TerminalText.escape(result.signer ?? "?")), generation \(manifest.generation), "
                + "\(manifest.domains.count) domains, \(modules) modules, \(manifest.members.count) members checked")
        return
    }
    // Failures quote member names and text from the archive: escaped by the formatter.
    Diagnostics.refusal(bundle, reasons: result.failures.map(\.description))
}

/// The bundle trust policy from exactly one of `--trust DIR|FILE`, `--cert FILE`, `--pubkey FILE`.
func bundleTrustPolicy(trust: String?, cert: String?, pubkey: String?) throws -> BundleTrustPolicy {
    if let trust { return .anchors(try TrustAnchors.load(path: trust)) }
    if let cert {
        guard let certificate = try X509Certificate.load(path: cert).first else {
            throw ValidationError("\(cert) holds no certificate")
        }
        return .pinnedCertificate(certificate)
    }
    if let pubkey { return .publicKey(try VerificationKey(path: pubkey)) }
    throw ValidationError("give exactly one of --trust DIR, --cert FILE, --pubkey FILE")
}
