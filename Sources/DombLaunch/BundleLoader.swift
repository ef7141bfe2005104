//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombCrypto
import DombModel
import DombFDT

/// A bundle loaded for booting. The manifest's signature, trust and generation are checked
/// first (from the manifest and signature members alone); then every member is read once:
/// modules stream into sealed memfds and are hashed on the way, small members stay in
/// memory, and every digest is checked against the manifest. The boot flow measures and
/// builds from exactly these bytes: nothing is read from the archive again.
public struct LoadedBundle {
    public var manifest: BundleManifest
    public var manifestBytes: [UInt8]
    public var signer: String
    /// Small members by path (launch.dtb, xenstore-plan.json, eventlog.predicted, …).
    public var metadata: [String: [UInt8]]
    /// Module members by path, sealed.
    public var modules: [String: SealedImage]
    /// Digests of every member, in the manifest's banks plus any extra banks asked for.
    public var digests: [String: DigestSet]
    /// The launch description decoded from the verified `launch.dtb`, through the
    /// validation gate and checked against the manifest; nil when the bundle has no
    /// launch DTB (it cannot boot then).
    public var launch: ValidatedLaunch?

    /// Largest non-module member kept in memory.
    public static let maximumMetadataSize = BundleLayout.maximumMetadataSize

    /// Reads and verifies `path`.
    ///
    /// - Parameters:
    ///   - extraBanks: banks to hash every member in besides the manifest's (the TPM's
    ///     active banks), so that measuring needs no second pass.
    ///   - progress: told the bytes the manifest lists (plus the manifest and signature)
    ///     once the signature checks out, and advanced as every member is hashed.
    /// - Throws: ``BundleLoadError`` listing every verification failure.
    public static func load(
        path: String, trust: BundleTrustPolicy, minimumGeneration: UInt64, extraBanks: [HashAlgorithm] = [],
        time: Int64? = nil, progress: ByteProgress? = nil
    ) throws -> LoadedBundle {
        func refuse(_ failures: [BundleFailure]) -> BundleLoadError { BundleLoadError(bundle: path, failures: failures) }

        // Pass 1: the manifest and its signature only (libarchive skips over module data).
        // Nothing else is read until the signature and trust check out.
        var control: [String: [UInt8]] = [:]
        do {
            let reader = try TarReader(path: path, policy: BundleVerifier.readPolicy)
            while let member = try reader.next() {
                let limit: Int
                switch member.path {
                case BundleLayout.manifest: limit = BundleLayout.maximumManifestSize
                case BundleLayout.cmsSignature, BundleLayout.rawSignature: limit = BundleLayout.maximumSignatureSize
                default: continue
                }
                guard control[member.path] == nil else {
                    throw refuse([BundleFailure(.archive, member: member.path, "member appears twice")])
                }
                control[member.path] = try reader.readAll(limit: limit)
            }
        } catch let error as BundleLoadError {
            throw error
        } catch {
            throw refuse([BundleFailure(.archive, "\(error)")])
        }
        guard let manifestBytes = control[BundleLayout.manifest] else {
            throw refuse([BundleFailure(.manifest, member: BundleLayout.manifest, "the bundle has no manifest")])
        }
        let manifest: BundleManifest
        do {
            manifest = try BundleManifest(canonicalBytes: manifestBytes)
        } catch {
            throw refuse([BundleFailure(.manifest, member: BundleLayout.manifest, "\(error)")])
        }
        let cms = control[BundleLayout.cmsSignature]
        let raw = control[BundleLayout.rawSignature]
        let check: SignatureCheck
        switch (cms, raw) {
        case (let cms?, nil): check = BundleVerifier.verifyCMS(cms, manifest: manifestBytes, trust: trust, time: time)
        case (nil, let raw?): check = BundleVerifier.verifyRaw(raw, manifest: manifestBytes, trust: trust, time: time)
        case (nil, nil): check = SignatureCheck(signatureFailures: ["the bundle has neither manifest.sig nor manifest.rawsig"])
        case (.some, .some): check = SignatureCheck(signatureFailures: ["the bundle has both manifest.sig and manifest.rawsig"])
        }
        let signatureMember = cms != nil ? BundleLayout.cmsSignature : BundleLayout.rawSignature
        var failures = check.signatureFailures.map { BundleFailure(.signature, member: signatureMember, $0) }
        failures += check.trustFailures.map { BundleFailure(.trust, member: signatureMember, $0) }
        if manifest.generation < minimumGeneration {
            failures.append(
                BundleFailure(.generation, "bundle generation \(manifest.generation) is below the minimum \(minimumGeneration) (rollback refused)"))
        }
        guard failures.isEmpty, let signer = check.signer else {
            throw refuse(failures.isEmpty ? [BundleFailure(.signature, "no signer")] : failures)
        }

        // Pass 2: every member once, hashed in every bank needed; modules go straight into
        // sealed memfds. These are the bytes that are measured and built.
        let banks = Set(manifest.banks).union(extraBanks).sorted()
        var metadata: [String: [UInt8]] = [:]
        var modules: [String: SealedImage] = [:]
        var observed: [ObservedMember] = []
        var digests: [String: DigestSet] = [:]
        var seen = Set<String>()
        progress?.expect(manifest.members.reduce(control.values.reduce(0) { $0 + UInt64($1.count) }) { $0 &+ $1.size })
        do {
            let reader = try TarReader(path: path, policy: BundleVerifier.readPolicy)
            while let member = try reader.next() {
                guard seen.insert(member.path).inserted else {
                    throw refuse([BundleFailure(.archive, member: member.path, "member appears twice")])
                }
                progress?.begin(member.path)
                var hasher = try MultiHasher(algorithms: banks, progress: progress)
                if BundleLayout.isModulePath(member.path) {
                    let writer = try SealedImage.Writer(name: member.path)
                    try reader.read { chunk in
                        hasher.update(chunk)
                        try writer.append(chunk)
                    }
                    modules[member.path] = try writer.seal()
                } else {
                    var bytes: [UInt8] = []
                    try reader.read { chunk in
                        guard bytes.count + chunk.count <= maximumMetadataSize else {
                            throw refuse([BundleFailure(.archive, member: member.path, "larger than \(maximumMetadataSize) bytes")])
                        }
                        hasher.update(chunk)
                        bytes.append(contentsOf: chunk)
                    }
                    if let first = control[member.path], first != bytes {
                        throw refuse([BundleFailure(.archive, member: member.path, "changed while the bundle was being read")])
                    }
                    metadata[member.path] = bytes
                }
                let set = try hasher.finalize()
                digests[member.path] = set
                observed.append(ObservedMember(path: member.path, size: member.size, digests: set))
            }
        } catch let error as BundleLoadError {
            throw error
        } catch {
            throw refuse([BundleFailure(.archive, "\(error)")])
        }
        failures = manifest.check(observed: observed, minimumGeneration: minimumGeneration)
        guard failures.isEmpty else { throw refuse(failures) }
        let launch: ValidatedLaunch?
        switch BundleVerifier.launchDescription(metadata[BundleLayout.launchDTB], manifest: manifest) {
        case .success(let validated): launch = validated
        case .failure(let refusal): throw refuse(refusal.failures)
        }
        return LoadedBundle(
            manifest: manifest, manifestBytes: manifestBytes, signer: signer, metadata: metadata, modules: modules,
            digests: digests, launch: launch)
    }
}

/// A bundle that did not verify, with every reason.
public struct BundleLoadError: Error, CustomStringConvertible, Sendable {
    public var bundle: String
    public var failures: [BundleFailure]

    public var description: String {
        "\(bundle): refused:\n" + failures.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension BundleManifest {
    /// The manifest of the bundle at `path`, parsed but NOT verified: for showing what a
    /// bundle claims (`domb predict` without a trust option), never for deciding anything.
    /// - Throws: when the bundle cannot be read or has no well-formed manifest.
    public init(unverifiedFromBundle path: String) throws {
        let reader = try TarReader(path: path, policy: BundleVerifier.readPolicy)
        while let member = try reader.next() {
            guard member.path == BundleLayout.manifest else { continue }
            let bytes = try reader.readAll(limit: BundleLayout.maximumManifestSize)
            self = try ContextError.wrap("\(path): manifest.json") { try BundleManifest(canonicalBytes: bytes) }
            return
        }
        throw ContextError(path, ParseError.invalid("the bundle has no manifest.json"))
    }
}
