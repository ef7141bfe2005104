//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One reason a bundle is refused.
public struct BundleFailure: Hashable, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The archive itself is unreadable or breaks a structural rule (links, traversal, caps).
        public static let archive = Kind("archive")
        /// The manifest is missing, not canonical, or malformed.
        public static let manifest = Kind("manifest")
        /// The signature does not verify over the manifest.
        public static let signature = Kind("signature")
        /// The signer is not trusted: chain, expiry, purpose, pinned certificate or key.
        public static let trust = Kind("trust")
        /// A member the manifest lists is absent.
        public static let missingMember = Kind("missing member")
        /// A member is present that the manifest does not list.
        public static let unexpectedMember = Kind("unexpected member")
        /// A member's size or digest differs from the manifest.
        public static let digestMismatch = Kind("digest mismatch")
        /// The generation is below the verifier's minimum (rollback).
        public static let generation = Kind("generation")
        /// The manifest and the launch DTB describe different domains or modules.
        public static let launchDescription = Kind("launch description")
    }

    public var kind: Kind
    /// The member concerned, when there is one.
    public var member: String?
    public var message: String

    public init(_ kind: Kind, member: String? = nil, _ message: String) {
        self.kind = kind
        self.member = member
        self.message = message
    }

    public var description: String {
        if let member { return "\(kind): \(member): \(message)" }
        return "\(kind): \(message)"
    }
}

/// What a reader observed of one archive member: its size and digests, computed while
/// streaming it.
public struct ObservedMember: Hashable, Sendable {
    public var path: String
    public var size: UInt64
    public var digests: DigestSet

    public init(path: String, size: UInt64, digests: DigestSet) {
        self.path = path
        self.size = size
        self.digests = digests
    }
}

/// The outcome of verifying a bundle: a value, never an exception. ``isVerified`` is true
/// only when the manifest was read, the signature and trust checks ran and passed, and
/// nothing else failed.
public struct BundleVerification: Sendable {
    /// The manifest, parsed. Trust it only if ``isVerified``.
    public var manifest: BundleManifest?
    /// Who signed, as the signature check reports it (subject or key description).
    public var signer: String?
    public var failures: [BundleFailure]

    public init(manifest: BundleManifest? = nil, signer: String? = nil, failures: [BundleFailure] = []) {
        self.manifest = manifest
        self.signer = signer
        self.failures = failures
    }

    public var isVerified: Bool { manifest != nil && signer != nil && failures.isEmpty }
}

extension BundleManifest {
    /// Checks the observed archive members against the manifest: every listed member is
    /// present with the same size and the same digest in every bank, nothing else is
    /// present apart from the manifest and one signature, and the generation is not below
    /// `minimumGeneration`. Returns every failure found, not only the first.
    public func check(observed: [ObservedMember], minimumGeneration: UInt64 = 0) -> [BundleFailure] {
        var failures: [BundleFailure] = []
        if generation < minimumGeneration {
            failures.append(
                BundleFailure(
                    .generation, "bundle generation \(generation) is below the minimum \(minimumGeneration) (rollback refused)"))
        }
        var observedByPath: [String: ObservedMember] = [:]
        for item in observed { observedByPath[item.path] = item }
        let control: Set<String> = [BundleLayout.manifest, BundleLayout.cmsSignature, BundleLayout.rawSignature]
        let listed = members
        let listedPaths = Set(listed.map(\.path))
        for member in listed {
            guard let seen = observedByPath[member.path] else {
                failures.append(BundleFailure(.missingMember, member: member.path, "listed in the manifest but not in the bundle"))
                continue
            }
            if seen.size != member.size {
                failures.append(
                    BundleFailure(
                        .digestMismatch, member: member.path, "size is \(seen.size) bytes, the manifest says \(member.size)"))
                continue
            }
            for bank in banks {
                let expected = member.digests[bank] ?? []
                let actual = seen.digests[bank] ?? []
                if expected != actual {
                    failures.append(
                        BundleFailure(
                            .digestMismatch, member: member.path,
                            "\(bank.name) digest is \(actual.hexString), the manifest says \(expected.hexString)"))
                }
            }
        }
        for item in observed.sorted(by: { $0.path < $1.path })
        where !listedPaths.contains(item.path) && !control.contains(item.path) {
            failures.append(BundleFailure(.unexpectedMember, member: item.path, "present in the bundle but not listed in the manifest"))
        }
        return failures
    }
}

extension BundleManifest {
    /// Checks that the manifest and the launch description decoded from `launch.dtb`
    /// describe the same launch: the same domains, and for each the same modules in the
    /// same order, each module node naming exactly its bundle member
    /// (`modules/<domain>/<role>`). A domain only in the manifest would be "verified" and
    /// then never booted; one only in the DTB would pass verification and fail at boot.
    public func launchDescriptionFailures(_ spec: LaunchSpec) -> [BundleFailure] {
        var failures: [BundleFailure] = []
        let dtb = BundleLayout.launchDTB
        let manifestNames = domains.map(\.name)
        let specNames = spec.domains.map(\.name)
        for name in manifestNames where !specNames.contains(name) {
            failures.append(BundleFailure(.launchDescription, member: dtb, "domain \(name) is in the manifest but not in the launch DTB"))
        }
        for name in specNames where !manifestNames.contains(name) {
            failures.append(BundleFailure(.launchDescription, member: dtb, "domain \(name) is in the launch DTB but not in the manifest"))
        }
        for domain in spec.domains {
            guard let listed = domains.first(where: { $0.name == domain.name }) else { continue }
            let roles = BundleLayout.moduleRoles(domain.modules.map(\.kind))
            let listedRoles = listed.modules.map(\.role)
            guard roles == listedRoles else {
                failures.append(
                    BundleFailure(
                        .launchDescription, member: dtb,
                        "domain \(domain.name): the launch DTB has modules [\(roles.joined(separator: ", "))], the manifest [\(listedRoles.joined(separator: ", "))]"))
                continue
            }
            for (module, entry) in zip(domain.modules, listed.modules) where module.path != entry.member.path {
                failures.append(
                    BundleFailure(
                        .launchDescription, member: dtb,
                        "domain \(domain.name): its \(entry.role) module names \"\(module.path)\", not the bundle member \(entry.member.path)"))
            }
        }
        return failures
    }
}
