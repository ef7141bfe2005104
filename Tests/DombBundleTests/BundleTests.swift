//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombCrypto
import DombFDT
import DombLaunch
import DombTestSupport
import Foundation
import Testing

@Suite struct BundleTests {
    func anchors(_ pki: TestPKI) throws -> BundleTrustPolicy { .anchors(try TrustAnchors.load(path: pki.trustDirectory)) }

    @Test func cmsBundleVerifiesWithEveryTrustMode() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.build("cms.tar", signing: try fixture.cmsSigning("p256"))
        let byAnchors = BundleVerifier.verify(bundle: bundle, trust: try anchors(fixture.pki), minimumGeneration: 5)
        #expect(byAnchors.isVerified, "\(byAnchors.failures)")
        let manifest = try #require(byAnchors.manifest)
        #expect(manifest.generation == 5)
        #expect(manifest.banks == [.sha1, .sha256, .sha384])
        #expect(manifest.domains.map(\.name) == ["dom0", "guest1", "netdrv"])
        #expect(manifest.domains[0].modules.map(\.role) == ["kernel", "ramdisk"])
        #expect(manifest.launchDTB?.size == UInt64(fixture.dtb.count))
        #expect(manifest.xenstorePlan != nil && manifest.predictedEventLog != nil && manifest.signerCertificates != nil)
        #expect(manifest.predictedPCRs[.sha256, 13]?.count == 32)
        #expect(manifest.pcrPolicy == ["configuration": 12, "commandLine": 12, "image": 13])

        let pinned = try #require(try X509Certificate.load(path: fixture.pki.certificate("p256")).first)
        #expect(BundleVerifier.verify(bundle: bundle, trust: .pinnedCertificate(pinned)).isVerified)
        let key = try VerificationKey(path: fixture.pki.publicKey("p256"))
        #expect(BundleVerifier.verify(bundle: bundle, trust: .publicKey(key)).isVerified)
    }

    @Test(arguments: TestPKI.signerNames)
    func rawBundleVerifiesWithItsKey(_ signer: String) throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.build("raw.tar", signing: try fixture.rawSigning(signer))
        let key = try VerificationKey(path: fixture.pki.publicKey(signer))
        let result = BundleVerifier.verify(bundle: bundle, trust: .publicKey(key))
        #expect(result.isVerified, "\(result.failures)")
        let certificate = try #require(try X509Certificate.load(path: fixture.pki.certificate(signer)).first)
        #expect(BundleVerifier.verify(bundle: bundle, trust: .pinnedCertificate(certificate)).isVerified)
        // A trust directory cannot vouch for a raw key.
        let byAnchors = BundleVerifier.verify(bundle: bundle, trust: try anchors(fixture.pki))
        #expect(!byAnchors.isVerified)
        #expect(byAnchors.failures.contains { $0.kind == .trust && $0.message.contains("--pubkey") })
    }

    @Test func moduleDigestsEqualSha256sumAndOpenSSL() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.build("cms.tar", signing: try fixture.cmsSigning("p384"))
        let result = BundleVerifier.verify(bundle: bundle, trust: try anchors(fixture.pki))
        let manifest = try #require(result.manifest)
        let sources = [
            "modules/dom0/kernel": "dom0-kernel", "modules/dom0/ramdisk": "dom0-initrd",
            "modules/guest1/kernel": "guest-kernel", "modules/netdrv/kernel": "driver-kernel",
            "modules/netdrv/config": "driver-config",
        ]
        let modules = manifest.domains.flatMap(\.modules)
        #expect(modules.count == sources.count)
        for module in modules {
            let source = fixture.directory.file(try #require(sources[module.member.path]))
            let sum = try Tools.run("sha256sum", [source]).stdoutText.prefix(64)
            #expect(module.member.digests[.sha256]?.hexString == String(sum), "\(module.member.path)")
            for bank in [HashAlgorithm.sha1, .sha384] {
                let expected = try Tools.run("openssl", ["dgst", "-\(bank.name)", "-binary", source]).stdout
                #expect(module.member.digests[bank] == expected, "\(module.member.path) \(bank)")
            }
        }
    }

    @Test func buildsAreReproducible() throws {
        let fixture = try BundleFixture()
        // Ed25519 signatures are deterministic: the whole bundle is byte-identical.
        let a = try fixture.build("a.tar", signing: try fixture.rawSigning("ed25519"))
        let b = try fixture.build("b.tar", signing: try fixture.rawSigning("ed25519"))
        let bytesA = try Array(Data(contentsOf: URL(fileURLWithPath: a)))
        #expect(bytesA == (try Array(Data(contentsOf: URL(fileURLWithPath: b)))))
        // Another SOURCE_DATE_EPOCH gives another archive (mtimes), the same manifest.
        let c = try fixture.build("c.tar", signing: try fixture.rawSigning("ed25519"), epoch: 1_700_000_001)
        #expect(bytesA != (try Array(Data(contentsOf: URL(fileURLWithPath: c)))))
        // ECDSA signatures are randomised: every member except the signature is identical.
        let d = try archiveMembers(try fixture.build("d.tar", signing: try fixture.cmsSigning("p256")))
        let e = try archiveMembers(try fixture.build("e.tar", signing: try fixture.cmsSigning("p256")))
        #expect(d.map(\.0) == e.map(\.0))
        for (left, right) in zip(d, e) where left.0 != BundleLayout.cmsSignature {
            #expect(left.1 == right.1, "\(left.0)")
        }
    }

    @Test func extractWritesOnlyAVerifiedBundle() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.build("cms.tar", signing: try fixture.cmsSigning("p256"))
        let target = fixture.directory.file("out")
        let result = BundleVerifier.verify(bundle: bundle, trust: try anchors(fixture.pki), extractTo: target)
        #expect(result.isVerified, "\(result.failures)")
        let kernel = try Array(Data(contentsOf: URL(fileURLWithPath: "\(target)/modules/dom0/kernel")))
        #expect(kernel == (try Array(Data(contentsOf: fixture.directory.url.appendingPathComponent("dom0-kernel")))))
        // A second extraction into the same directory is refused; a tampered bundle leaves nothing.
        #expect(!BundleVerifier.verify(bundle: bundle, trust: try anchors(fixture.pki), extractTo: target).isVerified)
        var members = try archiveMembers(bundle)
        members[0].1[10] ^= 1
        try writeArchive(fixture.directory.file("bad.tar"), members)
        let badTarget = fixture.directory.file("bad-out")
        let bad = BundleVerifier.verify(bundle: fixture.directory.file("bad.tar"), trust: try anchors(fixture.pki), extractTo: badTarget)
        #expect(!bad.isVerified)
        #expect(!FileManager.default.fileExists(atPath: badTarget))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func builderErrorsNameTheProblemAndLeaveNoOutput() throws {
        let fixture = try BundleFixture()
        var spec = fixture.spec
        spec.domains[1].modules[0].path = "missing-kernel"
        var builder = fixture.builder
        builder.loader = FixtureLoader(launch: LoadedLaunch(spec: spec, baseDirectory: fixture.directory.path))
        let output = fixture.directory.file("never.tar")
        let options = BundleBuildOptions(output: output, generation: 1, banks: [.sha256], sourceDateEpoch: 0, signing: try fixture.rawSigning("p256"))
        let missing = #expect(throws: (any Error).self) { try builder.build(configuration: "x", options: options) }
        #expect("\(missing.map { "\($0)" } ?? "")".contains("domain guest1, kernel"))
        spec = fixture.spec
        spec.domains[0].name = "../evil"
        builder.loader = FixtureLoader(launch: LoadedLaunch(spec: spec, baseDirectory: fixture.directory.path))
        let evil = #expect(throws: (any Error).self) { try builder.build(configuration: "x", options: options) }
        #expect("\(evil.map { "\($0)" } ?? "")".contains("../evil"))
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    // MARK: Tamper matrix

    /// The failures of a tampered bundle, as text, after checking it is refused.
    func refusal(_ bundle: String, _ trust: BundleTrustPolicy, minimumGeneration: UInt64 = 0) -> [BundleFailure] {
        let result = BundleVerifier.verify(bundle: bundle, trust: trust, minimumGeneration: minimumGeneration)
        #expect(!result.isVerified, "\(bundle) was accepted")
        #expect(!result.failures.isEmpty)
        return result.failures
    }

    @Test func aFlippedByteInAnyMemberIsRefusedNamingIt() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.build("good.tar", signing: try fixture.cmsSigning("p256"))
        let trust = try anchors(fixture.pki)
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: bundle)))
        let layout = tarLayout(bytes)
        #expect(layout.count == 11)  // 5 modules, DTB, plan, log, signer.pem, manifest, signature
        for entry in layout {
            var tampered = bytes
            tampered[entry.dataOffset + entry.size / 2] ^= 0x01
            let path = try fixture.directory.write("flip.tar", tampered)
            let failures = refusal(path, trust)
            let named = failures.contains { $0.member == entry.name || $0.message.contains(entry.name) }
            #expect(named, "\(entry.name): \(failures)")
            switch entry.name {
            case BundleLayout.manifest:
                #expect(failures.contains { $0.kind == .signature }, "\(failures)")
            case BundleLayout.cmsSignature:
                // Depending on the byte: the signature, or the embedded certificate (trust).
                #expect(failures.allSatisfy { $0.kind == .signature || $0.kind == .trust }, "\(failures)")
            default:
                #expect(failures.allSatisfy { $0.kind == .digestMismatch && $0.member == entry.name }, "\(failures)")
            }
        }
    }

    @Test func aFlippedByteInAnyArchiveHeaderIsRefused() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.build("good.tar", signing: try fixture.cmsSigning("p256"))
        let trust = try anchors(fixture.pki)
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: bundle)))
        // Name, mode, size, mtime, checksum, typeflag, uname fields of every header.
        for entry in tarLayout(bytes) {
            for field in [0, 101, 126, 140, 150, 156, 266] {
                var tampered = bytes
                tampered[entry.headerOffset + field] ^= 0x02
                let path = try fixture.directory.write("header.tar", tampered)
                let failures = refusal(path, trust)
                #expect(failures.contains { $0.kind == .archive || $0.kind == .signature || $0.kind == .digestMismatch || $0.kind == .missingMember }, "\(entry.name)+\(field): \(failures)")
            }
        }
    }

    @Test func swappedRemovedAndAddedMembersAreRefused() throws {
        let fixture = try BundleFixture()
        let other = try BundleFixture(kernelSeed: 99)
        let trust = try anchors(fixture.pki)
        let good = try archiveMembers(try fixture.build("good.tar", signing: try fixture.cmsSigning("p256")))
        let foreign = try archiveMembers(try other.build("other.tar", signing: try other.cmsSigning("p256")))

        // A member from another (validly signed) bundle.
        var swapped = good
        let kernelIndex = try #require(swapped.firstIndex { $0.0 == "modules/dom0/kernel" })
        swapped[kernelIndex].1 = try #require(foreign.first { $0.0 == "modules/dom0/kernel" }).1
        try writeArchive(fixture.directory.file("swapped.tar"), swapped)
        let swapFailures = refusal(fixture.directory.file("swapped.tar"), trust)
        #expect(swapFailures.contains { $0.kind == .digestMismatch && $0.member == "modules/dom0/kernel" }, "\(swapFailures)")
        // The other bundle's manifest and signature with our modules.
        var mixed = good
        for name in [BundleLayout.manifest, BundleLayout.cmsSignature] {
            let index = try #require(mixed.firstIndex { $0.0 == name })
            mixed[index].1 = try #require(foreign.first { $0.0 == name }).1
        }
        try writeArchive(fixture.directory.file("mixed.tar"), mixed)
        let mixFailures = refusal(fixture.directory.file("mixed.tar"), trust)
        #expect(mixFailures.contains { $0.member == "modules/dom0/kernel" }, "\(mixFailures)")

        // A member removed.
        try writeArchive(fixture.directory.file("removed.tar"), good.filter { $0.0 != "modules/guest1/kernel" })
        let removedFailures = refusal(fixture.directory.file("removed.tar"), trust)
        #expect(removedFailures.contains { $0.kind == .missingMember && $0.member == "modules/guest1/kernel" }, "\(removedFailures)")
        // The signature removed.
        try writeArchive(fixture.directory.file("unsigned.tar"), good.filter { $0.0 != BundleLayout.cmsSignature })
        #expect(refusal(fixture.directory.file("unsigned.tar"), trust).contains { $0.kind == .signature })
        // A member added, at the end and in the middle.
        try writeArchive(fixture.directory.file("added.tar"), good + [("modules/dom0/extra", [1, 2, 3])])
        let addedFailures = refusal(fixture.directory.file("added.tar"), trust)
        #expect(addedFailures.contains { $0.kind == .unexpectedMember && $0.member == "modules/dom0/extra" }, "\(addedFailures)")
        try writeArchive(fixture.directory.file("added2.tar"), [("README", [1])] + good)
        #expect(refusal(fixture.directory.file("added2.tar"), trust).contains { $0.kind == .unexpectedMember && $0.member == "README" })
        // A second signature next to the first.
        try writeArchive(fixture.directory.file("twosigs.tar"), good + [(BundleLayout.rawSignature, [1])])
        #expect(refusal(fixture.directory.file("twosigs.tar"), trust).contains { $0.kind == .signature })
    }

    @Test func untrustedWrongAndExpiredSignersAndRollbackAreRefused() throws {
        let fixture = try BundleFixture()
        let trust = try anchors(fixture.pki)
        let untrusted = try fixture.build("untrusted.tar", signing: try fixture.cmsSigning("untrusted"))
        let untrustedFailures = refusal(untrusted, trust)
        #expect(untrustedFailures.contains { $0.kind == .trust && $0.message.contains("local issuer") }, "\(untrustedFailures)")

        // build refuses these signers; the verifiers must refuse them too when forced through.
        #expect(throws: UnusableCertificateError.self) {
            try fixture.build("expired-refused.tar", signing: try fixture.cmsSigning("expired"))
        }
        #expect(throws: UnusableCertificateError.self) {
            try fixture.build("server-refused.tar", signing: try fixture.cmsSigning("tlsserver"))
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("expired-refused.tar")))
        let expired = try fixture.build("expired.tar", signing: try fixture.cmsSigning("expired"), allowUnusableCertificate: true)
        let expiredFailures = refusal(expired, trust)
        #expect(expiredFailures.contains { $0.kind == .trust && $0.message.contains("has expired") }, "\(expiredFailures)")

        let server = try fixture.build("server.tar", signing: try fixture.cmsSigning("tlsserver"), allowUnusableCertificate: true)
        #expect(refusal(server, trust).contains { $0.kind == .trust && $0.message.contains("codeSigning") })

        let good = try fixture.build("good.tar", signing: try fixture.cmsSigning("p256"), generation: 5)
        let otherCertificate = try #require(try X509Certificate.load(path: fixture.pki.certificate("p256b")).first)
        #expect(refusal(good, .pinnedCertificate(otherCertificate)).contains { $0.kind == .trust && $0.message.contains("not the pinned") })
        let otherKey = try VerificationKey(path: fixture.pki.publicKey("p256b"))
        #expect(refusal(good, .publicKey(otherKey)).contains { $0.kind == .trust && $0.message.contains("does not hold") })
        let raw = try fixture.build("raw.tar", signing: try fixture.rawSigning("p256"))
        let rawFailures = refusal(raw, .publicKey(otherKey))
        #expect(rawFailures.contains { $0.kind == .signature && $0.member == BundleLayout.rawSignature }, "\(rawFailures)")

        let rollback = refusal(good, trust, minimumGeneration: 6)
        #expect(rollback.map(\.kind) == [.generation], "\(rollback)")
        #expect(rollback.first?.message.contains("generation 5 is below the minimum 6") == true)
        #expect(BundleVerifier.verify(bundle: good, trust: trust, minimumGeneration: 5).isVerified)
    }

    @Test func archiveLevelProblemsAreRefused() throws {
        let fixture = try BundleFixture()
        let trust = try anchors(fixture.pki)
        let bundle = try fixture.build("good.tar", signing: try fixture.cmsSigning("p256"))
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: bundle)))
        // Appended data after the archive.
        let appended = try fixture.directory.write("appended.tar", bytes + Array("trailing".utf8))
        #expect(refusal(appended, trust).contains { $0.kind == .archive })
        // Truncated at a spread of places (drip-feed).
        for cut in stride(from: 0, to: bytes.count, by: 4099) + [bytes.count - 1, bytes.count - 512, bytes.count - 1024] {
            let path = try fixture.directory.write("cut.tar", Array(bytes.prefix(cut)))
            #expect(!BundleVerifier.verify(bundle: path, trust: trust).isVerified, "prefix \(cut)")
        }
        // A manifest that is valid JSON but not canonical (even if re-signed) is refused.
        var members = try archiveMembers(bundle)
        let index = try #require(members.firstIndex { $0.0 == BundleLayout.manifest })
        members[index].1 = Array(" ".utf8) + members[index].1
        try writeArchive(fixture.directory.file("noncanonical.tar"), members)
        #expect(refusal(fixture.directory.file("noncanonical.tar"), trust).contains { $0.kind == .manifest })
        // Not a file at all.
        #expect(refusal(fixture.directory.file("missing.tar"), trust).contains { $0.kind == .archive })
    }

    /// A pinned certificate is the policy whatever the bundle's format: a raw signature by
    /// the key of an expired or non-code-signing certificate is refused like its CMS one.
    @Test func aPinnedCertificateIsEnforcedOnRawSignaturesToo() throws {
        let fixture = try BundleFixture()
        func pinned(_ name: String) throws -> BundleTrustPolicy {
            .pinnedCertificate(try #require(try X509Certificate.load(path: fixture.pki.certificate(name)).first))
        }
        let expired = try fixture.build("expired-raw.tar", signing: try fixture.rawSigning("expired"))
        #expect(refusal(expired, try pinned("expired")).contains { $0.kind == .trust && $0.message.contains("has expired") })
        let server = try fixture.build("server-raw.tar", signing: try fixture.rawSigning("tlsserver"))
        #expect(refusal(server, try pinned("tlsserver")).contains { $0.kind == .trust && $0.message.contains("codeSigning") })
        // The same failures through the loader boot uses.
        #expect(throws: BundleLoadError.self) { try LoadedBundle.load(path: expired, trust: try pinned("expired"), minimumGeneration: 0) }
        // A good certificate's key verifies, and the report names the certificate.
        let good = try fixture.build("good-raw.tar", signing: try fixture.rawSigning("p256"))
        let verified = BundleVerifier.verify(bundle: good, trust: try pinned("p256"))
        #expect(verified.isVerified, "\(verified.failures)")
        #expect(verified.signer?.contains("CN=domb test signer p256") == true)
    }

    /// The manifest and launch.dtb must describe the same launch.
    @Test func aManifestAndLaunchDTBThatDisagreeAreRefused() throws {
        let fixture = try BundleFixture()
        let trust = try anchors(fixture.pki)
        let good = try fixture.build("good.tar", signing: try fixture.cmsSigning("p256"))
        #expect(BundleVerifier.verify(bundle: good, trust: trust).isVerified)
        let manifest = try #require(BundleVerifier.verify(bundle: good, trust: trust).manifest)
        // The same launch description minus one domain: the manifest still lists it.
        var fewer = manifest
        fewer.domains.removeAll { $0.name == "guest1" }
        let spec = try LaunchDecoder.decode(dtb: fixture.dtb).spec
        var dropped = spec
        dropped.domains.removeAll { $0.name == "netdrv" }
        let failures = manifest.launchDescriptionFailures(dropped) + fewer.launchDescriptionFailures(spec)
        #expect(failures.map(\.message).sorted() == [
            "domain guest1 is in the launch DTB but not in the manifest",
            "domain netdrv is in the manifest but not in the launch DTB",
        ])
        // Signed that way (a builder handed a launch DTB that lacks a domain), the bundle
        // verifies member by member, and is refused as a whole.
        let builder = BundleBuilder(
            loader: FixtureLoader(
                launch: LoadedLaunch(spec: fixture.spec, launchDTB: try LaunchEncoder.dtb(dropped), baseDirectory: fixture.directory.path)),
            predictor: SoftwarePredictor(), xenstorePlanner: FixturePlanner())
        let inconsistent = fixture.directory.file("inconsistent.tar")
        _ = try builder.build(
            configuration: "fixture",
            options: BundleBuildOptions(
                output: inconsistent, generation: 5, banks: [.sha256], sourceDateEpoch: 1_700_000_000,
                signing: try fixture.cmsSigning("p256")))
        let refused = refusal(inconsistent, trust)
        #expect(refused.map(\.kind) == [.launchDescription], "\(refused)")
        #expect(refused.first?.message == "domain netdrv is in the manifest but not in the launch DTB")
        #expect(throws: BundleLoadError.self) { try LoadedBundle.load(path: inconsistent, trust: trust, minimumGeneration: 0) }
        // A module node naming another member.
        var swapped = spec
        swapped.domains[0].modules[0].path = "modules/guest1/kernel"
        #expect(manifest.launchDescriptionFailures(swapped).map(\.message) == [
            "domain dom0: its kernel module names \"modules/guest1/kernel\", not the bundle member modules/dom0/kernel"
        ])
    }
}
