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

/// Test doubles for the builder's seams whose real implementations live on other
/// branches; the archive, hashing and signing they feed are real.
struct FixtureLoader: LaunchSpecLoading {
    var launch: LoadedLaunch
    func load(configuration path: String) throws -> LoadedLaunch { launch }
}

/// Predicts PCR 13 by extending each module's digest in software (PCR_new = H(PCR_old ||
/// digest)) and writes a simple stand-in "log" of the digests.
struct SoftwarePredictor: MeasurementPredicting {
    func predict(_ input: PredictionInput) throws -> Prediction {
        var pcrs = PCRValues()
        var log: [UInt8] = Array("domb test log\n".utf8)
        let pcr = input.pcrPolicy.pcrs.image
        for bank in input.banks {
            var value = [UInt8](repeating: 0, count: bank.digestSize ?? 32)
            for module in input.modules {
                value = try MultiHasher.digest(value + (module.digests[bank] ?? []), algorithms: [bank])[bank] ?? []
            }
            pcrs[bank, pcr] = value
        }
        for module in input.modules {
            log += Array("\(module.domain)/\(module.role) \(module.digests)\n".utf8)
        }
        return Prediction(eventLog: log, pcrs: pcrs)
    }
}

struct FixturePlanner: XenstorePlanning {
    func plan(for spec: LaunchSpec) throws -> [UInt8] {
        JSONValue.object(["domains": .array(spec.domains.map { .string($0.name) })]).canonicalBytes
    }
}

/// A three-domain launch with real files on disk.
final class BundleFixture: @unchecked Sendable {
    let directory: TemporaryDirectory
    let pki: TestPKI
    let spec: LaunchSpec
    let dtb: [UInt8]

    /// Deterministic bytes, different per seed.
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    init(kernelSeed: UInt64 = 1) throws {
        pki = try TestPKI.shared()
        directory = try TemporaryDirectory(prefix: "domb-bundle")
        _ = try directory.write("dom0-kernel", Self.bytes(300_000, seed: kernelSeed))
        _ = try directory.write("dom0-initrd", Self.bytes(100_000, seed: 2))
        _ = try directory.write("guest-kernel", Self.bytes(70_000, seed: 3))
        _ = try directory.write("driver-kernel", Self.bytes(50_000, seed: 4))
        _ = try directory.write("driver-config", "backend=net\n")
        spec = LaunchSpec(domains: [
            DomainSpec(
                name: "dom0", type: .pvh, memoryKiB: 1 << 20, capabilities: [.control, .hardware, .xenstore],
                modules: [ModuleSpec(kind: .kernel, path: "dom0-kernel", bootargs: "console=hvc0"),
                          ModuleSpec(kind: .ramdisk, path: "dom0-initrd")]),
            DomainSpec(name: "guest1", type: .pv, memoryKiB: 256 << 10, modules: [ModuleSpec(kind: .kernel, path: "guest-kernel")]),
            DomainSpec(
                name: "netdrv", type: .pvh, memoryKiB: 128 << 10,
                modules: [ModuleSpec(kind: .kernel, path: "driver-kernel"), ModuleSpec(kind: .config, path: "driver-config")]),
        ])
        // The launch DTB as the builder emits it: module nodes name their bundle members
        // (bundle verification checks the two agree).
        var rebased = spec
        for index in rebased.domains.indices {
            let domain = rebased.domains[index]
            for (position, role) in BundleLayout.moduleRoles(domain.modules.map(\.kind)).enumerated() {
                rebased.domains[index].modules[position].path = BundleLayout.modulePath(domain: domain.name, role: role)
            }
        }
        dtb = try LaunchEncoder.dtb(rebased)
    }

    var builder: BundleBuilder {
        BundleBuilder(
            loader: FixtureLoader(launch: LoadedLaunch(spec: spec, launchDTB: dtb, baseDirectory: directory.path)),
            predictor: SoftwarePredictor(), xenstorePlanner: FixturePlanner())
    }

    func cmsSigning(_ name: String) throws -> BundleSigning {
        let certificate = try X509Certificate.load(path: pki.certificate(name))
        guard let leaf = certificate.first else { throw CryptoError("fixture", "no certificate") }
        return .cms(key: try SigningKey(path: pki.key(name)), certificate: leaf, chain: [])
    }

    func rawSigning(_ name: String) throws -> BundleSigning { .raw(key: try SigningKey(path: pki.key(name))) }

    /// Builds `name.tar` in the fixture directory.
    @discardableResult
    func build(
        _ name: String, signing: BundleSigning, generation: UInt64 = 5, epoch: Int64 = 1_700_000_000,
        banks: [HashAlgorithm] = [.sha1, .sha256, .sha384], allowUnusableCertificate: Bool = false
    ) throws -> String {
        let output = directory.file(name)
        _ = try builder.build(
            configuration: "fixture",
            options: BundleBuildOptions(
                output: output, generation: generation, banks: banks, sourceDateEpoch: epoch, signing: signing,
                allowUnusableCertificate: allowUnusableCertificate))
        return output
    }
}

/// Every member of an archive, in order.
func archiveMembers(_ path: String) throws -> [(String, [UInt8])] {
    let reader = try TarReader(path: path, policy: BundleVerifier.readPolicy)
    var members: [(String, [UInt8])] = []
    while let member = try reader.next() { members.append((member.path, try reader.readAll(limit: 64 << 20))) }
    return members
}

/// Writes members as a new (well-formed) archive.
func writeArchive(_ path: String, _ members: [(String, [UInt8])]) throws {
    let writer = try TarWriter(path: path, modificationTime: 1_700_000_000)
    for (name, bytes) in members { try writer.add(name, bytes: bytes) }
    try writer.commit()
}
