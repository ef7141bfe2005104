//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombFiles
import DombModel
import Foundation

/// The stages of a launch, in order (DESIGN.md decision 9). Everything up to and including
/// ``secrets`` can fail and leaves no domain running; ``unpause`` is the commit point.
/// ``backends`` happens while domains start (a driver domain runs before the backends it
/// serves can be ready) and ``connect`` once they run: failures there tear down domains
/// that ran, and say so.
public enum BootStage: String, Sendable, CaseIterable {
    case verify = "verifying the bundle"
    case lock = "taking the launch lock"
    case logDestination = "checking the event-log destination"
    case measure = "measuring"
    case build = "building domains"
    case xenstore = "writing Xenstore"
    case devices = "setting up device backends"
    case separators = "extending the separators"
    case writeLog = "writing the event log"
    case checkPCRs = "comparing the PCRs with the log"
    case secrets = "releasing secrets"
    case unpause = "starting domains"
    case backends = "waiting for a driver domain's backends"
    case connect = "waiting for devices to connect"
}

/// Why a launch stopped, and what ran: rendered from the ``LaunchRecord`` of completed
/// steps, so it can only state what was done. Encodes as `domb boot --json` prints it.
public struct BootFailure: Error, CustomStringConvertible, Sendable, Encodable {
    public var stage: BootStage
    public var reason: String
    public var record: LaunchRecord
    /// The signal that stopped the launch, when one did.
    public var signal: Int32?

    /// Events that reached the TPM before the launch stopped.
    public var eventsExtended: Int { record.extended.count }
    /// Domains that were built and then destroyed.
    public var tornDown: [String] { record.destroyed.map(\.name) }
    /// Domains that were unpaused (ran) before the failure.
    public var unpaused: [String] { record.unpaused.map(\.name) }

    public var description: String {
        "launch refused while \(stage.rawValue): \(reason)\nwhat ran:\n" + record.summary.map { "  - \($0)" }.joined(separator: "\n")
    }

    private enum CodingKeys: String, CodingKey {
        case result, stage, reason, eventsExtended, tornDown, unpaused, whatRan, signal
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("refused", forKey: .result)
        try container.encode(stage.rawValue, forKey: .stage)
        try container.encode(reason, forKey: .reason)
        try container.encode(eventsExtended, forKey: .eventsExtended)
        try container.encode(tornDown, forKey: .tornDown)
        try container.encode(unpaused, forKey: .unpaused)
        try container.encode(record.summary, forKey: .whatRan)
        try container.encodeIfPresent(signal.map(LaunchSignals.name), forKey: .signal)
    }
}

/// A launch stopped by SIGTERM or SIGINT at a step boundary.
public struct LaunchInterrupted: Error, CustomStringConvertible, Sendable {
    public var signal: Int32
    public var description: String { "interrupted by \(LaunchSignals.name(signal))" }
}

/// What a successful launch did (`domb boot --json` prints it).
public struct BootReport: Sendable, Encodable {
    public var bundle: String
    public var generation: UInt64
    public var signer: String
    public var backend: String
    public var banks: [HashAlgorithm]
    public var events: Int
    public var domains: [BuiltDomain]
    public var startOrder: [String]
    public var xenstoreNodes: Int
    /// PCR values the launch left, per bank, as read back from the TPM (equal to the
    /// log's replay: the launch checks that before it unpauses anything).
    public var pcrs: PCRValues
    /// Whether the log written equals the bundle's predicted log byte for byte (true
    /// whenever the TPM's active banks are the bundle's banks).
    public var matchesPrediction: Bool
    /// Whether every PCR value the bundle predicts, in the banks both the bundle and the
    /// TPM have, is the value read back: also true on a TPM whose banks are not the
    /// bundle's, where the log cannot equal the predicted one byte for byte.
    public var matchesPredictedPCRs: Bool = false
    public var eventLogPath: String?
    public var record: LaunchRecord
    /// Things to know that did not stop the launch (a signal after the commit point).
    public var notes: [String] = []
    /// TPM commands sent, when the caller counted them.
    public var tpmCommands: Int?
    /// Domains left paused (`domb,paused`).
    public var leftPaused: [String] = []
    /// PV devices whose both ends reached `XenbusStateConnected` (none without a
    /// ``BootEnvironment/devices`` connector).
    public var devicesConnected = 0
    /// What `--supervise` needs to carry out the lifecycle actions.
    public var session: LaunchSession

    private enum CodingKeys: String, CodingKey {
        case result, bundle, generation, signer, backend, banks, events, domains, startOrder, leftPaused, devicesConnected, xenstoreNodes, pcrs
        case matchesPrediction, matchesPredictedPCRs, eventLog, notes, tpmCommands, whatRan
    }

    private struct Domain: Encodable {
        var name: String
        var domid: UInt32
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("launched", forKey: .result)
        try container.encode(bundle, forKey: .bundle)
        try container.encode(generation, forKey: .generation)
        try container.encode(signer, forKey: .signer)
        try container.encode(backend, forKey: .backend)
        try container.encode(banks.map(\.name), forKey: .banks)
        try container.encode(events, forKey: .events)
        try container.encode(domains.map { Domain(name: $0.name, domid: $0.domid) }, forKey: .domains)
        try container.encode(startOrder, forKey: .startOrder)
        try container.encode(leftPaused, forKey: .leftPaused)
        try container.encode(devicesConnected, forKey: .devicesConnected)
        try container.encode(xenstoreNodes, forKey: .xenstoreNodes)
        try container.encode(pcrs.goldenDictionary, forKey: .pcrs)
        try container.encode(matchesPrediction, forKey: .matchesPrediction)
        try container.encode(matchesPredictedPCRs, forKey: .matchesPredictedPCRs)
        try container.encode(eventLogPath ?? "", forKey: .eventLog)
        try container.encode(notes, forKey: .notes)
        try container.encodeIfPresent(tpmCommands, forKey: .tpmCommands)
        try container.encode(record.summary, forKey: .whatRan)
    }
}

/// What the launch has proved once the PCRs were read back and match the log, handed to
/// the step that runs just before the first unpause (releasing sealed secrets).
public struct MeasuredLaunch {
    public var bundle: LoadedBundle
    public var spec: LaunchSpec
    /// Built, paused, with Xenstore written.
    public var domains: [BuiltDomain]
    /// The log of this launch, separators included; written to disk.
    public var log: EventLog
    /// The launch PCRs as read back from the TPM (equal to the log's replay).
    public var pcrs: PCRValues
}

/// Everything `domb boot` needs, behind protocols so the same flow runs on Xen (TPM device,
/// libxl, libxenstore), on a plain host (swtpm, plan backend) and in tests (fakes).
public struct BootEnvironment {
    /// Makes the measurement sink once the bundle is verified (a TPM sink in production).
    public var makeSink: () throws -> any MeasurementSink
    /// Reads the current value of PCRs: before measuring (the launch PCRs must be in their
    /// reset state) and after the separators (they must equal the log's replay).
    public var readPCRs: ([Int], [HashAlgorithm]) throws -> PCRValues
    /// The TPM's active banks, known before the bundle is read so it is hashed once.
    public var activeBanks: () throws -> [HashAlgorithm]
    public var builder: any DomainBuilding
    /// Where the Xenstore plan goes; nil records it without writing (plan backend).
    public var xenstore: (any XenstoreWriting)?
    /// Whether domb introduces the domains to xenstored (libxl already does when it builds).
    public var introduceDomains: Bool
    /// Sets up and waits for the PV devices (hotplug, backends, connection); nil where no
    /// device can run (plan backend).
    public var devices: DeviceConnector?
    /// Progress for a person: one line per step.
    public var progress: (String) -> Void
    /// Bytes of the bundle read and hashed so far (the longest step on big images): told
    /// the total once the signature checks out.
    public var loadProgress: ByteProgress?
    /// The signal asking the launch to stop, checked at every step and event boundary up
    /// to the first unpause (``LaunchSignals/pending`` in the CLI).
    public var interruption: () -> Int32?
    /// The last step before the first unpause, after the PCRs were read back and match the
    /// log: where sealed secrets are released (issue 18). Throwing refuses the launch;
    /// everything built is torn down. Returns a line for the record, or nil.
    public var beforeUnpause: ((MeasuredLaunch) throws -> String?)?
    /// Takes back what ``beforeUnpause`` released when the launch fails after it (a domain
    /// that does not unpause): secret files removed, Xenstore nodes deleted. Returns what
    /// could not be undone.
    public var withdrawSecrets: (() -> [String])?

    public init(
        makeSink: @escaping () throws -> any MeasurementSink, readPCRs: @escaping ([Int], [HashAlgorithm]) throws -> PCRValues,
        activeBanks: @escaping () throws -> [HashAlgorithm], builder: any DomainBuilding, xenstore: (any XenstoreWriting)?,
        introduceDomains: Bool, progress: @escaping (String) -> Void = { _ in }, interruption: @escaping () -> Int32? = { nil },
        beforeUnpause: ((MeasuredLaunch) throws -> String?)? = nil, withdrawSecrets: (() -> [String])? = nil,
        devices: DeviceConnector? = nil
    ) {
        self.withdrawSecrets = withdrawSecrets
        self.makeSink = makeSink
        self.readPCRs = readPCRs
        self.activeBanks = activeBanks
        self.builder = builder
        self.xenstore = xenstore
        self.introduceDomains = introduceDomains
        self.progress = progress
        self.interruption = interruption
        self.beforeUnpause = beforeUnpause
        self.devices = devices
    }
}

public struct BootOptions: Sendable {
    public var trust: BundleTrustPolicy
    public var minimumGeneration: UInt64
    /// Where the event log is written (atomically); nil keeps it in memory only.
    public var eventLogPath: String?
    /// Certificate validity time (seconds since the epoch); now when nil.
    public var time: Int64?
    /// The launch lock file (one per TPM: ``LaunchLock/path(directory:tpm:)``); nil takes
    /// no lock (tests that run one launch per TPM).
    public var lockPath: String?

    public init(
        trust: BundleTrustPolicy, minimumGeneration: UInt64 = 0, eventLogPath: String? = nil, time: Int64? = nil,
        lockPath: String? = nil
    ) {
        self.trust = trust
        self.minimumGeneration = minimumGeneration
        self.eventLogPath = eventLogPath
        self.time = time
        self.lockPath = lockPath
    }
}

/// `domb boot`, in the order of DESIGN.md decision 9: verify the bundle (signature, trust,
/// generation, manifest ↔ launch DTB) → take the launch lock, check the event-log
/// destination → measure → build paused → write Xenstore → extend the separators → write
/// and sync the log → read the PCRs back and compare them with the log's replay →
/// [``BootEnvironment/beforeUnpause``: release secrets] → unpause in dependency order.
///
/// Every step that can fail comes before the first unpause. A failure (or SIGTERM/SIGINT,
/// noticed at the next step or event boundary) destroys what was built, writes the log of
/// exactly the events that reached the TPM, and throws a ``BootFailure`` whose message is
/// rendered from the record of what ran.
///
/// Xenstore is written after the domains are built (still paused) rather than before:
/// the plan's domids, store and console rings are only known once Xen has built the
/// domains, and libxl rewrites a domain's base directory when it builds it. Nothing runs
/// before the transaction commits, so frontends and backends find their entries in place.
public enum BootFlow {
    public static func run(bundle path: String, options: BootOptions, environment: BootEnvironment) throws -> BootReport {
        var launch = Launch(path: path, options: options, environment: environment)
        return try launch.run()
    }
}

/// One launch in progress: the record of what was done, and the failure path that undoes
/// what can be undone.
private struct Launch {
    let path: String
    let options: BootOptions
    let environment: BootEnvironment
    var record = LaunchRecord()
    var sink: (any MeasurementSink)?
    var logFile: AtomicFile?
    var lock: FileLock?
    var logCommitted = false

    init(path: String, options: BootOptions, environment: BootEnvironment) {
        self.path = path
        self.options = options
        self.environment = environment
    }

    /// Throws ``LaunchInterrupted`` when a signal asked the launch to stop.
    func checkInterruption() throws {
        if let signal = environment.interruption() { throw LaunchInterrupted(signal: signal) }
    }

    mutating func run() throws -> BootReport {
        let progress = environment.progress
        var stage = BootStage.verify
        do {
            // 1. Verify: signature, trust, generation, manifest ↔ launch DTB; every member
            //    read once into memory or a sealed memfd.
            try checkInterruption()
            let verified = try Self.verify(path: path, options: options, environment: environment)
            record.append(.verified(bundle: path, generation: verified.loaded.manifest.generation, signer: verified.loaded.signer))
            progress("verified \(TerminalText.escape(path)): generation \(verified.loaded.manifest.generation), signed by \(TerminalText.escape(verified.loaded.signer))")

            // 2. The launch lock (one launch per TPM), then the log's destination: made and
            //    its space reserved now, so a directory, read-only or full target is found
            //    before anything is extended.
            stage = .lock
            try checkInterruption()
            if let lockPath = options.lockPath {
                lock = try FileLock(path: lockPath)
                record.append(.locked(path: lockPath))
            }
            stage = .logDestination
            try checkInterruption()
            let expectedLog = try Self.expectedLog(verified)
            if let logPath = options.eventLogPath {
                let file = try AtomicFile(path: logPath, inputs: [path])
                try file.reserve(expectedLog.count)
                logFile = file
                record.append(.logDestinationReady(path: logPath, reservedBytes: expectedLog.count))
            }

            // 3. Measure: the launch PCRs must be untouched, then one extend per event,
            //    every active bank; a signal stops it between two events.
            stage = .measure
            try checkInterruption()
            let pcrs = Set(verified.measurements.map(\.pcr)).sorted()
            let current = try environment.readPCRs(pcrs, verified.banks)
            if let problem = EventLog(banks: verified.banks).differences(from: current, pcrs: pcrs, using: OpenSSLPCRHasher()).first {
                throw ParseError.invalid(
                    "\(problem): something else measured into it, so the launch could not be attested; use other PCRs in the policy or reset the TPM")
            }
            let sink = try environment.makeSink()
            self.sink = sink
            record.banks = sink.banks
            guard sink.banks == verified.banks else {
                throw ParseError.invalid("the TPM's active banks changed while the bundle was being read")
            }
            let measurer = Measurer(sink: sink, policy: verified.policy)
            for measurement in verified.measurements {
                try checkInterruption()
                try measurer.perform(measurement)
            }
            progress("measured \(sink.log.events.count) events into \(sink.banks.map(\.name).joined(separator: ", "))")

            // 4. Build every domain paused, dependencies first, from the measured bytes.
            stage = .build
            let images = Self.images(verified)
            // By name and by domid, once: per-domain scans would be quadratic in domains (issue 20).
            let specByName = Dictionary(verified.spec.domains.map { ($0.name, $0) }) { first, _ in first }
            for name in verified.order {
                try checkInterruption()
                guard let domain = specByName[name] else { continue }
                let built = try environment.builder.build(domain, images: images[domain.name] ?? DomainImages())
                record.append(.built(built))
                progress("built \(domain.name) (domid \(built.domid)), paused")
            }

            // 5. Xenstore: the signed plan with the hypervisor's values filled in, one transaction.
            stage = .xenstore
            try checkInterruption()
            var nodes = 0
            var values: [String: XenstoreBuildValues] = [:]
            for domain in record.built { values[domain.name] = domain.values }
            var devices: [XenbusDevice] = []
            if let plan = verified.xenstorePlan {
                let resolved = try plan.resolve(values)
                devices = resolved.devices
                if let store = environment.xenstore {
                    let report = try XenstoreApplier(introduce: environment.introduceDomains).apply(resolved, to: store)
                    nodes = report.nodesWritten
                    record.append(.xenstoreWritten(nodes: nodes, attempts: report.attempts))
                    progress("wrote \(nodes) Xenstore nodes in \(report.attempts) transaction(s)")
                } else {
                    nodes = resolved.nodes.count
                    record.append(.xenstoreResolved(nodes: nodes))
                    progress("Xenstore plan resolved: \(nodes) nodes (not written: no Xenstore with this backend)")
                }
            }

            // 5b. The backends in this domain, as xl sets up those of its own domain: each
            //     taken by its driver, then its hotplug script (docs/boot.md, "Devices").
            //     Nothing runs yet, so a failure here is still a refusal.
            stage = .devices
            try checkInterruption()
            let connector = environment.devices
            if let connector {
                connector.domainNames = Dictionary(record.built.map { ($0.domid, $0.name) }) { first, _ in first }
                let local = try connector.setUpLocalBackends(devices)
                if local > 0 { record.append(.backendsSetUp(devices: local)) }
            }

            // 6. Close the launch: an EV_SEPARATOR on every launch PCR.
            stage = .separators
            try checkInterruption()
            for pcr in measurer.extendedPCRs.sorted() {
                try checkInterruption()
                try measurer.perform(.separator(pcr: pcr))
            }

            // 7. The log, written and synced before anything runs.
            stage = .writeLog
            try checkInterruption()
            if let logFile, let logPath = options.eventLogPath {
                try logFile.replaceContents(sink.logBytes)
                try logFile.commit()
                logCommitted = true
                record.append(.logWritten(path: logPath, events: sink.log.events.count))
                progress("wrote the event log \(TerminalText.escape(logPath)) (\(sink.logBytes.count) bytes)")
            }

            // 8. The TPM must hold what the log says: another process extending the launch
            //    PCRs meanwhile (no lock, another host tool) is found here.
            stage = .checkPCRs
            try checkInterruption()
            let launchPCRs = sink.log.extendedPCRs
            let readBack = try environment.readPCRs(launchPCRs, sink.banks)
            let mismatches = sink.log.differences(from: readBack, pcrs: launchPCRs, using: OpenSSLPCRHasher())
            guard mismatches.isEmpty else {
                throw ParseError.invalid(
                    mismatches.joined(separator: "; ") + ": something else extended the launch PCRs during the launch")
            }
            record.append(.pcrsMatchLog(pcrs: launchPCRs, banks: sink.banks))

            // 9. Secrets (issue 18): released only to this verified, measured launch.
            stage = .secrets
            try checkInterruption()
            if let release = environment.beforeUnpause {
                let measured = MeasuredLaunch(
                    bundle: verified.loaded, spec: verified.spec, domains: record.built, log: sink.log, pcrs: readBack)
                if let line = try release(measured) {
                    record.append(.secretsReleased(line))
                    progress(line)
                }
            }

            // 10. The commit point: unpause in dependency order. A signal from here on no
            //     longer stops the launch (the first domain is running). A domain starts once
            //     the backends of its devices are ready; those in a driver domain only become
            //     ready once that domain (earlier in the order) runs its `xl devd`.
            stage = .unpause
            try checkInterruption()
            var notes: [String] = []
            var leftPaused: [String] = []
            let devicesByDomid = Dictionary(grouping: devices, by: \.domid)
            for domain in record.built {
                guard specByName[domain.name]?.startOnBoot ?? true else {
                    leftPaused.append(domain.name)
                    record.append(.leftPaused(domain))
                    progress("left \(domain.name) paused (domb,paused)")
                    continue
                }
                let own = devicesByDomid[domain.domid] ?? []
                if let connector, own.contains(where: \.usesXenbusStates) {
                    stage = .backends
                    try connector.waitForBackends(of: own)
                    stage = .unpause
                }
                try environment.builder.unpause(domain)
                record.append(.unpaused(domain))
                progress("started \(domain.name)")
            }
            if let signal = environment.interruption() {
                notes.append("\(LaunchSignals.name(signal)) arrived while the domains were being started: the launch was completed")
            }

            // 11. Every device of a running domain must connect. Only visible once the
            //     frontends run, so this fails a launch that has run: what ran is torn down
            //     and the message says so.
            stage = .connect
            let running = Set(record.unpaused.map(\.domid))
            let connecting = devices.filter { running.contains($0.domid) && $0.usesXenbusStates }
            if let connector, !connecting.isEmpty {
                try connector.waitForConnection(of: connecting)
                record.append(.devicesConnected(connecting.count))
                progress("\(connecting.count) device(s) connected")
            }
            record.extended = sink.log.events
            lock?.release()
            let predicted = verified.loaded.metadata[BundleLayout.predictedEventLog]
            let predictedPCRs = verified.loaded.manifest.predictedPCRs
            var report = BootReport(
                bundle: path, generation: verified.loaded.manifest.generation, signer: verified.loaded.signer,
                backend: environment.builder.backendName, banks: sink.banks, events: sink.log.events.count,
                domains: record.built, startOrder: verified.order, xenstoreNodes: nodes, pcrs: readBack,
                matchesPrediction: predicted == sink.logBytes, eventLogPath: options.eventLogPath, record: record, notes: notes,
                leftPaused: leftPaused, devicesConnected: connector == nil ? 0 : connecting.count,
                session: LaunchSession(
                    spec: verified.spec, xenstorePlan: verified.xenstorePlan, images: images,
                    measuredDigests: verified.loaded.digests.filter { BundleLayout.isModulePath($0.key) },
                    values: values, started: record.unpaused))
            // On the banks the bundle and the TPM both have (a TPM may have fewer or more).
            let comparable = predictedPCRs.algorithms.filter { sink.banks.contains($0) }
            report.matchesPredictedPCRs = !comparable.isEmpty
                && comparable.allSatisfy { bank in
                    predictedPCRs.pcrs(in: bank).allSatisfy { readBack[bank, $0] == predictedPCRs[bank, $0] }
                }
            return report
        } catch {
            throw fail(stage, error)
        }
    }

    /// Tears down what was built (unpaused domains included), persists the log of exactly
    /// what was extended, and renders the failure from the record.
    mutating func fail(_ stage: BootStage, _ error: any Error) -> BootFailure {
        if record.steps.contains(where: { if case .secretsReleased = $0 { true } else { false } }),
            let withdraw = environment.withdrawSecrets
        {
            record.append(.secretsWithdrawn(problems: withdraw()))
        }
        for domain in record.remaining.reversed() {
            do {
                try environment.builder.destroy(domain)
                record.append(.destroyed(domain))
            } catch {
                record.append(.destroyFailed(domain, reason: "\(error)"))
            }
        }
        if let sink {
            record.extended = sink.log.events
            persistLogAfterFailure(sink)
        }
        lock?.release()
        let signal = (error as? LaunchInterrupted)?.signal
        return BootFailure(stage: stage, reason: TerminalText.escape("\(error)"), record: record, signal: signal)
    }

    /// Writes the log of exactly what was extended when the launch stopped before its own
    /// log step. Nothing extended: nothing to explain, the destination is left as it was.
    mutating func persistLogAfterFailure(_ sink: any MeasurementSink) {
        guard let logPath = options.eventLogPath, !logCommitted, !sink.log.events.isEmpty else { return }
        let events = sink.log.events.count
        guard let logFile else {
            record.append(.logLost(path: logPath, events: events, reason: "its destination was never ready"))
            return
        }
        do {
            // A commit that synced the log and then failed to rename left it complete.
            if !logFile.isSealed { try logFile.replaceContents(sink.logBytes) }
        } catch {
            // The temporary file may be torn: it is removed (dropped), the loss reported.
            record.append(.logLost(path: logPath, events: events, reason: "\(error)"))
            self.logFile = nil
            return
        }
        do {
            try logFile.commit()
            record.append(.logWritten(path: logPath, events: events))
        } catch {
            // Written and synced, not renamed into place: never lose the only record of
            // what the TPM holds.
            record.append(.logKept(temporaryPath: logFile.abandon(), path: logPath, events: events, reason: "\(error)"))
        }
    }

    /// Per domain, the sealed images the launch measured and built it from.
    static func images(_ verified: Verified) -> [String: DomainImages] {
        var result: [String: DomainImages] = [:]
        for domain in verified.spec.domains {
            var images = DomainImages()
            for module in domain.modules {
                images.modules[module.kind] = verified.loaded.modules[BundleLayout.modulePath(domain: domain.name, role: module.kind.rawValue)]
            }
            result[domain.name] = images
        }
        return result
    }

    /// The verified bundle and everything derived from it that the later steps need.
    struct Verified {
        var loaded: LoadedBundle
        var banks: [HashAlgorithm]
        var launch: ValidatedLaunch
        var spec: LaunchSpec { launch.spec }
        var xenstorePlan: XenstorePlan?
        var measurements: [PlannedMeasurement]
        var policy: PCRPolicy
        var order: [String]
    }

    static func verify(path: String, options: BootOptions, environment: BootEnvironment) throws -> Verified {
        let banks = try environment.activeBanks()
        let loaded = try LoadedBundle.load(
            path: path, trust: options.trust, minimumGeneration: options.minimumGeneration, extraBanks: banks,
            time: options.time, progress: environment.loadProgress)
        guard let dtb = loaded.metadata[BundleLayout.launchDTB], let launch = loaded.launch else {
            throw ParseError.invalid("the bundle has no \(BundleLayout.launchDTB)")
        }
        let planBytes = loaded.metadata[BundleLayout.xenstorePlan]
        let xenstorePlan = try planBytes.map { bytes in
            try ContextError.wrap(BundleLayout.xenstorePlan) { try JSONInput.decode(XenstorePlan.self, from: bytes, what: "not a Xenstore plan") }
        }
        let policy = PCRPolicy(manifest: loaded.manifest.pcrPolicy)
        let missing = policy.requiredBanks.filter { !banks.contains($0) }
        guard missing.isEmpty else {
            throw ParseError.invalid("the TPM does not have required bank(s) \(missing.map(\.name).joined(separator: ", ")) active")
        }
        var modules: [LaunchMeasurementPlan.Module] = []
        for domain in launch.domains {
            for module in domain.modules {
                let member = LaunchMeasurementPlan.Module(domain: domain.name, kind: module.kind, size: 0, digests: DigestSet())
                guard let image = loaded.modules[member.label], let digests = loaded.digests[member.label] else {
                    throw ParseError.invalid("domain \(domain.name): its \(module.kind.rawValue) module is not in the bundle (\(member.label))")
                }
                modules.append(.init(domain: domain.name, kind: module.kind, size: UInt64(image.count), digests: digests))
            }
        }
        // The digests of the members as read (every active bank), for configuration too large
        // to be measured inline.
        let measurements = try LaunchMeasurementPlan.measurements(
            launch: launch, modules: modules,
            launchDTB: .init(bytes: dtb, digests: loaded.digests[BundleLayout.launchDTB] ?? DigestSet()),
            xenstorePlan: planBytes.map { .init(bytes: $0, digests: loaded.digests[BundleLayout.xenstorePlan] ?? DigestSet()) },
            policy: policy)
        return Verified(
            loaded: loaded, banks: banks, launch: launch, xenstorePlan: xenstorePlan, measurements: measurements, policy: policy,
            order: launch.startOrder)
    }

    /// The exact log a complete launch writes (measurements and separators, the TPM's
    /// banks), computed in software: its size is reserved at the destination up front.
    static func expectedLog(_ verified: Verified) throws -> [UInt8] {
        let sink = try SoftwareMeasurementSink(banks: verified.banks)
        let measurer = Measurer(sink: sink, policy: verified.policy)
        for measurement in verified.measurements { try measurer.perform(measurement) }
        try measurer.closeLaunch()
        return sink.logBytes
    }
}

extension PCRPolicy {
    /// The policy a manifest records (`configuration`, `commandLine`, `image` → PCR).
    public init(manifest map: [String: Int]) {
        let defaults = PCRPolicy.default
        self.init(
            version: PCRPolicy.currentVersion,
            pcrs: PCRs(
                configuration: map["configuration"] ?? defaults.pcrs.configuration,
                commandLine: map["commandLine"] ?? defaults.pcrs.commandLine,
                image: map["image"] ?? defaults.pcrs.image),
            requiredBanks: defaults.requiredBanks)
    }
}
