//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombFiles
import DombLaunch
import DombTPM
import DombTestSupport
import Foundation
import Testing

/// Secrets in the boot flow, on swtpm with the real unsealer: released after the PCRs are
/// read back and before the first unpause, to a root-only file or the domain's own
/// Xenstore node; and on every failure, nothing unpaused and nothing left delivered.
@Suite struct LaunchSecretsTests {
    static let secret = Array("storage disk key".utf8)
    static let token = Array("web api token".utf8)

    struct Setup {
        let fixture: BootFixture
        let pcrKey: SigningKey
        let secrets: TemporaryDirectory
    }

    static func setup(signPolicy: Bool = true) throws -> Setup {
        let pki = try TestPKI.shared()
        let pcrKey = try SigningKey(path: pki.key("p256"))
        let fixture = try BootFixture(pcrKey: signPolicy ? pcrKey : nil)
        return Setup(fixture: fixture, pcrKey: pcrKey, secrets: try TemporaryDirectory(prefix: "domb-secrets-run"))
    }

    /// Seals `bytes` in `tpm` to `key` and writes the sealed file.
    static func seal(_ bytes: [UInt8], key: SigningKey, tpm: TPM, in directory: TemporaryDirectory, _ name: String) throws -> String {
        let sealed = try SecretRelease.seal(bytes, policyKey: try key.verificationKey, policyRef: [], pin: nil, tpm: tpm)
        return try directory.write(name, sealed.fileBytes)
    }

    func launch(
        _ setup: Setup, tpm: TPM, builder: any DomainBuilding, store: FakeXenstore, bindings: [LaunchSecrets.Binding],
        afterReadBack: (() throws -> Void)? = nil
    ) throws -> (Result<BootReport, BootFailure>, LaunchSecrets) {
        let secrets = LaunchSecrets(
            bindings: bindings, unsealer: TPMSecretUnsealer(tpm: tpm),
            deliverer: SecretDeliverer(directory: setup.secrets.file("run"), xenstore: store))
        var environment = environment(tpm, builder: builder, xenstore: store)
        environment.beforeUnpause = {
            try afterReadBack?()
            return try secrets.release($0)
        }
        environment.withdrawSecrets = { secrets.withdraw() }
        do {
            let report = try BootFlow.run(
                bundle: setup.fixture.bundle,
                options: BootOptions(trust: try setup.fixture.trust(), eventLogPath: setup.fixture.directory.file("eventlog.bin")),
                environment: environment)
            return (.success(report), secrets)
        } catch let failure as BootFailure {
            return (.failure(failure), secrets)
        }
    }

    @Test func releasedToAFileAndToTheDomainsOwnXenstoreNodeBeforeUnpause() throws {
        let setup = try Self.setup()
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let disk = try Self.seal(Self.secret, key: setup.pcrKey, tpm: tpm, in: setup.secrets, "disk.sealed")
            let token = try Self.seal(Self.token, key: setup.pcrKey, tpm: tpm, in: setup.secrets, "token.sealed")
            let builder = FaultyBuilder()
            let store = FakeXenstore()
            let (result, _) = try launch(
                setup, tpm: tpm, builder: builder, store: store,
                bindings: [
                    .init(domain: "netback", secret: SecretSpec(name: "disk-key", sealedPath: disk)),
                    .init(domain: "web", secret: SecretSpec(name: "api-token", sealedPath: token, delivery: .xenstore)),
                ])
            let report = try result.get()
            #expect(builder.unpaused == ["xenstore", "netback", "web"])
            let line = try #require(report.record.summary.first { $0.hasPrefix("unsealed 2 secret(s)") })
            #expect(line.contains("disk-key → netback (file "), "\(line)")
            #expect(line.contains("api-token → web (Xenstore /local/domain/3/domb/secrets/api-token)"), "\(line)")
            // The record puts the release after the read-back and before the first unpause.
            let summary = report.record.summary
            let readBack = try #require(summary.firstIndex { $0.hasPrefix("read PCR 12, 13 back") })
            let released = try #require(summary.firstIndex { $0.hasPrefix("unsealed 2 secret(s)") })
            let unpaused = try #require(summary.firstIndex { $0.hasPrefix("unpaused:") })
            #expect(readBack < released && released < unpaused)

            let file = setup.secrets.file("run/netback/disk-key")
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: file))) == Self.secret)
            #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o400)
            for directory in ["run", "run/netback"] {
                #expect(try FileManager.default.attributesOfItem(atPath: setup.secrets.file(directory))[.posixPermissions] as? Int == 0o700)
            }
            let node = "/local/domain/3/domb/secrets/api-token"
            #expect(store.committed[node].flatMap { Data(base64Encoded: $0) }.map(Array.init) == Self.token)
            #expect(store.permissions[node] == [XenstorePermission(.none, 3)], "owned by web, no access for others")
            #expect(store.permissions["/local/domain/3/domb"] == [XenstorePermission(.none, 3)])
        }
    }

    @Test func aFailureAfterTheReleaseTakesTheSecretsBack() throws {
        let setup = try Self.setup()
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let disk = try Self.seal(Self.secret, key: setup.pcrKey, tpm: tpm, in: setup.secrets, "disk.sealed")
            let builder = FaultyBuilder()
            builder.failUnpauseOf = "netback"
            let store = FakeXenstore()
            let (result, secrets) = try launch(
                setup, tpm: tpm, builder: builder, store: store,
                bindings: [
                    .init(domain: "netback", secret: SecretSpec(name: "disk-key", sealedPath: disk)),
                    .init(domain: "web", secret: SecretSpec(name: "copy", sealedPath: disk, delivery: .xenstore)),
                ])
            guard case .failure(let failure) = result else {
                Issue.record("the launch succeeded although netback did not unpause")
                return
            }
            #expect(failure.stage == .unpause)
            #expect(failure.record.summary.contains("took the released secrets back"), "\(failure)")
            #expect(!FileManager.default.fileExists(atPath: setup.secrets.file("run/netback/disk-key")))
            #expect(store.committed["/local/domain/3/domb/secrets/copy"] == nil)
            #expect(secrets.delivered.isEmpty)
            #expect(Set(builder.destroyed) == ["xenstore", "netback", "web"])
        }
    }

    @Test func oneSecretThatDoesNotUnsealRefusesTheLaunchAndDeliversNone() throws {
        let setup = try Self.setup()
        let pki = try TestPKI.shared()
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let good = try Self.seal(Self.secret, key: setup.pcrKey, tpm: tpm, in: setup.secrets, "good.sealed")
            let other = try Self.seal(Self.token, key: try SigningKey(path: pki.key("p256b")), tpm: tpm, in: setup.secrets, "other.sealed")
            let builder = FaultyBuilder()
            let (result, _) = try launch(
                setup, tpm: tpm, builder: builder, store: FakeXenstore(),
                bindings: [
                    .init(domain: "netback", secret: SecretSpec(name: "disk-key", sealedPath: good)),
                    .init(domain: "web", secret: SecretSpec(name: "token", sealedPath: other)),
                ])
            guard case .failure(let failure) = result else {
                Issue.record("a secret sealed to another key was released")
                return
            }
            #expect(failure.stage == .secrets)
            #expect(failure.reason.contains("secret token for web"), "\(failure.reason)")
            #expect(failure.reason.contains("sealed to the PCR-policy key with fingerprint"), "\(failure.reason)")
            #expect(failure.record.summary.contains("no domain was unpaused"))
            #expect(builder.unpaused.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: setup.secrets.file("run/netback/disk-key")), "the good secret was not delivered either")
        }
    }

    /// PCR 13 extended after the launch was measured and read back, before the release (the
    /// window no read-back can cover): the TPM's PolicyPCR refuses, so the launch is refused,
    /// nothing delivered, nothing unpaused, everything built destroyed.
    @Test func pcr13ExtendedAfterTheLaunchRefusesTheLaunch() throws {
        let setup = try Self.setup()
        try Swtpm.with { swtpm in
            let disk: String
            do {  // this connection closes before the reboot (swtpm serves one at a time)
                let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
                disk = try Self.seal(Self.secret, key: setup.pcrKey, tpm: tpm, in: setup.secrets, "disk.sealed")
                let builder = FaultyBuilder()
                let store = FakeXenstore()
                var extended = false
                let (result, secrets) = try launch(
                    setup, tpm: tpm, builder: builder, store: store,
                    bindings: [
                        .init(domain: "netback", secret: SecretSpec(name: "disk-key", sealedPath: disk)),
                        .init(domain: "web", secret: SecretSpec(name: "copy", sealedPath: disk, delivery: .xenstore)),
                    ],
                    afterReadBack: {
                        let banks = try tpm.activeBanks()
                        let digests = banks.compactMap { bank in
                            bank.digestSize.map { TaggedDigest(bank, [UInt8](repeating: 0xAB, count: $0)) }
                        }
                        try tpm.extend(pcr: 13, digests: DigestSet(digests))
                        extended = true
                    })
                #expect(extended)
                guard case .failure(let failure) = result else {
                    Issue.record("released after PCR 13 was extended")
                    return
                }
                #expect(failure.stage == .secrets)
                #expect(failure.reason.contains("TPM2_PolicyPCR"), "\(failure.reason)")
                #expect(failure.reason.contains("do not hold the values the signed policy approves"), "\(failure.reason)")
                #expect(failure.record.summary.contains("no domain was unpaused"), "\(failure.record.summary)")
                #expect(builder.unpaused.isEmpty)
                #expect(Set(builder.destroyed) == ["xenstore", "netback", "web"])
                #expect(secrets.delivered.isEmpty)
                #expect(!FileManager.default.fileExists(atPath: setup.secrets.file("run/netback/disk-key")))
                #expect(store.committed["/local/domain/3/domb/secrets/copy"] == nil)
            }

            // The same TPM, the same sealed object, a fresh launch on reset PCRs: released. So
            // the refusal above was the extension, not the setup.
            try swtpm.reboot()
            let again = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let rebuilt = FaultyBuilder()
            let (retry, _) = try launch(
                setup, tpm: again, builder: rebuilt, store: FakeXenstore(),
                bindings: [.init(domain: "netback", secret: SecretSpec(name: "disk-key", sealedPath: disk))])
            #expect(throws: Never.self) { try retry.get() }
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: setup.secrets.file("run/netback/disk-key")))) == Self.secret)
        }
    }

    @Test func refusedWithoutASignedPolicyOrWithAnUnsafeDirectoryOrAnUnknownDomain() throws {
        let unsigned = try Self.setup(signPolicy: false)
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let disk = try Self.seal(Self.secret, key: unsigned.pcrKey, tpm: tpm, in: unsigned.secrets, "disk.sealed")
            let builder = FaultyBuilder()
            let (result, _) = try launch(
                unsigned, tpm: tpm, builder: builder, store: FakeXenstore(),
                bindings: [.init(domain: "netback", secret: SecretSpec(name: "disk-key", sealedPath: disk))])
            guard case .failure(let failure) = result else {
                Issue.record("released without a signed policy")
                return
            }
            #expect(failure.reason.contains("build it with --pcr-key"), "\(failure.reason)")
            #expect(builder.unpaused.isEmpty)
        }
        let setup = try Self.setup()
        for problem in ["world-readable", "symlink", "domain"] {
            try Swtpm.with { swtpm in
                let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
                let disk = try Self.seal(Self.secret, key: setup.pcrKey, tpm: tpm, in: setup.secrets, "disk-\(problem).sealed")
                let run = setup.secrets.file("run")
                try? FileManager.default.removeItem(atPath: run)
                var domain = "netback"
                switch problem {
                case "world-readable": try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
                case "symlink": try FileManager.default.createSymbolicLink(atPath: run, withDestinationPath: setup.secrets.path)
                default: domain = "nosuchdomain"
                }
                let builder = FaultyBuilder()
                let (result, _) = try launch(
                    setup, tpm: tpm, builder: builder, store: FakeXenstore(),
                    bindings: [.init(domain: domain, secret: SecretSpec(name: "disk-key", sealedPath: disk))])
                guard case .failure(let failure) = result else {
                Issue.record("\(problem): released")
                return
            }
                let expected = ["world-readable": "mode 0700", "symlink": "not a directory", "domain": "no domain \"nosuchdomain\""][problem] ?? ""
                #expect(failure.reason.contains(expected), "\(problem): \(failure.reason)")
                #expect(builder.unpaused.isEmpty, "\(problem)")
                try? FileManager.default.removeItem(atPath: run)
            }
        }
    }

}
