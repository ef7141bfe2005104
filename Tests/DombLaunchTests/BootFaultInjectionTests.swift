//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombCrypto
import DombFiles
import DombLaunch
import DombTPM
import DombTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A point of the launch where a fault is injected. Events are numbered from 1 in log
/// order; the last two are the separators (PCR 12, PCR 13).
enum LaunchPoint: Hashable, Sendable, CustomTestStringConvertible {
    case verify
    case beforeMeasure
    case extend(Int)
    case build(String)
    case xenstore
    case readBack
    case secrets
    case unpause(String)

    var testDescription: String {
        switch self {
        case .verify: "verify"
        case .beforeMeasure: "before measure"
        case .extend(let n): "extend #\(n)\(n > BootFaultInjectionTests.measurements ? " (separator)" : "")"
        case .build(let name): "build \(name)"
        case .xenstore: "xenstore"
        case .readBack: "PCR read-back"
        case .secrets: "secrets"
        case .unpause(let name): "unpause \(name)"
        }
    }

    /// Every point of the fixture's launch, in the order the launch reaches them.
    static var all: [LaunchPoint] {
        [.verify, .beforeMeasure]
            + (1...BootFaultInjectionTests.measurements).map(LaunchPoint.extend)
            + BootFaultInjectionTests.startOrder.map(LaunchPoint.build)
            + [.xenstore]
            + (1...2).map { .extend(BootFaultInjectionTests.measurements + $0) }
            + [.readBack, .secrets]
            + BootFaultInjectionTests.startOrder.map(LaunchPoint.unpause)
    }
}

/// What happens at the point: the step fails, or a signal arrives while it runs.
enum Injection: Sendable {
    case fail
    case signal(Int32)
    case run(@Sendable () throws -> Void)
}

struct Injected: Error, CustomStringConvertible {
    var point: LaunchPoint
    var description: String { "injected failure at \(point.testDescription)" }
}

/// Hooks on every seam of the boot flow; each fires the injection when its point is reached.
final class FaultInjector: @unchecked Sendable {
    let point: LaunchPoint
    let injection: Injection
    private(set) var fired = false
    private var readCalls = 0

    init(at point: LaunchPoint, _ injection: Injection) {
        self.point = point
        self.injection = injection
    }

    func reach(_ here: LaunchPoint) throws {
        guard here == point, !fired else { return }
        fired = true
        switch injection {
        case .fail:
            throw Injected(point: here)
        case .signal(let signal):
            LaunchSignalsTesting.raise(signal)
        case .run(let body):
            try body()
        }
    }

    func readPCRs() throws {
        readCalls += 1
        try reach(readCalls == 1 ? .beforeMeasure : .readBack)
    }
}

/// Raises a real signal at this thread (the launch's) and waits for domb's handler to
/// record it. Not at the process: a process-directed signal lands on any thread, and the
/// suite's other tests, running in parallel, have Foundation reads in flight that a signal
/// cuts short with EINTR (`poll` is never restarted), which Foundation's FileHandle turns
/// into a crash (`try!` in FileHandle.swift).
enum LaunchSignalsTesting {
    static func raise(_ signal: Int32) {
        LaunchSignals.install()
        pthread_kill(pthread_self(), signal)
        for _ in 0..<1000 where LaunchSignals.pending == nil { usleep(1000) }
    }
}

/// The plan backend behind the injector.
final class InjectingBuilder: DomainBuilding {
    let inner = PlanBackend()
    let injector: FaultInjector
    init(_ injector: FaultInjector) { self.injector = injector }
    var backendName: String { "plan" }
    func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain {
        try injector.reach(.build(domain.name))
        return try inner.build(domain, images: images)
    }
    func unpause(_ domain: BuiltDomain) throws {
        try injector.reach(.unpause(domain.name))
        try inner.unpause(domain)
    }
    func destroy(_ domain: BuiltDomain) throws { try inner.destroy(domain) }

    private func names(_ pick: (PlanAction) -> String?) -> [String] { inner.actions.compactMap(pick) }
    var built: [String] { names { if case .build(let name, _, _, _, _, _, _) = $0 { name } else { nil } } }
    var unpaused: [String] { names { if case .unpause(let name, _) = $0 { name } else { nil } } }
    var destroyed: [String] { names { if case .destroy(let name, _) = $0 { name } else { nil } } }
}

/// An in-memory Xenstore whose first write reaches `.xenstore`.
final class InjectingXenstore: XenstoreWriting {
    let inner = FakeXenstore()
    let injector: FaultInjector
    init(_ injector: FaultInjector) { self.injector = injector }
    func transactionStart() throws(XenstoreError) -> XenstoreTransaction { try inner.transactionStart() }
    func transactionEnd(_ transaction: XenstoreTransaction, commit: Bool) throws(XenstoreError) -> Bool {
        try inner.transactionEnd(transaction, commit: commit)
    }
    func write(_ path: String, _ value: [UInt8], in transaction: XenstoreTransaction) throws(XenstoreError) {
        do {
            try injector.reach(.xenstore)
        } catch {
            throw XenstoreError(operation: "write", path: path, errno: 5, errnoName: "EIO")
        }
        try inner.write(path, value, in: transaction)
    }
    func read(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) -> [UInt8]? {
        try inner.read(path, in: transaction)
    }
    func mkdir(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) { try inner.mkdir(path, in: transaction) }
    func remove(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) { try inner.remove(path, in: transaction) }
    func setPermissions(_ path: String, _ perms: [XenstorePermission], in transaction: XenstoreTransaction) throws(XenstoreError) {
        try inner.setPermissions(path, perms, in: transaction)
    }
    func introduceDomain(domid: UInt32, ringRef: UInt64, port: UInt32) throws(XenstoreError) {
        try inner.introduceDomain(domid: domid, ringRef: ringRef, port: port)
    }
}

/// One launch of the shared fixture bundle into a fresh swtpm with a fault injected, and
/// the outcome checked against independent oracles: the plan backend's actions, the TPM's
/// PCRs (tpm2-tss reads of swtpm) and the log file on disk.
struct InjectedLaunch {
    let tpm: TPM
    let builder: InjectingBuilder
    let store: InjectingXenstore
    let result: Result<BootReport, BootFailure>
    let logPath: String

    init(
        fixture: BootFixture, swtpm: Swtpm, injector: FaultInjector, logPath: String, lockPath: String? = nil,
        interruptible: Bool = false
    ) throws {
        let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
        self.tpm = tpm
        builder = InjectingBuilder(injector)
        store = InjectingXenstore(injector)
        self.logPath = logPath
        let environment = BootEnvironment(
            makeSink: { HookedSink(try TPMMeasurementSink(tpm: tpm, requiredBanks: [.sha256])) { try injector.reach(.extend($0)) } },
            readPCRs: { pcrs, banks in
                try injector.readPCRs()
                return try tpm.readPCRs(pcrs, banks: banks)
            },
            activeBanks: {
                try injector.reach(.verify)
                return try tpm.activeBanks()
            },
            builder: builder, xenstore: store, introduceDomains: true,
            interruption: interruptible ? { LaunchSignals.pending } : { nil },
            beforeUnpause: { _ in
                try injector.reach(.secrets)
                return nil
            })
        do {
            result = .success(
                try BootFlow.run(
                    bundle: fixture.bundle,
                    options: BootOptions(trust: try fixture.trust(), eventLogPath: logPath, lockPath: lockPath),
                    environment: environment))
        } catch let failure as BootFailure {
            result = .failure(failure)
        }
    }

    var failure: BootFailure? { if case .failure(let failure) = result { failure } else { nil } }

    /// The log a person finds afterwards: at the destination, or where the failure says it was kept.
    func logOnDisk() throws -> EventLog? {
        var path = logPath
        if let failure {
            for step in failure.record.steps {
                if case .logKept(let temporary, _, _, _) = step { path = temporary }
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
        return try EventLog(parsing: try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))), strict: true)
    }

    /// The acceptance checks: nothing unpaused unless the launch reported success (or the
    /// unpause step itself failed part-way, in which case what ran is destroyed and named);
    /// every built domain destroyed after a failure; the PCRs equal the replay of the log on
    /// disk; the message states exactly what ran.
    func checkFailClosed(_ context: String, pcrsMatchLog: Bool = true) throws {
        let log = try logOnDisk()
        // PCRs (swtpm) against the log on disk (no log: the reset values).
        let banks = try tpm.activeBanks()
        let actual = try tpm.readPCRs([12, 13], banks: banks)
        let replayed = try log?.replay(using: OpenSSLPCRHasher()) ?? PCRValues()
        if pcrsMatchLog {
            for bank in banks {
                for pcr in [12, 13] {
                    #expect(actual[bank, pcr] == replayed[bank, pcr] ?? PCRValues.initialValue(bank, pcr: pcr), "\(context): \(bank) PCR \(pcr)")
                }
            }
        }
        switch result {
        case .success(let report):
            #expect(builder.unpaused == report.startOrder, "\(context)")
            #expect(builder.destroyed.isEmpty, "\(context)")
            #expect(log?.events.count == report.events, "\(context)")
        case .failure(let failure):
            let summary = failure.record.summary
            let text = failure.description
            // Unpaused: only by a failing unpause step, and then destroyed again.
            #expect(failure.unpaused == builder.unpaused, "\(context)")
            if failure.stage != .unpause { #expect(builder.unpaused.isEmpty, "\(context): \(text)") }
            #expect(summary.contains("no domain was unpaused") == builder.unpaused.isEmpty, "\(context): \(text)")
            // Everything built was destroyed, and the message says so.
            #expect(Set(builder.destroyed) == Set(builder.built), "\(context): \(text)")
            #expect(failure.tornDown == builder.destroyed, "\(context)")
            if !builder.built.isEmpty {
                #expect(summary.contains { $0.hasPrefix("built ") && builder.built.allSatisfy($0.contains) }, "\(context): \(text)")
                #expect(summary.contains("destroyed: \(builder.destroyed.joined(separator: ", "))"), "\(context): \(text)")
            } else {
                #expect(!summary.contains { $0.hasPrefix("built ") }, "\(context): \(text)")
            }
            // Events: what the message says was extended is what the TPM and the log hold.
            let extended = log?.events.count ?? 0
            #expect(failure.eventsExtended == extended, "\(context): \(text)")
            if extended == 0 {
                #expect(summary.contains("no PCR was extended"), "\(context): \(text)")
            } else {
                #expect(summary.contains { $0.hasPrefix("extended \(extended) event(s)") }, "\(context): \(text)")
                #expect(summary.contains { $0.contains("exactly the \(extended) event(s) extended") || $0.contains("the log of the \(extended) event(s) extended is kept") }, "\(context): \(text)")
            }
        }
    }
}

/// A fault at every step of `domb boot`, and SIGTERM/SIGINT at every step: afterwards no
/// domain was unpaused unless success was reported, the PCRs equal the replay of the log on
/// disk, and the message says exactly what ran.
@Suite(.serialized) struct BootFaultInjectionTests {
    /// The fixture's measurements (before the two separators) and start order.
    static let measurements = 8
    static let startOrder = ["xenstore", "netback", "web"]

    nonisolated(unsafe) static let fixture: Result<BootFixture, any Error> = Result { try BootFixture() }

    @Test func theFixtureHasTheShapeTheseTestsAssume() throws {
        let fixture = try Self.fixture.get()
        let predicted = try EventLog(parsing: try #require(fixture.result.manifest.predictedEventLog.map { _ in
            try BundleTestFiles.member(BundleLayout.predictedEventLog, of: fixture.bundle)
        }), strict: true)
        #expect(predicted.events.count == Self.measurements + 2)
        #expect(predicted.events.suffix(2).allSatisfy { $0.type == .separator })
    }

    @Test(arguments: LaunchPoint.all)
    func aFailureAtAnyStepLeavesNothingRunningAndTheLogMatchingThePCRs(point: LaunchPoint) throws {
        let fixture = try Self.fixture.get()
        let directory = try TemporaryDirectory()
        try Swtpm.with { swtpm in
            let launch = try InjectedLaunch(
                fixture: fixture, swtpm: swtpm, injector: FaultInjector(at: point, .fail), logPath: directory.file("eventlog.bin"))
            let failure = try #require(launch.failure, "a failure at \(point.testDescription) was not reported")
            #expect(failure.reason.contains("injected failure at \(point.testDescription)") || point == .xenstore, "\(failure)")
            try launch.checkFailClosed(point.testDescription)
            // The stage named is the step that failed.
            let stage: BootStage =
                switch point {
                case .verify: .verify
                case .beforeMeasure: .measure
                case .extend(let n): n > Self.measurements ? .separators : .measure
                case .build: .build
                case .xenstore: .xenstore
                case .readBack: .checkPCRs
                case .secrets: .secrets
                case .unpause: .unpause
                }
            #expect(failure.stage == stage)
        }
    }

    @Test(arguments: [SIGTERM, SIGINT], LaunchPoint.all)
    func aSignalAtAnyStepStopsAtTheNextBoundaryOrCompletesAfterTheCommitPoint(signal: Int32, point: LaunchPoint) throws {
        let fixture = try Self.fixture.get()
        let directory = try TemporaryDirectory()
        LaunchSignals.reset()
        defer { LaunchSignals.reset() }
        try Swtpm.with { swtpm in
            let launch = try InjectedLaunch(
                fixture: fixture, swtpm: swtpm, injector: FaultInjector(at: point, .signal(signal)),
                logPath: directory.file("eventlog.bin"), interruptible: true)
            try launch.checkFailClosed("\(LaunchSignals.name(signal)) at \(point.testDescription)")
            if case .unpause = point {
                // Past the commit point: the launch completes and says the signal came late.
                let report = try launch.result.get()
                #expect(report.notes.contains { $0.contains("\(LaunchSignals.name(signal)) arrived while the domains were being started") })
            } else {
                let failure = try #require(launch.failure)
                #expect(failure.signal == signal)
                #expect(failure.reason == "interrupted by \(LaunchSignals.name(signal))")
                #expect(failure.description.contains("interrupted by \(LaunchSignals.name(signal))"))
            }
        }
    }

    @Test(arguments: ["directory", "read-only", "full"])
    func aLogDestinationThatCannotHoldTheLogIsRefusedBeforeAnythingIsExtended(kind: String) throws {
        let fixture = try Self.fixture.get()
        let filesystem = try SmallFileSystem(kibibytes: 64)
        let logPath = filesystem.file("eventlog.bin")
        switch kind {
        case "directory": try FileManager.default.createDirectory(atPath: logPath, withIntermediateDirectories: false)
        case "read-only": try filesystem.remountReadOnly()
        default: try filesystem.fill()
        }
        try Swtpm.with { swtpm in
            let launch = try InjectedLaunch(
                fixture: fixture, swtpm: swtpm, injector: FaultInjector(at: .verify, .run({})), logPath: logPath)
            let failure = try #require(launch.failure)
            #expect(failure.stage == .logDestination, "\(failure)")
            #expect(failure.eventsExtended == 0)
            let expected = ["directory": "is a directory", "read-only": "Read-only file system", "full": "No space left on device"][kind] ?? ""
            #expect(failure.reason.contains(expected), "\(failure)")
            #expect(launch.builder.built.isEmpty)
            try launch.checkFailClosed(kind)
        }
    }

    @Test func aLogTargetReplacedDuringTheLaunchKeepsTheLogAndRunsNothing() throws {
        let fixture = try Self.fixture.get()
        let directory = try TemporaryDirectory()
        let logPath = directory.file("eventlog.bin")
        try Swtpm.with { swtpm in
            // While the domains are built, the destination turns into a directory.
            let injector = FaultInjector(at: .build("web"), .run({ try FileManager.default.createDirectory(atPath: logPath, withIntermediateDirectories: false) }))
            let launch = try InjectedLaunch(fixture: fixture, swtpm: swtpm, injector: injector, logPath: logPath)
            let failure = try #require(launch.failure)
            #expect(failure.stage == .writeLog, "\(failure)")
            #expect(failure.reason.contains("is a directory"))
            #expect(failure.eventsExtended == Self.measurements + 2, "separators were extended before the log write")
            #expect(failure.record.summary.contains { $0.contains("is kept at \(directory.path)/.eventlog.bin.tmp.") }, "\(failure)")
            try launch.checkFailClosed("log target replaced")
        }
    }

    @Test func aFileSystemThatFillsDuringTheLaunchStillGetsTheLog() throws {
        let fixture = try Self.fixture.get()
        let filesystem = try SmallFileSystem(kibibytes: 64)
        try Swtpm.with { swtpm in
            let injector = FaultInjector(at: .build("netback"), .run({ try filesystem.fill() }))
            let launch = try InjectedLaunch(fixture: fixture, swtpm: swtpm, injector: injector, logPath: filesystem.file("eventlog.bin"))
            let report = try launch.result.get()
            #expect(report.matchesPrediction)
            try launch.checkFailClosed("file system filled")
        }
    }

    @Test func anotherExtendDuringTheLaunchIsFoundWhenThePCRsAreReadBack() throws {
        let fixture = try Self.fixture.get()
        let directory = try TemporaryDirectory()
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            // Someone else extends PCR 13 between two of the launch's events.
            let injector = FaultInjector(at: .build("xenstore"), .run({
                try tpm.extend(pcr: 13, digests: try MultiHasher.digest(Array("intruder".utf8), algorithms: try tpm.activeBanks()))
            }))
            let launch = try InjectedLaunch(fixture: fixture, swtpm: swtpm, injector: injector, logPath: directory.file("eventlog.bin"))
            let failure = try #require(launch.failure)
            #expect(failure.stage == .checkPCRs, "\(failure)")
            #expect(failure.reason.contains("PCR 13 (sha256) holds"))
            #expect(failure.reason.contains("something else extended the launch PCRs"))
            #expect(launch.builder.unpaused.isEmpty)
            try launch.checkFailClosed("intruder", pcrsMatchLog: false)
        }
    }

    @Test func aSecondLaunchOnTheSameTPMIsRefusedBeforeItExtendsAnything() throws {
        let fixture = try Self.fixture.get()
        let directory = try TemporaryDirectory()
        try Swtpm.with { swtpm in
            let lockPath = LaunchLock.path(directory: directory.path, tpm: try TCTIConfiguration(parsing: swtpm.tcti))
            // The first launch holds the lock (in another process it is the same flock).
            let held = try FileLock(path: lockPath)
            let launch = try InjectedLaunch(
                fixture: fixture, swtpm: swtpm, injector: FaultInjector(at: .verify, .run({})),
                logPath: directory.file("second.bin"), lockPath: lockPath)
            let failure = try #require(launch.failure)
            #expect(failure.stage == .lock)
            #expect(failure.reason.contains("held by another process (pid \(getpid()))"), "\(failure)")
            #expect(failure.eventsExtended == 0)
            try launch.checkFailClosed("lock held")
            held.release()
            // Released, the launch goes through.
            let again = try InjectedLaunch(
                fixture: fixture, swtpm: swtpm, injector: FaultInjector(at: .verify, .run({})),
                logPath: directory.file("first.bin"), lockPath: lockPath)
            _ = try again.result.get()
        }
    }
}

/// Reads one member of a bundle with tar (an independent reader).
enum BundleTestFiles {
    static func member(_ name: String, of bundle: String) throws -> [UInt8] {
        try Tools.run("tar", ["-xOf", bundle, name]).stdout
    }
}
