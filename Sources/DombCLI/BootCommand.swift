//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombLaunch
import DombTPM
import DombXenstore
import Foundation

/// `domb boot`: run as the boot domain.
struct BootCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Verify a launch bundle, measure it into the TPM, write Xenstore, build and start its domains.",
        discussion: """
            Steps, in this order (docs/boot.md): verify the signature, trust, generation and that \
            the manifest and launch.dtb agree, reading every module once into a sealed memfd; take \
            the launch lock of this TPM and make the event log's file (space reserved); extend \
            each event into every active PCR bank and log it; build the domains paused \
            (dependencies first); write the Xenstore plan in one transaction; close the launch \
            with EV_SEPARATOR; write and sync the event log; read the PCRs back and compare them \
            with the log; unpause in dependency order, each domain once the backends of its PV \
            devices are ready; wait until every device is connected. Any failure, and SIGTERM or \
            SIGINT before the first unpause, stops before a domain runs: what was built is \
            destroyed, the log on disk holds exactly the events that reached the TPM, the message \
            lists what ran, and the exit status is non-zero (128+N after signal N). A device that \
            does not connect can only be seen once its domain runs: that launch is torn down \
            and the message says what ran.

            Device backends in this domain are set up as xl does (Xen's hotplug scripts, e.g. \
            /etc/xen/scripts/block and vif-bridge); those in a driver domain by `xl devd` there. \
            --supervise stays after the launch and carries out on_poweroff, on_reboot and \
            on_crash (docs/boot.md).

            --backend libxl builds real domains (a Xen control domain, as root); --backend plan \
            records and prints what would be done (the default off Xen).
            """
    )

    enum Backend: String, ExpressibleByArgument, CaseIterable {
        case libxl
        case plan
    }

    @Argument(help: "The launch bundle.") var bundle: String
    @OptionGroup var trust: BundleCommand.TrustOptions
    @OptionGroup var tpm: TPMOptions
    @Option(help: "libxl or plan (default: libxl on a Xen control domain, plan elsewhere).") var backend: Backend?
    @Option(help: "Where to write the event log (atomically; a regular file, never a link or device).")
    var eventlog: String = "/run/domb/eventlog.bin"
    @Option(help: "Directory of the launch locks (one per TPM: a second launch on the same TPM is refused).")
    var lockDir: String = "/run/domb"
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(
        help: ArgumentHelp(
            "Seconds each device step may take (libxl backend): backends taken and their hotplug scripts run, then both ends connected.",
            valueName: "seconds"))
    var deviceTimeout: Double = 60
    @Flag(
        help: ArgumentHelp(
            "After the launch, stay and carry out on_poweroff, on_reboot and on_crash for the domains it started (libxl backend).",
            discussion: "A restart rebuilds the domain from the sealed images measured at launch. Tells systemd READY=1 once the launch is done (Type=notify)."))
    var supervise = false

    func run() async throws {
        // First: a signal from here on stops the launch at a step boundary, never mid-extend.
        LaunchSignals.install()
        let trustPolicy = try trust.policy()
        let chosen = backend ?? (FileManager.default.fileExists(atPath: "/dev/xen/privcmd") ? .libxl : .plan)
        guard deviceTimeout > 0, deviceTimeout <= 3600 else {
            throw ValidationError("--device-timeout must be more than 0 and at most 3600 seconds")
        }
        if supervise && chosen != .libxl {
            throw ValidationError("--supervise needs the libxl backend (a Xen control domain)")
        }
        let connection = try tpm.open()
        let quiet = json
        // One line per step as it happens (journald and a watching operator see progress).
        let log: (String) -> Void = { line in
            if !quiet {
                print("  \(line)")
                fflush(nil)
            }
        }

        let builder: any DomainBuilding
        var xenstore: XenstoreClient?
        var devices: DeviceConnector?
        switch chosen {
        case .libxl:
            let client = try XenstoreClient()
            xenstore = client
            builder = try LibxlBackend(xenstore: client)
            devices = DeviceConnector(
                store: client, hotplug: ProcessHotplugRunner(), timeout: deviceTimeout, scriptTimeout: max(40, deviceTimeout),
                progress: log)
        case .plan:
            builder = PlanBackend { action in log("plan: \(action)") }
        }
        let directory = (eventlog as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let policyBanks = PCRPolicy.default.requiredBanks
        let environment = BootEnvironment(
            makeSink: { try TPMMeasurementSink(tpm: connection, requiredBanks: policyBanks) },
            readPCRs: { pcrs, banks in try connection.readPCRs(pcrs, banks: banks) },
            activeBanks: { try connection.activeBanks() },
            builder: builder, xenstore: xenstore,
            // libxl introduces the domains it builds; the plan backend writes nothing.
            introduceDomains: false,
            progress: log, interruption: { LaunchSignals.pending }, devices: devices)
        if !json {
            print("domb boot \(TerminalText.escape(bundle)) (backend \(builder.backendName), TPM \(connection.configuration))")
            fflush(nil)
        }
        let options = BootOptions(
            trust: trustPolicy, minimumGeneration: trust.minimumGeneration, eventLogPath: eventlog, time: trust.time,
            lockPath: LaunchLock.path(directory: lockDir, tpm: connection.configuration))
        do {
            let report = try BootFlow.run(bundle: bundle, options: options, environment: environment)
            try printReport(report, tpmCommands: connection.commandCount)
            fflush(nil)
            if supervise, let signal = LaunchSignals.pending {
                print("\(LaunchSignals.name(signal)) arrived during the launch: not supervising")
            } else if supervise, let supervised = builder as? any DomainSupervising {
                let session = report.session
                // From here a signal ends domb (the unit stopping); the domains stay.
                LaunchSignals.restoreDefaults()
                SystemdNotify.send("READY=1\nSTATUS=launched \(session.started.count) domain(s), supervising")
                print("supervising \(session.started.map(\.name).joined(separator: ", "))")
                fflush(nil)
                try Supervisor(session: session, backend: supervised, xenstore: xenstore, devices: devices) { event in
                    print("domb supervise: \(TerminalText.escape("\(event)"))")
                    fflush(nil)
                }.run()
                print("domb supervise: no supervised domain is left")
            }
        } catch let failure as BootFailure {
            if json {
                var object: [String: Any] = [
                    "result": "refused", "stage": failure.stage.rawValue, "reason": failure.reason,
                    "eventsExtended": failure.eventsExtended, "tornDown": failure.tornDown, "unpaused": failure.unpaused,
                    "whatRan": failure.record.summary,
                ]
                if let signal = failure.signal { object["signal"] = LaunchSignals.name(signal) }
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
            } else {
                FileHandle.standardError.write(Data("Error: \(failure)\n".utf8))
            }
            throw ExitCode(failure.signal.map(LaunchSignals.exitStatus) ?? 1)
        }
    }

    private func printReport(_ report: BootReport, tpmCommands: Int) throws {
        if json {
            var pcrs: [String: [String: String]] = [:]
            for bank in report.pcrs.algorithms {
                for pcr in report.pcrs.pcrs(in: bank) {
                    pcrs[bank.name, default: [:]]["\(pcr)"] = report.pcrs[bank, pcr]?.hexString
                }
            }
            let object: [String: Any] = [
                "result": "launched", "bundle": report.bundle, "generation": report.generation, "signer": report.signer,
                "backend": report.backend, "banks": report.banks.map(\.name), "events": report.events,
                "domains": report.domains.map { ["name": $0.name, "domid": $0.domid] },
                "startOrder": report.startOrder, "leftPaused": report.leftPaused,
                "devicesConnected": report.devicesConnected, "xenstoreNodes": report.xenstoreNodes, "pcrs": pcrs,
                "matchesPrediction": report.matchesPrediction, "eventLog": report.eventLogPath ?? "",
                "tpmCommands": tpmCommands, "whatRan": report.record.summary, "notes": report.notes,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("launched \(report.domains.count) domain(s) in order \(report.startOrder.joined(separator: " → "))")
        if !report.leftPaused.isEmpty { print("  left paused: \(report.leftPaused.joined(separator: ", "))") }
        if report.devicesConnected > 0 { print("  \(report.devicesConnected) PV device(s) connected at both ends") }
        for note in report.notes { print("  note: \(note)") }
        print("  \(report.events) events in \(report.banks.map(\.name).joined(separator: ", ")); \(tpmCommands) TPM commands")
        print("  event log: \(report.eventLogPath ?? "(not written)")\(report.matchesPrediction ? " — identical to the bundle's predicted log" : "")")
        for bank in report.pcrs.algorithms where bank == .sha256 {
            for pcr in report.pcrs.pcrs(in: bank) {
                print("  PCR \(pcr) \(bank): \((report.pcrs[bank, pcr] ?? []).hexString)")
            }
        }
    }
}
