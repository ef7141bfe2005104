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
            with the log; unseal and deliver the --secret secrets (TPM2_PolicyPCR → \
            VerifySignature → PolicyAuthorize → Unseal with the bundle's signed PCR policy); \
            unpause in dependency order. Any failure, and SIGTERM or SIGINT before \
            the first unpause, stops before a domain runs: what was built is destroyed, the log \
            on disk holds exactly the events that reached the TPM, the message lists what ran, \
            and the exit status is non-zero (128+N after signal N).

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

    func validate() throws {
        for binding in secrets { _ = try SecretSpec.parseBinding(binding) }
    }

    func run() async throws {
        // First: a signal from here on stops the launch at a step boundary, never mid-extend.
        LaunchSignals.install()
        let trustPolicy = try trust.policy()
        let chosen = backend ?? (FileManager.default.fileExists(atPath: "/dev/xen/privcmd") ? .libxl : .plan)
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
        switch chosen {
        case .libxl:
            let client = try XenstoreClient()
            xenstore = client
            builder = try LibxlBackend(xenstore: client)
        case .plan:
            builder = PlanBackend { action in log("plan: \(action)") }
        }
        let directory = (eventlog as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let policyBanks = PCRPolicy.default.requiredBanks
        // Secrets: bindings and the PIN are read before the launch starts, not at its end.
        let bindings = try secrets.map { text in
            let parsed = try SecretSpec.parseBinding(text)
            return LaunchSecrets.Binding(domain: parsed.domain, secret: parsed.secret)
        }
        let launchSecrets = bindings.isEmpty
            ? nil
            : LaunchSecrets(
                bindings: bindings, unsealer: TPMSecretUnsealer(tpm: connection),
                deliverer: SecretDeliverer(directory: secretsDir, xenstore: xenstore), pin: try pin.read(confirm: false))
        let environment = BootEnvironment(
            makeSink: { try TPMMeasurementSink(tpm: connection, requiredBanks: policyBanks) },
            readPCRs: { pcrs, banks in try connection.readPCRs(pcrs, banks: banks) },
            activeBanks: { try connection.activeBanks() },
            builder: builder, xenstore: xenstore,
            // libxl introduces the domains it builds; the plan backend writes nothing.
            introduceDomains: false,
            progress: log, interruption: { LaunchSignals.pending },
            beforeUnpause: launchSecrets.map { secrets in { launch in try secrets.release(launch) } },
            withdrawSecrets: launchSecrets.map { secrets in { secrets.withdraw() } })
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
        } catch let failure as BootFailure {
            if json {
                print(try jsonText(failure))
            } else {
                FileHandle.standardError.write(Data("Error: \(failure)\n".utf8))
            }
            throw ExitCode(failure.signal.map(LaunchSignals.exitStatus) ?? 1)
        }
    }

    private func printReport(_ report: BootReport) throws {
        if json {
            print(try jsonText(report))
            return
        }
        print("launched \(report.domains.count) domain(s) in order \(report.startOrder.joined(separator: " → "))")
        for note in report.notes { print("  note: \(note)") }
        print("  \(report.events) events in \(report.banks.map(\.name).joined(separator: ", ")); \(report.tpmCommands ?? 0) TPM commands")
        print("  event log: \(report.eventLogPath ?? "(not written)")\(report.matchesPrediction ? " — identical to the bundle's predicted log" : "")")
        for bank in report.pcrs.algorithms where bank == .sha256 {
            for pcr in report.pcrs.pcrs(in: bank) {
                print("  PCR \(pcr) \(bank): \((report.pcrs[bank, pcr] ?? []).hexString)")
            }
        }
    }
}
