//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombCrypto
import DombFDT
import DombLaunch
import DombTPM
import DombTestSupport
import Foundation
import Testing

/// A three-domain launch (xenstore domain, network driver domain, a PVH service with a vif
/// on the driver domain and a vbd on dom0) built into a signed bundle, then booted into a
/// real swtpm with the plan backend and an in-memory Xenstore.
final class BootFixture {
    let directory: TemporaryDirectory
    let bundle: String
    let publicKey: String
    let result: BundleBuildResult
    static let banks: [HashAlgorithm] = [.sha1, .sha256, .sha384, .sha512]

    /// - Parameter pcrKey: sign the PCR policy with this key (`pcr-policy.json`).
    init(generation: UInt64 = 5, moduleBytes: Int = 200_000, pcrKey: SigningKey? = nil) throws {
        directory = try TemporaryDirectory(prefix: "domb-boot")
        let key = directory.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        publicKey = directory.file("signer.pub.pem")
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", publicKey])
        for name in ["xs-kernel", "net-kernel", "net-initrd", "web-kernel"] {
            var bytes = [UInt8](repeating: 0, count: moduleBytes)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7 ^ name.utf8.count) }
            _ = try directory.write(name, bytes)
        }
        let spec = LaunchSpec(domains: [
            DomainSpec(
                name: "web", domid: 3, type: .pvh, memoryKiB: 262_144,
                modules: [ModuleSpec(kind: .kernel, path: "web-kernel", bootargs: "console=hvc0 root=/dev/xvda")],
                devices: [
                    try DeviceSpec(kind: .vif, backend: "netback", settings: ["mac": "00:16:3e:00:00:03"]),
                    try DeviceSpec(kind: .vbd, backend: "Domain-0", settings: ["target": "/dev/vg/web", "vdev": "xvda"]),
                ]),
            DomainSpec(
                name: "netback", domid: 2, type: .pv, memoryKiB: 131_072, isDriverDomain: true,
                modules: [ModuleSpec(kind: .kernel, path: "net-kernel", bootargs: "console=hvc0"), ModuleSpec(kind: .ramdisk, path: "net-initrd")]),
            DomainSpec(
                name: "xenstore", domid: 1, type: .pvh, memoryKiB: 65_536, capabilities: [.xenstore],
                modules: [ModuleSpec(kind: .kernel, path: "xs-kernel")]),
        ])
        let specPath = try directory.write("launch.json", String(decoding: try JSONEncoder().encode(spec), as: UTF8.self))
        bundle = directory.file("launch.bundle")
        // The modules are stand-in bytes, not kernels: the description is validated, its images are not.
        let builder = BundleBuilder(
            loader: LaunchFileLoader(checkImages: false), predictor: LaunchPredictor(), xenstorePlanner: LaunchXenstorePlanner())
        result = try builder.build(
            configuration: specPath,
            options: BundleBuildOptions(
                output: bundle, generation: generation, banks: Self.banks, sourceDateEpoch: 1_700_000_000,
                signing: .raw(key: try SigningKey(path: key)), pcrPolicySigning: pcrKey.map { PCRPolicySigningOptions(key: $0) }))
    }

    func trust() throws -> BundleTrustPolicy { .publicKey(try VerificationKey(path: publicKey)) }
}

/// An in-memory Xenstore that can be told to fail.
final class FakeXenstore: XenstoreWriting {
    var committed: [String: String] = [:]
    private var pending: [String: String] = [:]
    var failWrites = false

    func transactionStart() throws(XenstoreError) -> XenstoreTransaction {
        pending = committed
        return XenstoreTransaction(id: 1)
    }
    func transactionEnd(_ transaction: XenstoreTransaction, commit: Bool) throws(XenstoreError) -> Bool {
        if commit { committed = pending }
        return true
    }
    func write(_ path: String, _ value: [UInt8], in transaction: XenstoreTransaction) throws(XenstoreError) {
        if failWrites { throw XenstoreError(operation: "write", path: path, errno: 28, errnoName: "ENOSPC") }
        pending[path] = String(decoding: value, as: UTF8.self)
    }
    func read(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) -> [UInt8]? { pending[path].map { Array($0.utf8) } }
    func mkdir(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) { pending[path] = pending[path] ?? "" }
    func remove(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) {
        pending = pending.filter { !($0.key == path || $0.key.hasPrefix(path + "/")) }
    }
    /// The last permissions set on each path.
    var permissions: [String: [XenstorePermission]] = [:]
    func setPermissions(_ path: String, _ perms: [XenstorePermission], in transaction: XenstoreTransaction) throws(XenstoreError) {
        permissions[path] = perms
    }
    func introduceDomain(domid: UInt32, ringRef: UInt64, port: UInt32) throws(XenstoreError) {}
}

/// A sink that runs a hook before each event reaches the real sink (numbered from 1): to
/// fail the Nth event with an injected error, kill the TPM (swtpm) just before it, or send
/// a signal.
final class HookedSink: MeasurementSink {
    struct Injected: Error {}
    let inner: TPMMeasurementSink
    let before: (Int) throws -> Void
    private var count = 0
    init(_ inner: TPMMeasurementSink, before: @escaping (Int) throws -> Void) {
        self.inner = inner
        self.before = before
    }
    var banks: [HashAlgorithm] { inner.banks }
    var log: EventLog { inner.log }
    var logBytes: [UInt8] { inner.logBytes }
    func record(_ event: UnverifiedEvent) throws {
        count += 1
        try before(count)
        try inner.record(event)
    }
}

/// A builder that fails on a chosen domain and otherwise behaves like the plan backend.
final class FaultyBuilder: DomainBuilding {
    let inner = PlanBackend()
    var failBuildOf: String?
    var failUnpauseOf: String?
    var backendName: String { "faulty-plan" }
    func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain {
        if domain.name == failBuildOf { throw BootError.build(domain: domain.name, reason: "injected build failure") }
        return try inner.build(domain, images: images)
    }
    func unpause(_ domain: BuiltDomain) throws {
        if domain.name == failUnpauseOf { throw BootError.build(domain: domain.name, reason: "injected unpause failure") }
        try inner.unpause(domain)
    }
    func destroy(_ domain: BuiltDomain) throws { try inner.destroy(domain) }
    var unpaused: [String] {
        inner.actions.compactMap { if case .unpause(let name, _) = $0 { return name } else { return nil } }
    }
    var destroyed: [String] {
        inner.actions.compactMap { if case .destroy(let name, _) = $0 { return name } else { return nil } }
    }
}

func environment(
    _ tpm: TPM, builder: any DomainBuilding, xenstore: (any XenstoreWriting)?, sink: ((TPMMeasurementSink) -> any MeasurementSink)? = nil,
    devices: DeviceConnector? = nil
) -> BootEnvironment {
    BootEnvironment(
        makeSink: {
            let real = try TPMMeasurementSink(tpm: tpm, requiredBanks: [.sha256])
            return sink?(real) ?? real
        },
        readPCRs: { try tpm.readPCRs($0, banks: $1) }, activeBanks: { try tpm.activeBanks() }, builder: builder,
        xenstore: xenstore, introduceDomains: true, devices: devices)
}

@Suite struct BootFlowTests {
    @Test func bootMatchesPredictionInEveryBankAndTheLogReplays() throws {
        let fixture = try BootFixture()
        let log = fixture.directory.file("eventlog.bin")
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let builder = PlanBackend()
            let store = FakeXenstore()
            let report = try BootFlow.run(
                bundle: fixture.bundle, options: BootOptions(trust: try fixture.trust(), eventLogPath: log),
                environment: environment(tpm, builder: builder, xenstore: store))
            let bootCommands = tpm.commandCount
            #expect(report.startOrder == ["xenstore", "netback", "web"])
            #expect(report.matchesPrediction, "the log written is the bundle's predicted log, byte for byte")
            #expect(report.xenstoreNodes > 0)
            #expect(store.committed["/local/domain/3/device/vif/0/backend"] == "/local/domain/2/backend/vif/3/0")
            // Built paused first, then unpaused in dependency order.
            let kinds = builder.actions.map { action -> String in
                switch action {
                case .build(let name, _, _, _, _, _, _): "build \(name)"
                case .unpause(let name, _): "unpause \(name)"
                case .destroy(let name, _): "destroy \(name)"
                }
            }
            #expect(kinds == ["build xenstore", "build netback", "build web", "unpause xenstore", "unpause netback", "unpause web"])

            // The TPM holds exactly the predicted PCRs in every bank.
            let predicted = fixture.result.manifest.predictedPCRs
            let banks = try tpm.activeBanks()
            #expect(Set(banks) == Set(BootFixture.banks))
            let actual = try tpm.readPCRs([12, 13], banks: banks)
            for bank in banks {
                for pcr in [12, 13] {
                    #expect(actual[bank, pcr] == predicted[bank, pcr], "\(bank) PCR \(pcr)")
                }
            }
            // One TPM2_PCR_Extend per event, plus a fixed handful (banks, PCR reads).
            let events = try EventLog(parsing: try [UInt8](Data(contentsOf: URL(fileURLWithPath: log))), strict: true)
            let extended = events.events.filter(\.isExtended).count
            // Fixed: two capability queries (banks, before and after the bundle is read), one
            // PCR_Read per bank to check the launch PCRs are untouched, and one per bank to
            // read them back after the separators (they must equal the log's replay).
            #expect(bootCommands == extended + 2 + 2 * banks.count, "\(bootCommands) commands for \(extended) extends")
            tpm.close()

            // tpm2_eventlog agrees with the TPM and prints no warning.
            let tools = try Tools.run("tpm2_eventlog", [log])
            #expect(!tools.stderrText.contains("WARN"), "\(tools.stderrText)")
            let pcrread = fixture.directory.file("pcrs.bin")
            try Tools.run("tpm2_pcrread", ["-T", swtpm.tcti, "sha256:12,13", "-o", pcrread], environment: ["TSS2_LOG": "all+none"])
            let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pcrread)))
            #expect(raw == (predicted[.sha256, 12] ?? []) + (predicted[.sha256, 13] ?? []))
        }
    }

    @Test(arguments: ["module", "signature", "generation", "missing"])
    func refusedBeforeAnyPCRIsExtended(tamper: String) throws {
        let fixture = try BootFixture()
        var minimumGeneration: UInt64 = 0
        switch tamper {
        case "module":
            // Flip one byte inside a module's data in the archive.
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.bundle)))
            let needle = Array("modules/web/kernel".utf8)
            let header = try #require(bytes.firstRange(of: needle)).lowerBound
            bytes[header + 512 + 1000] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: fixture.bundle))
        case "signature":
            let other = try BootFixture()
            _ = other
            try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", fixture.directory.file("other.pem")])
            try Tools.run("openssl", ["pkey", "-in", fixture.directory.file("other.pem"), "-pubout", "-out", fixture.publicKey])
        case "generation":
            minimumGeneration = 6
        default:
            try FileManager.default.removeItem(atPath: fixture.bundle)
        }
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let builder = PlanBackend()
            do {
                _ = try BootFlow.run(
                    bundle: fixture.bundle,
                    options: BootOptions(
                        trust: try fixture.trust(), minimumGeneration: minimumGeneration,
                        eventLogPath: fixture.directory.file("eventlog.bin")),
                    environment: environment(tpm, builder: builder, xenstore: FakeXenstore()))
                Issue.record("a \(tamper) bundle was launched")
            } catch let failure as BootFailure {
                #expect(failure.stage == .verify)
                #expect(failure.eventsExtended == 0)
                let expected = ["module": "digest", "signature": "signature", "generation": "rollback", "missing": "launch.bundle"][tamper] ?? ""
                #expect(failure.description.contains(expected), "\(failure)")
            }
            #expect(builder.actions.isEmpty, "nothing was built")
            let pcrs = try tpm.readPCRs([12, 13], banks: [.sha256])
            #expect(pcrs[.sha256, 12] == [UInt8](repeating: 0, count: 32))
            #expect(pcrs[.sha256, 13] == [UInt8](repeating: 0, count: 32))
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("eventlog.bin")))
        }
    }

    @Test(arguments: ["build", "xenstore", "unpause", "tpm-error", "tpm-killed"])
    func faultsStopBeforeAnythingRunsAndTheLogMatchesThePCRs(fault: String) throws {
        let fixture = try BootFixture()
        let logPath = fixture.directory.file("eventlog.bin")
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let builder = FaultyBuilder()
            let store = FakeXenstore()
            var sinkWrapper: ((TPMMeasurementSink) -> any MeasurementSink)?
            switch fault {
            case "build": builder.failBuildOf = "web"
            case "xenstore": store.failWrites = true
            case "unpause": builder.failUnpauseOf = "netback"
            case "tpm-error":
                sinkWrapper = { HookedSink($0) { if $0 == 4 { throw HookedSink.Injected() } } }
            default:
                // The real sink then talks to a dead TPM and must fail.
                sinkWrapper = { HookedSink($0) { if $0 == 4 { swtpm.stop() } } }
            }
            do {
                _ = try BootFlow.run(
                    bundle: fixture.bundle, options: BootOptions(trust: try fixture.trust(), eventLogPath: logPath),
                    environment: environment(tpm, builder: builder, xenstore: store, sink: sinkWrapper))
                Issue.record("the launch went on after a \(fault) fault")
            } catch let failure as BootFailure {
                // Nothing was unpaused except where the unpause step itself failed part-way,
                // and everything built was destroyed.
                if fault == "unpause" {
                    #expect(builder.unpaused == ["xenstore"])
                } else {
                    #expect(builder.unpaused.isEmpty)
                }
                let built = builder.inner.actions.filter { if case .build = $0 { return true } else { return false } }.count
                #expect(builder.destroyed.count == built, "\(failure)")
                #expect(store.committed.isEmpty || fault == "unpause")
                #expect(!failure.description.isEmpty)
            }
            // The log on disk holds exactly what reached the TPM.
            let log = try EventLog(parsing: try [UInt8](Data(contentsOf: URL(fileURLWithPath: logPath))), strict: true)
            if fault.hasPrefix("tpm") {
                #expect(log.events.filter(\.isExtended).count == 3, "the three events before the fault")
            }
            if swtpm.isRunning {
                let replayed = try log.replay(using: OpenSSLPCRHasher())
                let actual = try tpm.readPCRs([12, 13], banks: [.sha256])
                for pcr in [12, 13] {
                    #expect(replayed[.sha256, pcr] ?? [UInt8](repeating: 0, count: 32) == actual[.sha256, pcr], "PCR \(pcr)")
                }
            }
        }
    }
}
