//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombCrypto
import DombModel
import DombFiles
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Whom a bundle's signature must come from.
public enum BundleTrustPolicy: Sendable {
    /// CMS: the signer must chain to one of these anchors (`--trust DIR|FILE`).
    case anchors([X509Certificate])
    /// CMS: the signer must be exactly this certificate; raw: signed by its key (`--cert`).
    case pinnedCertificate(X509Certificate)
    /// Raw: signed by this key; CMS: the signer certificate carries this key (`--pubkey`).
    case publicKey(VerificationKey)
}

/// Failures found together (a `Result` failure type).
public struct BundleRefusal: Error, Sendable {
    public var failures: [BundleFailure]
}

/// Verifies a launch bundle: signature and trust, every member against the manifest, no
/// member missing or extra, the generation not below a minimum (docs/bundle.md, "Verifying").
///
/// The archive is read twice in bounded memory: first for the manifest and signature
/// (module data is skipped), then to hash every member in the manifest's banks. The
/// second pass also re-reads the manifest and signature and refuses the bundle if they
/// changed in between.
public enum BundleVerifier {
    /// The tar policy for bundles: safe relative paths, per-member size caps.
    public static let readPolicy = TarReadPolicy(
        maximumMembers: BundleLayout.maximumMembers, sizeLimit: BundleLayout.sizeLimit,
        isAllowedPath: BundleLayout.isSafePath)

    /// - Parameters:
    ///   - time: the time certificates are checked at (seconds since the epoch); now when nil.
    ///   - extractTo: when given, the members are written to this new directory, which
    ///     appears (by rename) only if the bundle verifies.
    ///   - progress: told the bytes of the second pass (every member the manifest lists,
    ///     the manifest and its signature) and advanced as they are hashed.
    /// - Returns: every failure found; ``BundleVerification/isVerified`` only if there is none.
    public static func verify(
        bundle: String, trust: BundleTrustPolicy, minimumGeneration: UInt64 = 0, time: Int64? = nil,
        extractTo: String? = nil, progress: ByteProgress? = nil
    ) -> BundleVerification {
        var result = BundleVerification()

        // Pass 1: manifest and signature.
        let control: (manifest: [UInt8]?, cms: [UInt8]?, raw: [UInt8]?)
        do {
            control = try readControlMembers(bundle)
        } catch {
            result.failures.append(BundleFailure(.archive, "\(error)"))
            return result
        }
        guard let manifestBytes = control.manifest else {
            result.failures.append(BundleFailure(.manifest, member: BundleLayout.manifest, "the bundle has no manifest"))
            return result
        }
        do {
            result.manifest = try BundleManifest(canonicalBytes: manifestBytes)
        } catch {
            result.failures.append(BundleFailure(.manifest, member: BundleLayout.manifest, "\(error)"))
        }

        let check: SignatureCheck
        switch (control.cms, control.raw) {
        case (let cms?, nil): check = verifyCMS(cms, manifest: manifestBytes, trust: trust, time: time)
        case (nil, let raw?): check = verifyRaw(raw, manifest: manifestBytes, trust: trust, time: time)
        case (nil, nil):
            check = SignatureCheck(signatureFailures: ["the bundle has neither manifest.sig nor manifest.rawsig"])
        case (.some, .some):
            check = SignatureCheck(signatureFailures: ["the bundle has both manifest.sig and manifest.rawsig"])
        }
        let signatureMember = control.cms != nil ? BundleLayout.cmsSignature : BundleLayout.rawSignature
        result.failures += check.signatureFailures.map { BundleFailure(.signature, member: signatureMember, $0) }
        result.failures += check.trustFailures.map { BundleFailure(.trust, member: signatureMember, $0) }
        if check.signatureFailures.isEmpty { result.signer = check.signer }

        guard let manifest = result.manifest else { return result }

        // Pass 2: every member, hashed in the manifest's banks (and extracted if asked).
        var staging: String?
        if let extractTo {
            do {
                staging = try makeStagingDirectory(for: extractTo)
            } catch {
                result.failures.append(BundleFailure(.archive, "\(error)"))
                return result
            }
        }
        defer { if let staging { try? FileManager.default.removeItem(atPath: staging) } }
        do {
            let controlBytes = [control.manifest, control.cms, control.raw].reduce(0) { $0 + UInt64($1?.count ?? 0) }
            progress?.expect(manifest.members.reduce(controlBytes) { $0 &+ $1.size })
            let (observed, contents) = try hashMembers(
                bundle, manifest: manifest, control: control, staging: staging, progress: progress)
            result.failures += manifest.check(observed: observed, minimumGeneration: minimumGeneration)
            if result.failures.isEmpty,
                case .failure(let refusal) = launchDescription(contents[BundleLayout.launchDTB], manifest: manifest)
            {
                result.failures += refusal.failures
            }
            if manifest.signedPCRPolicy != nil, let policyBytes = contents[BundleLayout.signedPCRPolicy] {
                result.failures += signedPCRPolicyFailures(policyBytes, manifest: manifest)
            }
        } catch {
            result.failures.append(BundleFailure(.archive, "\(error)"))
        }
        if let extractTo, let staging, result.isVerified {
            if rename(staging, extractTo) != 0 {
                result.failures.append(
                    BundleFailure(.archive, "cannot move the extracted bundle to \(extractTo): \(String(cString: strerror(errno)))"))
            }
        }
        return result
    }

    private static func readControlMembers(_ bundle: String) throws -> (manifest: [UInt8]?, cms: [UInt8]?, raw: [UInt8]?) {
        let reader = try TarReader(path: bundle, policy: readPolicy)
        var control: (manifest: [UInt8]?, cms: [UInt8]?, raw: [UInt8]?) = (nil, nil, nil)
        while let member = try reader.next() {
            switch member.path {
            case BundleLayout.manifest: control.manifest = try reader.readAll(limit: BundleLayout.maximumManifestSize)
            case BundleLayout.cmsSignature: control.cms = try reader.readAll(limit: BundleLayout.maximumSignatureSize)
            case BundleLayout.rawSignature: control.raw = try reader.readAll(limit: BundleLayout.maximumSignatureSize)
            default: continue  // skipped: libarchive seeks over the data
            }
        }
        return control
    }

    /// The launch description in `launchDTB` (a verified member), decoded, through the
    /// validation gate (the rules `build` checked) and checked against the manifest
    /// (``BundleManifest/launchDescriptionFailures(_:)``); nil when the bundle has none.
    public static func launchDescription(_ launchDTB: [UInt8]?, manifest: BundleManifest) -> Result<ValidatedLaunch?, BundleRefusal> {
        guard let launchDTB else { return .success(nil) }
        let launch: ValidatedLaunch
        do {
            launch = try LaunchDecoder.decode(dtb: launchDTB).spec.validated()
        } catch let error as LaunchValidationError {
            return .failure(
                BundleRefusal(
                    failures: error.problems.map { BundleFailure(.launchDescription, member: BundleLayout.launchDTB, "\($0)") }))
        } catch {
            return .failure(BundleRefusal(failures: [BundleFailure(.launchDescription, member: BundleLayout.launchDTB, "does not decode: \(error)")]))
        }
        let failures = manifest.launchDescriptionFailures(launch.spec)
        return failures.isEmpty ? .success(launch) : .failure(BundleRefusal(failures: failures))
    }

    /// Hashes (and extracts) every member; returns what was observed and the bytes of
    /// `launch.dtb` (for the cross-check with the manifest) and `pcr-policy.json` (for its
    /// content check).
    private static func hashMembers(
        _ bundle: String, manifest: BundleManifest, control: (manifest: [UInt8]?, cms: [UInt8]?, raw: [UInt8]?),
        staging: String?, progress: ByteProgress?
    ) throws -> (observed: [ObservedMember], contents: [String: [UInt8]]) {
        let listed = Set(manifest.members.map(\.path))
        let reader = try TarReader(path: bundle, policy: readPolicy)
        var observed: [ObservedMember] = []
        var contents: [String: [UInt8]] = [:]
        while let member = try reader.next() {
            let isControl = [BundleLayout.manifest, BundleLayout.cmsSignature, BundleLayout.rawSignature].contains(member.path)
            let isContent = [BundleLayout.launchDTB, BundleLayout.signedPCRPolicy].contains(member.path)
            let keep = isControl || isContent
            guard listed.contains(member.path) || isControl else {
                observed.append(ObservedMember(path: member.path, size: member.size, digests: DigestSet()))
                continue
            }
            progress?.begin(member.path)
            var hasher = try MultiHasher(algorithms: manifest.banks, progress: progress)
            var output: FileHandle?
            if let staging {
                let target = "\(staging)/\(member.path)"
                try Directory.create(URL(fileURLWithPath: target).deletingLastPathComponent().path)
                guard FileManager.default.createFile(atPath: target, contents: nil) else {
                    throw ArchiveError(path: target, "cannot create the extracted file")
                }
                output = FileHandle(forWritingAtPath: target)
            }
            var size: UInt64 = 0
            var bytes: [UInt8] = []
            try reader.read { chunk in
                hasher.update(chunk)
                size += UInt64(chunk.count)
                if keep { bytes.append(contentsOf: chunk) }
                if let output { try output.write(contentsOf: Data(chunk)) }
            }
            try output?.synchronize()
            try output?.close()
            if isControl {
                let expected =
                    switch member.path {
                    case BundleLayout.manifest: control.manifest
                    case BundleLayout.cmsSignature: control.cms
                    default: control.raw
                    }
                guard bytes == expected else {
                    throw ArchiveError(path: bundle, member: member.path, "changed while the bundle was being verified")
                }
            }
            if isContent { contents[member.path] = bytes }
            observed.append(ObservedMember(path: member.path, size: size, digests: try hasher.finalize()))
        }
        return (observed, contents)
    }

    /// The content check of `pcr-policy.json` (``PCRPolicySigner/failures(of:manifest:)``).
    static func signedPCRPolicyFailures(_ bytes: [UInt8], manifest: BundleManifest) -> [BundleFailure] {
        do {
            let policy = try SignedPCRPolicy(canonicalBytes: bytes)
            return PCRPolicySigner.failures(of: policy, manifest: manifest).map {
                BundleFailure(.pcrPolicy, member: BundleLayout.signedPCRPolicy, $0)
            }
        } catch {
            return [BundleFailure(.pcrPolicy, member: BundleLayout.signedPCRPolicy, "\(error)")]
        }
    }

    static func verifyCMS(
        _ signature: [UInt8], manifest: [UInt8], trust: BundleTrustPolicy, time: Int64?
    ) -> SignatureCheck {
        switch trust {
        case .anchors(let anchors):
            return CMSSignature.verify(signature, content: manifest, trust: .anchors(anchors), time: time)
        case .pinnedCertificate(let certificate):
            return CMSSignature.verify(signature, content: manifest, trust: .pinned(certificate), time: time)
        case .publicKey(let key):
            // The key is the trust: the signature must verify, the signer certificate must
            // be valid now and carry the key; no chain is needed.
            let probe = CMSSignature.verify(signature, content: manifest, trust: .anchors([]), time: time)
            guard let signer = probe.signerCertificate else { return probe }
            var check = CMSSignature.verify(signature, content: manifest, trust: .pinned(signer), time: time)
            let signerKey = try? signer.publicKey
            if signerKey?.isSame(as: key) != true {
                check.trustFailures.append("signer \(signer.subject) does not hold the given public key")
            }
            return check
        }
    }

    /// A raw signature: made by the given key, or by the key of the pinned certificate —
    /// and then the certificate must be one that may sign bundles at `time` (validity,
    /// keyUsage, codeSigning, no weak signature digest), exactly as for a CMS signature by
    /// the same certificate. The verifier's policy decides, never the bundle's format.
    static func verifyRaw(_ signature: [UInt8], manifest: [UInt8], trust: BundleTrustPolicy, time: Int64?) -> SignatureCheck {
        let key: VerificationKey
        var trustFailures: [String] = []
        var signer: String
        switch trust {
        case .anchors:
            return SignatureCheck(
                trustFailures: ["the bundle has a raw signature (manifest.rawsig): verify it with --pubkey or --cert, not --trust"])
        case .pinnedCertificate(let certificate):
            do {
                key = try certificate.publicKey
            } catch {
                return SignatureCheck(trustFailures: ["the pinned certificate's key is not usable: \(error)"])
            }
            trustFailures = certificate.signingProblems(at: time)
            signer = "\(certificate.subject) (\(key.kind), raw signature)"
        case .publicKey(let given):
            key = given
            signer = "\(key.kind) public key"
        }
        guard key.isValidSignature(signature, for: manifest) else {
            return SignatureCheck(
                signatureFailures: ["signature does not verify over manifest.json with the given \(key.kind) key (wrong signer or tampered)"],
                trustFailures: trustFailures)
        }
        return SignatureCheck(signer: signer, trustFailures: trustFailures)
    }

    /// A new directory next to `target` to extract into; `target` must not exist yet.
    private static func makeStagingDirectory(for target: String) throws -> String {
        guard !FileManager.default.fileExists(atPath: target) else {
            throw ArchiveError(path: target, "already exists: extract into a new directory")
        }
        let url = URL(fileURLWithPath: target)
        var template = Array("\(url.deletingLastPathComponent().path)/.\(url.lastPathComponent).tmp.XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else {
            throw ArchiveError(path: target, "cannot create a staging directory: \(String(cString: strerror(errno)))")
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
