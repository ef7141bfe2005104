//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombFDT
import Foundation

/// The stages of a launch, in order. A failure names the stage it stopped in.
public enum BootStage: String, Sendable, CaseIterable {
    case verify = "verifying the bundle"
    case measure = "measuring"
    case build = "building domains"
    case xenstore = "writing Xenstore"
    case devices = "setting up device backends"
    case unpause = "starting domains"
    case close = "closing the launch"
    case connect = "waiting for devices to connect"
}

/// Why a launch stopped, and what was left behind: everything built torn down, the event
/// log consistent with the PCRs, and which domains had run (none, unless the failure came
/// while starting them or after).
public struct BootFailure: Error, CustomStringConvertible, Sendable {
    public var stage: BootStage
    public var reason: String
    /// Events that reached the TPM before the failure (the log on disk holds exactly these).
    public var eventsExtended: Int
    /// Domains that were built and then destroyed.
    public var tornDown: [String]
    /// Problems while tearing down (reported, never hidden).
    public var cleanupProblems: [String]
    /// Domains that were unpaused before the failure, in start order.
    public var started: [String]
    /// Whether the launch had been closed (separators extended, event log written).
    public var launchClosed: Bool

    public init(
        stage: BootStage, reason: String, eventsExtended: Int, tornDown: [String], cleanupProblems: [String],
        started: [String] = [], launchClosed: Bool = false
    ) {
        self.stage = stage
        self.reason = reason
        self.eventsExtended = eventsExtended
        self.tornDown = tornDown
        self.cleanupProblems = cleanupProblems
        self.started = started
        self.launchClosed = launchClosed
    }

    public var description: String {
        var text = "launch \(started.isEmpty ? "refused" : "failed") while \(stage.rawValue): \(reason)"
        text += eventsExtended == 0 ? "\n  no PCR was extended" : "\n  \(eventsExtended) event(s) were extended and logged before the failure"
        if launchClosed { text += "\n  the launch was closed: separators extended, event log written" }
        text += started.isEmpty ? "\n  no domain was unpaused" : "\n  started before the failure: \(started.joined(separator: ", "))"
        if !tornDown.isEmpty { text += "\n  destroyed: \(tornDown.joined(separator: ", "))" }
        for problem in cleanupProblems { text += "\n  cleanup problem: \(problem)" }
        return text
    }
}

/// What a successful launch did.
public struct BootReport: Sendable {
    public var bundle: String
    public var generation: UInt64
    public var signer: String
    public var backend: String
    public var banks: [HashAlgorithm]
    public var events: Int
    public var domains: [BuiltDomain]
    public var startOrder: [String]
    /// Domains left paused (`domb,paused`).
    public var leftPaused: [String]
    /// PV devices whose both ends reached `XenbusStateConnected` (none with the plan backend).
    public var devicesConnected: Int
    public var xenstoreNodes: Int
    /// PCR values the launch left, per bank, for the PCRs it extended.
    public var pcrs: PCRValues
    /// Whether the log written equals the bundle's predicted log byte for byte (true
    /// whenever the TPM's active banks are the bundle's banks).
    public var matchesPrediction: Bool
    public var eventLogPath: String?
    /// What `--supervise` needs to carry out the lifecycle actions.
    public var session: LaunchSession
}

/// Everything `domb boot` needs, behind protocols so the same flow runs on Xen (TPM device,
/// libxl, libxenstore), on a plain host (swtpm, plan backend) and in tests (fakes).
public struct BootEnvironment {
    /// Makes the measurement sink once the bundle is verified (a TPM sink in production).
    public var makeSink: () throws -> any MeasurementSink
    /// Reads the current value of PCRs (to refuse a launch into PCRs someone else extended).
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

    public init(
        makeSink: @escaping () throws -> any MeasurementSink, readPCRs: @escaping ([Int], [HashAlgorithm]) throws -> PCRValues,
        activeBanks: @escaping () throws -> [HashAlgorithm], builder: any DomainBuilding, xenstore: (any XenstoreWriting)?,
        introduceDomains: Bool, devices: DeviceConnector? = nil, progress: @escaping (String) -> Void = { _ in }
    ) {
        self.makeSink = makeSink
        self.readPCRs = readPCRs
        self.activeBanks = activeBanks
        self.builder = builder
        self.xenstore = xenstore
        self.introduceDomains = introduceDomains
        self.devices = devices
        self.progress = progress
    }
}

public struct BootOptions: Sendable {
    public var trust: BundleTrustPolicy
    public var minimumGeneration: UInt64
    /// Where the event log is written (atomically); nil keeps it in memory only.
    public var eventLogPath: String?
    /// Certificate validity time (seconds since the epoch); now when nil.
    public var time: Int64?

    public init(trust: BundleTrustPolicy, minimumGeneration: UInt64 = 0, eventLogPath: String? = nil, time: Int64? = nil) {
        self.trust = trust
        self.minimumGeneration = minimumGeneration
        self.eventLogPath = eventLogPath
        self.time = time
    }
}

/// `domb boot`: verify, measure, build paused, write Xenstore, unpause in dependency order,
/// close the launch — and on any failure stop before anything is unpaused.
///
/// Xenstore is written after the domains are built (still paused) rather than before:
/// the plan's domids, store and console rings are only known once Xen has built the
/// domains, and libxl rewrites a domain's base directory when it builds it. Nothing runs
/// before the transaction commits, so frontends and backends still find their entries in
/// place the moment they start.
public enum BootFlow {
    public static func run(bundle path: String, options: BootOptions, environment: BootEnvironment) throws -> BootReport {
        let progress = environment.progress

        // 1. Verify: signature, trust, generation, then every member read once into memory.
        let banks: [HashAlgorithm]
        let loaded: LoadedBundle
        let spec: LaunchSpec
        let xenstorePlan: XenstorePlan?
        let measurements: [PlannedMeasurement]
        let policy: PCRPolicy
        let order: [String]
        do {
            banks = try environment.activeBanks()
            loaded = try LoadedBundle.load(
                path: path, trust: options.trust, minimumGeneration: options.minimumGeneration, extraBanks: banks,
                time: options.time)
            progress("verified \(path): generation \(loaded.manifest.generation), signed by \(loaded.signer)")
            guard let dtb = loaded.metadata[BundleLayout.launchDTB] else {
                throw ParseError.invalid("the bundle has no \(BundleLayout.launchDTB)")
            }
            spec = try ContextError.wrap(BundleLayout.launchDTB) { try LaunchDecoder.decode(dtb: dtb).spec }
            let planBytes = loaded.metadata[BundleLayout.xenstorePlan]
            xenstorePlan = try planBytes.map { bytes in
                try ContextError.wrap(BundleLayout.xenstorePlan) {
                    try JSONDecoder().decode(XenstorePlan.self, from: Data(bytes))
                }
            }
            policy = PCRPolicy(manifest: loaded.manifest.pcrPolicy)
            let missing = policy.requiredBanks.filter { !banks.contains($0) }
            guard missing.isEmpty else {
                throw ParseError.invalid("the TPM does not have required bank(s) \(missing.map(\.name).joined(separator: ", ")) active")
            }
            var modules: [LaunchMeasurementPlan.Module] = []
            for domain in spec.domains {
                for module in domain.modules {
                    let member = LaunchMeasurementPlan.Module(domain: domain.name, kind: module.kind, size: 0, digests: DigestSet())
                    guard let image = loaded.modules[member.label], let digests = loaded.digests[member.label] else {
                        throw ParseError.invalid("domain \(domain.name): its \(module.kind.rawValue) module is not in the bundle (\(member.label))")
                    }
                    modules.append(.init(domain: domain.name, kind: module.kind, size: UInt64(image.count), digests: digests))
                }
            }
            measurements = try LaunchMeasurementPlan.measurements(
                spec: spec, modules: modules, launchDTB: dtb, xenstorePlan: planBytes, policy: policy)
            order = try LaunchOrder.startOrder(of: spec)
        } catch {
            throw BootFailure(stage: .verify, reason: "\(error)", eventsExtended: 0, tornDown: [], cleanupProblems: [])
        }

        // 2. Measure: the launch PCRs must be untouched (or explained by the log we continue),
        //    then one extend per event, every active bank.
        let sink: any MeasurementSink
        let measurer: Measurer
        do {
            let pcrs = Set(measurements.map(\.pcr)).sorted()
            let current = try environment.readPCRs(pcrs, banks)
            for bank in banks {
                for pcr in pcrs where current[bank, pcr] != PCRValues.initialValue(bank, pcr: pcr) {
                    throw ParseError.invalid(
                        "PCR \(pcr) (\(bank)) is not in its reset state: something else measured into it, so the launch could not be attested; use other PCRs in the policy or reset the TPM")
                }
            }
            sink = try environment.makeSink()
            guard sink.banks == banks else {
                throw ParseError.invalid("the TPM's active banks changed while the bundle was being read")
            }
            measurer = Measurer(sink: sink, policy: policy)
        } catch {
            throw BootFailure(stage: .measure, reason: "\(error)", eventsExtended: 0, tornDown: [], cleanupProblems: [])
        }
        var extended = 0
        func persistLog() throws {
            if let logPath = options.eventLogPath { try MeasurementLogFile.writeAtomically(sink.logBytes, to: logPath) }
        }
        var started: [String] = []
        var closed = false
        func fail(_ stage: BootStage, _ error: any Error, built: [BuiltDomain]) -> BootFailure {
            var problems: [String] = []
            var tornDown: [String] = []
            for domain in built.reversed() {
                do {
                    try environment.builder.destroy(domain)
                    tornDown.append(domain.name)
                } catch {
                    problems.append("destroying \(domain.name): \(error)")
                }
            }
            if !closed {
                do { try persistLog() } catch { problems.append("writing the event log: \(error)") }
            }
            return BootFailure(
                stage: stage, reason: "\(error)", eventsExtended: extended, tornDown: tornDown, cleanupProblems: problems,
                started: started, launchClosed: closed)
        }
        for measurement in measurements {
            do {
                try measurer.perform(measurement)
                extended += 1
            } catch {
                throw fail(.measure, error, built: [])
            }
        }
        progress("measured \(extended) events into \(banks.map(\.name).joined(separator: ", "))")

        // 3. Build every domain paused, dependencies first, from the measured bytes.
        var built: [BuiltDomain] = []
        var imagesByDomain: [String: DomainImages] = [:]
        for name in order {
            guard let domain = spec.domain(named: name) else { continue }
            do {
                var images = DomainImages()
                for module in domain.modules {
                    images.modules[module.kind] = loaded.modules["modules/\(domain.name)/\(module.kind.rawValue)"]
                }
                imagesByDomain[domain.name] = images
                let result = try environment.builder.build(domain, images: images)
                built.append(result)
                progress("built \(domain.name) (domid \(result.domid)), paused")
            } catch {
                throw fail(.build, error, built: built)
            }
        }

        // 4. Xenstore: the signed plan with the hypervisor's values filled in, one transaction.
        var nodes = 0
        var devices: [XenstoreDevice] = []
        var values: [String: XenstoreBuildValues] = [:]
        for domain in built { values[domain.name] = domain.values }
        if let xenstorePlan {
            do {
                let resolved = try xenstorePlan.resolve(values)
                devices = resolved.devices
                if let store = environment.xenstore {
                    let report = try XenstoreApplier(introduce: environment.introduceDomains).apply(resolved, to: store)
                    nodes = report.nodesWritten
                    progress("wrote \(nodes) Xenstore nodes in \(report.attempts) transaction(s)")
                } else {
                    nodes = resolved.nodes.count
                    progress("Xenstore plan resolved: \(nodes) nodes (not written: no Xenstore with this backend)")
                }
            } catch {
                throw fail(.xenstore, error, built: built)
            }
        }

        // 5. The backends in this domain, as xl would set them up for its own domain: each
        //    taken by its driver, its hotplug script run. Nothing runs yet.
        let connector = environment.devices
        if let connector {
            connector.domainNames = Dictionary(built.map { ($0.domid, $0.name) }) { first, _ in first }
            do {
                try connector.setUpLocalBackends(devices)
            } catch {
                throw fail(.devices, error, built: built)
            }
        }

        // 6. Unpause in dependency order, each domain once the backends of its devices are
        //    ready: for backends in a driver domain that means the driver domain (started
        //    earlier in the order) has taken them and its `xl devd` ran their scripts.
        var leftPaused: [String] = []
        for domain in built {
            guard spec.domain(named: domain.name)?.startOnBoot ?? true else {
                leftPaused.append(domain.name)
                progress("left \(domain.name) paused (domb,paused)")
                continue
            }
            do {
                try connector?.waitForBackends(of: devices.filter { $0.domid == domain.domid })
            } catch {
                throw fail(.devices, error, built: built)
            }
            do {
                try environment.builder.unpause(domain)
                started.append(domain.name)
                progress("started \(domain.name)")
            } catch {
                throw fail(.unpause, error, built: built)
            }
        }

        // 7. Close: a separator on every launch PCR, then the log, atomically.
        do {
            try measurer.closeLaunch()
            try persistLog()
            closed = true
        } catch {
            // Domains are running by now; they stay (tearing them down would not undo the
            // extends), and the failure is reported.
            throw BootFailure(
                stage: .close, reason: "\(error)", eventsExtended: extended, tornDown: [], cleanupProblems: [],
                started: started)
        }

        // 8. The frontends run: every device must connect. This can only be checked now, so
        //    a device that does not connect fails a launch that has run; it is torn down all
        //    the same, and the failure says what ran.
        let running = Set(started)
        let connecting = devices.filter { device in running.contains(device.domain) && device.usesXenbusStates }
        if let connector, !connecting.isEmpty {
            do {
                try connector.waitForConnection(of: connecting)
                progress("\(connecting.count) device(s) connected")
            } catch {
                throw fail(.connect, error, built: built)
            }
        }

        let predicted = loaded.metadata[BundleLayout.predictedEventLog]
        var finalPCRs = PCRValues()
        if let replayed = try? sink.log.replay(using: OpenSSLPCRHasher()) { finalPCRs = replayed }
        return BootReport(
            bundle: path, generation: loaded.manifest.generation, signer: loaded.signer,
            backend: environment.builder.backendName, banks: banks, events: sink.log.events.count, domains: built,
            startOrder: order, leftPaused: leftPaused, devicesConnected: connector == nil ? 0 : connecting.count,
            xenstoreNodes: nodes, pcrs: finalPCRs, matchesPrediction: predicted == sink.logBytes,
            eventLogPath: options.eventLogPath,
            session: LaunchSession(
                spec: spec, xenstorePlan: xenstorePlan, images: imagesByDomain,
                measuredDigests: loaded.digests.filter { $0.key.hasPrefix("modules/") }, values: values,
                started: built.filter { running.contains($0.name) }))
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
