//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles
import DombModel
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One secret delivered to its consumer, so that a failed launch can take it back.
public enum DeliveredSecret: Hashable, Sendable, CustomStringConvertible {
    case file(String)
    case xenstore(String)
    /// A Xenstore secret under a backend without Xenstore (plan): unsealed, not written.
    case notWritten(String)

    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .xenstore(let path): "Xenstore \(path)"
        case .notWritten(let path): "not written to \(path) (no Xenstore with this backend)"
        }
    }
}

/// Hands unsealed secrets to their consumers (docs/secrets.md, "Delivery and its trade-offs").
public struct SecretDeliverer {
    /// The root-only runtime directory of ``SecretDelivery/file`` secrets.
    public var directory: String
    /// Where ``SecretDelivery/xenstore`` secrets go; nil under the plan backend.
    public var xenstore: (any XenstoreWriting)?

    public static let defaultDirectory = "/run/domb/secrets"

    public init(directory: String = Self.defaultDirectory, xenstore: (any XenstoreWriting)?) {
        self.directory = directory
        self.xenstore = xenstore
    }

    /// Delivers `secret` to `domain`.
    /// - Throws: when the directory is not private (another owner, group or world access,
    ///   a link), or Xenstore refuses the transaction.
    public func deliver(_ secret: [UInt8], spec: SecretSpec, to domain: BuiltDomain) throws -> DeliveredSecret {
        switch spec.delivery {
        case .file:
            try Self.privateDirectory(directory)
            let domainDirectory = "\(directory)/\(domain.name)"
            try Self.privateDirectory(domainDirectory)
            let path = "\(domainDirectory)/\(spec.name)"
            try AtomicFile.write(secret, to: path, mode: 0o400)
            return .file(path)
        case .xenstore:
            let path = SecretSpec.xenstorePath(domid: domain.domid, name: spec.name)
            guard let xenstore else { return .notWritten(path) }
            // Owned by the domain (it may read and remove it), no access for any other domain.
            let perms = [XenstorePermission(.none, domain.domid)]
            let base = "/local/domain/\(domain.domid)/domb"
            let plan = XenstoreResolvedPlan(
                removals: [],
                nodes: [
                    .init(path: base, value: "", perms: perms), .init(path: "\(base)/secrets", value: "", perms: perms),
                    .init(path: path, value: Data(secret).base64EncodedString(), perms: perms),
                ], introductions: [])
            _ = try XenstoreApplier(introduce: false).apply(plan, to: xenstore)
            return .xenstore(path)
        }
    }

    /// Takes a delivered secret back; returns a problem, or nil.
    public func withdraw(_ delivered: DeliveredSecret) -> String? {
        switch delivered {
        case .file(let path):
            return unlink(path) == 0 || errno == ENOENT ? nil : "could not remove \(path): \(String(cString: strerror(errno)))"
        case .xenstore(let path):
            guard let xenstore else { return nil }
            do {
                _ = try XenstoreApplier(introduce: false).apply(XenstoreResolvedPlan(removals: [path], nodes: [], introductions: []), to: xenstore)
                return nil
            } catch {
                return "could not remove \(path): \(error)"
            }
        case .notWritten:
            return nil
        }
    }

    /// Makes `path` a directory only its owner (this user) can enter, or checks that it is one.
    static func privateDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw FileError(path: path, operation: "create the secrets directory", code: errno)
        }
        var status = stat()
        guard lstat(path, &status) == 0 else { throw FileError(path: path, operation: "check the secrets directory", code: errno) }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            throw FileError(path: path, operation: "use as the secrets directory", message: "is not a directory (a link is not followed)")
        }
        guard status.st_uid == geteuid(), status.st_mode & 0o077 == 0 else {
            throw FileError(
                path: path, operation: "use as the secrets directory",
                message: "must belong to uid \(geteuid()) with mode 0700 (it has uid \(status.st_uid), mode 0\(String(status.st_mode & 0o777, radix: 8)))")
        }
    }
}

/// The secrets of one launch (the launch description's `domb,secrets` and `domb boot --secret`):
/// released in ``BootEnvironment/beforeUnpause`` — after the PCRs were read back and match
/// the log, before the first unpause — and withdrawn if the launch fails after that.
public final class LaunchSecrets: @unchecked Sendable {
    /// A domain's secret.
    public struct Binding: Hashable, Sendable {
        public var domain: String
        public var secret: SecretSpec

        public init(domain: String, secret: SecretSpec) {
            self.domain = domain
            self.secret = secret
        }
    }

    /// The command line's (`--secret`); the description's are read from the launch.
    public let bindings: [Binding]
    public let unsealer: any SecretUnsealing
    public let deliverer: SecretDeliverer
    /// The PIN of secrets sealed with one.
    public let pin: [UInt8]?
    public private(set) var delivered: [DeliveredSecret] = []

    public init(bindings: [Binding], unsealer: any SecretUnsealing, deliverer: SecretDeliverer, pin: [UInt8]? = nil) {
        self.bindings = bindings
        self.unsealer = unsealer
        self.deliverer = deliverer
        self.pin = pin
    }

    /// Unseals every secret, then delivers them; nothing is delivered unless everything
    /// unsealed, and a delivery failure takes the earlier ones back.
    /// - Returns: the line for the launch record.
    /// - Throws: the first failure, naming the secret, the domain and the TPM step.
    public func release(_ launch: MeasuredLaunch) throws -> String? {
        // The description's own bindings (`domb,secrets`, measured with it), then `--secret`.
        let described = launch.spec.domains.flatMap { domain in (domain.secrets ?? []).map { Binding(domain: domain.name, secret: $0) } }
        let bindings = described + self.bindings
        guard !bindings.isEmpty else { return nil }
        var seen = Set<String>()
        for binding in bindings {
            guard launch.domains.contains(where: { $0.name == binding.domain }) else {
                throw SecretReleaseError("--secret \(binding.domain)=…: this launch has no domain \"\(binding.domain)\"")
            }
            guard seen.insert("\(binding.domain)/\(binding.secret.name)").inserted else {
                throw SecretReleaseError("domain \(binding.domain) is given two secrets named \(binding.secret.name)")
            }
        }
        guard let policyBytes = launch.bundle.metadata[BundleLayout.signedPCRPolicy] else {
            throw SecretReleaseError("the bundle has no signed PCR policy (\(BundleLayout.signedPCRPolicy)): build it with --pcr-key to release secrets")
        }
        let policy = try ContextError.wrap(BundleLayout.signedPCRPolicy) { try SignedPCRPolicy(canonicalBytes: policyBytes) }
        let problems = PCRPolicySigner.failures(of: policy, manifest: launch.bundle.manifest)
        guard problems.isEmpty else {
            throw SecretReleaseError("the bundle's signed PCR policy is unsound: \(problems.joined(separator: "; "))")
        }

        var unsealed: [(Binding, [UInt8])] = []
        defer {
            for index in unsealed.indices { _ = unsealed[index].1.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        }
        func context(_ binding: Binding) -> String {
            "secret \(binding.secret.name) for \(binding.domain) (\(binding.secret.sealedPath))"
        }
        let sealed = try bindings.map { binding in
            try ContextError.wrap(context(binding)) { try SecretRelease.readSealed(binding.secret.sealedPath) }
        }
        for (binding, result) in zip(bindings, try unsealer.unseal(sealed, policy: policy, pin: pin)) {
            let bytes = try ContextError.wrap(context(binding)) { try result.get() }
            unsealed.append((binding, bytes))
        }
        guard unsealed.count == bindings.count else { throw SecretReleaseError("the unsealer returned fewer results than secrets") }
        var lines: [String] = []
        for (binding, bytes) in unsealed {
            guard let domain = launch.domains.first(where: { $0.name == binding.domain }) else { continue }
            do {
                let delivered = try deliverer.deliver(bytes, spec: binding.secret, to: domain)
                self.delivered.append(delivered)
                lines.append("\(binding.secret.name) → \(binding.domain) (\(delivered))")
            } catch {
                let problems = withdraw()
                throw SecretReleaseError(
                    "delivering secret \(binding.secret.name) to \(binding.domain): \(error)"
                        + (problems.isEmpty ? "" : " (\(problems.joined(separator: "; ")))"))
            }
        }
        return "unsealed \(unsealed.count) secret(s) with the bundle's signed PCR policy: \(lines.joined(separator: ", "))"
    }

    /// Takes back everything delivered (a launch that fails after the release); returns
    /// what could not be removed.
    @discardableResult
    public func withdraw() -> [String] {
        let problems = delivered.reversed().compactMap { deliverer.withdraw($0) }
        delivered.removeAll()
        return problems
    }
}
