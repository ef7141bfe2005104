//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombCrypto
import DombFiles
import DombLaunch
import Foundation

/// `domb build`: launch description → signed launch bundle.
struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build and sign a launch bundle from a launch description.",
        discussion: """
            Validates the launch description and its images, hashes every module in all \
            banks (one read per image), plans Xenstore, predicts the event log and PCR values, and \
            writes the modules, the launch DTB (module paths rewritten to bundle members), \
            the Xenstore plan, the predicted event log and a canonical manifest.json signed with CMS (--cert given) \
            or a raw signature (--key alone). Archive mtimes and the CMS signingTime come from \
            $SOURCE_DATE_EPOCH (now if unset): the same inputs give the same bundle. \
            The bundle appears at the output path only when complete. See docs/bundle.md.
            """ + "\n\n" + ExitStatus.help(success: "the bundle was written", refused: "the description, an image, a key or a certificate was refused (nothing is written)"))

    @Argument(help: "The launch description: Hyperlaunch .dts/.dtb, xl.cfg, or the LaunchSpec model as .json.")
    var config: String
    @Option(
        help: ArgumentHelp(
            "Signing key: a PEM file (EC P-256/P-384, RSA ≥ 3072 with PSS, Ed25519 raw mode only), a PKCS#11 URI (pkcs11:token=…;object=…) or a TPM key (handle:0x81…).",
            valueName: "key"))
    var key: String
    @Option(help: "Signer certificate (PEM): selects CMS signing.") var cert: String?
    @Option(help: "Intermediate certificates to embed (PEM), with --cert.") var chain: String?
    @Option(name: .shortAndLong, help: "The bundle to write.") var output: String
    @Option(help: "Bundle generation (monotonic; verifiers refuse lower ones).") var generation: UInt64 = 1
    @Option(help: "PCR banks to hash in, e.g. sha1,sha256,sha384 (sha256 is always added).") var banks: String = "sha1,sha256"
    @Option(help: "PCR policy (policies/pcr-policy.json format); default: configuration 12, command lines 12, images 13.")
    var policy: String?
    @Option(
        name: .customLong("pcr-key"),
        help: ArgumentHelp(
            "PCR-policy key (file, pkcs11: or handle: as --key; EC P-256 recommended): sign the TPM2_PolicyAuthorize policy of the predicted PCRs into pcr-policy.json.",
            valueName: "key"))
    var pcrKey: String?
    @Option(name: .customLong("pcr-bank"), help: "Sign the PCR policy for these banks only (default: every bank of the bundle).")
    var pcrBanks: String?
    @Option(name: .customLong("policy-ref"), help: "Sign the PCR policy for this policy reference (repeatable; default: the empty one).")
    var policyRefs: [String] = []
    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var input: LaunchInputOptions
    @Flag(help: "Sign even with a certificate that is expired, not yet valid or not for code signing (tests only: such a bundle verifies nowhere).")
    var allowUnusableCertificate = false

    func validate() throws {
        _ = try parseBankList(banks)
        if chain != nil && cert == nil { throw ValidationError("--chain needs --cert (CMS mode)") }
        _ = try pcrBanks.map(parseBankList)
        if pcrKey == nil && (pcrBanks != nil || !policyRefs.isEmpty) {
            throw ValidationError("--pcr-bank and --policy-ref need --pcr-key")
        }
        for reference in policyRefs where reference.utf8.count > PolicyDigest.maximumPolicyRefSize {
            throw ValidationError("--policy-ref \"\(reference)\" is longer than \(PolicyDigest.maximumPolicyRefSize) bytes")
        }
    }

    func run() async throws {
        let signingKey = try SigningKey(referenceText: key)
        let pcrPolicySigning = try pcrKey.map { text in
            PCRPolicySigningOptions(
                key: try SigningKey(referenceText: text), banks: try pcrBanks.map(parseBankList),
                policyRefs: policyRefs.isEmpty ? [[]] : policyRefs.map { Array($0.utf8) })
        }
        let signing: BundleSigning
        if let cert {
            let certificates = try X509Certificate.load(path: cert)
            guard let leaf = certificates.first else { throw ValidationError("\(cert) holds no certificate") }
            let chainCertificates = try chain.map { try X509Certificate.load(path: $0) } ?? Array(certificates.dropFirst())
            signing = .cms(key: signingKey, certificate: leaf, chain: chainCertificates)
        } else {
            signing = .raw(key: signingKey)
        }
        let epochText = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"]
        let epoch: Int64
        if let epochText {
            guard let value = Int64(epochText), value >= 0 else {
                throw ValidationError("SOURCE_DATE_EPOCH=\(epochText) is not a non-negative integer")
            }
            epoch = value
        } else {
            epoch = Int64(Date().timeIntervalSince1970)
        }
        let options = BundleBuildOptions(
            output: output, generation: generation, banks: try parseBankList(banks),
            pcrPolicy: try policy.map(Self.loadPolicy) ?? .default,
            sourceDateEpoch: epoch, signing: signing, inputs: [key, cert, chain, policy, pcrKey].compactMap { $0 },
            allowUnusableCertificate: allowUnusableCertificate, pcrPolicySigning: pcrPolicySigning)
        let builder = BundleBuilder(
            loader: try input.loader(checkImages: true), predictor: LaunchPredictor(), xenstorePlanner: LaunchXenstorePlanner())
        let progress = progressOptions.progress("building", output)
        let result: BundleBuildResult
        do {
            defer { progress?.finish() }
            result = try builder.build(configuration: config, options: options, progress: progress?.bytes)
        }
        for note in result.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        let modules = result.manifest.domains.reduce(0) { $0 + $1.modules.count }
        print(
            "wrote \(result.path): generation \(result.manifest.generation), \(result.manifest.domains.count) domains, "
                + "\(modules) modules, banks \(result.manifest.banks.map(\.name).joined(separator: ",")), "
                + (cert != nil ? "CMS signature" : "raw \(signingKey.kind) signature")
                + (result.manifest.signedPCRPolicy != nil ? ", signed PCR policy" : ""))
    }

    static func loadPolicy(_ path: String) throws -> PCRPolicy {
        let bytes = try InputFile.read(path, limit: 1 << 20)
        return try ContextError.wrap(path) { try PCRPolicy(json: bytes) }
    }
}
