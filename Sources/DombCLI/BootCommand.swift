//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
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
            with the log; unseal and deliver the --secret secrets (TPM2_PolicyPCR → \
            VerifySignature → PolicyAuthorize → Unseal with the bundle's signed PCR policy); \
            unpause in dependency order, each domain once the backends of its PV devices are \
            ready; wait until every device is connected. Any failure, and SIGTERM or SIGINT \
            before the first unpause, stops before a domain runs: what was built is destroyed, \
            the log on disk holds exactly the events that reached the TPM, the message lists \
            what ran, and the exit status is non-zero (128+N after signal N). A device that \
            does not connect can only be seen once its domain runs: that launch is torn down \
            and the message says what ran.

            Device backends in this domain are set up as xl does (Xen's hotplug scripts, e.g. \
            /etc/xen/scripts/block and vif-bridge); those in a driver domain by `xl devd` there. \
            --supervise stays after the launch and carries out on_poweroff, on_reboot and \
            on_crash (docs/boot.md).

            --backend libxl builds real domains (a Xen control domain, as root); --backend plan \
            records and prints what would be done (the default off Xen).
            """ + "\n\n" + ExitStatus.help(success: "every domain was launched", refused: "the launch was refused or failed (what ran is printed; no domain was unpaused unless it says so)", interruptible: true)
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
    @Option(
        name: .customLong("secret"),
        help: ArgumentHelp(
            "Release a sealed secret to a domain after the launch is measured, before it runs: DOMAIN=SEALED[,to=file|xenstore][,name=NAME] (repeatable; docs/secrets.md).",
            valueName: "binding"))
    var secrets: [String] = []
    @Option(help: "The root-only directory of file secrets (<dir>/<domain>/<name>; keep it on a tmpfs).")
    var secretsDir: String = SecretDeliverer.defaultDirectory
    @OptionGroup var pin: PINOptions
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var progressOptions: ProgressOptions
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

    func validate() throws {
        for binding in secrets { _ = try SecretSpec.parseBinding(binding) }
    }

    func run() async throws {
        // First: a signal from here on stops the launch at a step boundary, never mid-extend.
        LaunchSignals.install()
        try requireInputFile(bundle)
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
        let bytes = progressOptions.progress("reading", bundle, json: json)
        defer { bytes?.finish() }
        // One line per step as it happens (journald and a watching operator see progress).
        let log: (String) -> Void = { line in
            bytes?.clear()
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
            try Directory.create(directory)
        }
        let policyBanks = PCRPolicy.default.requiredBanks
        // Secrets: bindings and the PIN are read before the launch starts, not at its end.
        let bindings = try secrets.map { text in
            let parsed = try SecretSpec.parseBinding(text)
            return LaunchSecrets.Binding(domain: parsed.domain, secret: parsed.secret)
        }
        // Always there: the verified description may bind secrets of its own (domb,secrets).
        let launchSecrets = LaunchSecrets(
            bindings: bindings, unsealer: TPMSecretUnsealer(tpm: connection),
            deliverer: SecretDeliverer(directory: secretsDir, xenstore: xenstore), pin: try pin.read(confirm: false))
        var environment = BootEnvironment(
            makeSink: { try TPMMeasurementSink(tpm: connection, requiredBanks: policyBanks) },
            readPCRs: { pcrs, banks in try connection.readPCRs(pcrs, banks: banks) },
            activeBanks: { try connection.activeBanks() },
            builder: builder, xenstore: xenstore,
            // libxl introduces the domains it builds; the plan backend writes nothing.
            introduceDomains: false,
            progress: log, interruption: { LaunchSignals.pending },
            beforeUnpause: { launch in try launchSecrets.release(launch) },
            withdrawSecrets: { launchSecrets.withdraw() }, devices: devices)
        environment.loadProgress = bytes?.bytes
        if !json {
            print("domb boot \(TerminalText.escape(bundle)) (backend \(builder.backendName), TPM \(connection.configuration))")
            fflush(nil)
        }
        let options = BootOptions(
            trust: trustPolicy, minimumGeneration: trust.minimumGeneration, eventLogPath: eventlog, time: trust.time,
            lockPath: LaunchLock.path(directory: lockDir, tpm: connection.configuration))
        do {
            var report = try BootFlow.run(bundle: bundle, options: options, environment: environment)
            report.tpmCommands = connection.commandCount
            try printReport(report)
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
                print(try jsonText(failure, format: .bootReport))
            } else {
                Diagnostics.print(Diagnostic(message: "\(failure)", hint: nil, status: .refused))
            }
            throw ExitCode(failure.signal.map(LaunchSignals.exitStatus) ?? ExitStatus.refused.rawValue)
        }
    }

    private func printReport(_ report: BootReport) throws {
        if json {
            print(try jsonText(report, format: .bootReport))
            return
        }
        print("launched \(report.domains.count) domain(s) in order \(report.startOrder.joined(separator: " → "))")
        if !report.leftPaused.isEmpty { print("  left paused: \(report.leftPaused.joined(separator: ", "))") }
        if report.devicesConnected > 0 { print("  \(report.devicesConnected) PV device(s) connected at both ends") }
        for note in report.notes { print("  note: \(note)") }
        print("  \(report.events) events in \(report.banks.map(\.name).joined(separator: ", ")); \(report.tpmCommands ?? 0) TPM commands")
        print("  event log: \(report.eventLogPath ?? "(not written)")\(report.matchesPrediction ? " — identical to the bundle's predicted log" : "")")
        print("  PCRs: \(report.matchesPredictedPCRs ? "equal to" : "NOT equal to") the bundle's predicted values (`domb predict`)")
        for bank in report.pcrs.algorithms where bank == .sha256 {
            for pcr in report.pcrs.pcrs(in: bank) {
                print("  PCR \(pcr) \(bank): \((report.pcrs[bank, pcr] ?? []).hexString)")
            }
        }
    }
}
