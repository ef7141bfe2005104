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
            Steps: verify the signature, trust and generation; read every module once into a \
            sealed memfd and check its digests; extend each event into every active PCR bank \
            and log it; build the domains paused (dependencies first); write the Xenstore plan \
            in one transaction; unpause in dependency order; close the launch with EV_SEPARATOR \
            and write the event log atomically. Any failure stops before a domain is unpaused, \
            destroys what was built and exits non-zero; the log on disk then holds exactly the \
            events that reached the TPM.

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
    @Option(help: "Where to write the event log (atomically).") var eventlog: String = "/run/domb/eventlog.bin"
    @Option(
        help: ArgumentHelp(
            "Seconds each device step may take (libxl backend): backends taken and hotplugged, then both ends connected.",
            valueName: "seconds"))
    var deviceTimeout: Double = 60
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(
        help: ArgumentHelp(
            "After the launch, stay and carry out on_poweroff, on_reboot and on_crash for the domains it started (libxl backend).",
            discussion: "A restart rebuilds the domain from the sealed images measured at launch. Tells systemd READY=1 when the launch is done (Type=notify)."))
    var supervise = false

    func run() async throws {
        let trustPolicy = try trust.policy()
        let chosen = chosenBackend()
        let connection = try tpm.open()
        let quiet = json
        // Flushed per line: under systemd or in a pipe, a supervisor's lines must not wait
        // in a buffer.
        let log: (String) -> Void = { line in
            if !quiet {
                print("  \(line)")
                fflush(nil)
            }
        }
        if supervise && chosenBackend() != .libxl {
            throw ValidationError("--supervise needs the libxl backend (a Xen control domain)")
        }

        guard deviceTimeout > 0, deviceTimeout <= 3600 else {
            throw ValidationError("--device-timeout must be more than 0 and at most 3600 seconds")
        }
        let builder: any DomainBuilding
        var xenstore: XenstoreClient?
        var devices: DeviceConnector?
        switch chosen {
        case .libxl:
            let client = try XenstoreClient()
            xenstore = client
            builder = try LibxlBackend(xenstore: client)
            devices = DeviceConnector(store: client, hotplug: ProcessHotplugRunner(), timeout: deviceTimeout, progress: log)
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
            introduceDomains: false, devices: devices,
            progress: log)
        if !json { print("domb boot \(bundle) (backend \(builder.backendName), TPM \(connection.configuration))") }
        let options = BootOptions(
            trust: trustPolicy, minimumGeneration: trust.minimumGeneration, eventLogPath: eventlog, time: trust.time)
        do {
            let report = try BootFlow.run(bundle: bundle, options: options, environment: environment)
            try printReport(report, tpmCommands: connection.commandCount)
            fflush(nil)
            if supervise, let supervised = builder as? any DomainSupervising {
                SystemdNotify.send("READY=1\nSTATUS=launched \(report.session.started.count) domain(s), supervising")
                print("supervising \(report.session.started.map(\.name).joined(separator: ", "))")
                fflush(nil)
                try Supervisor(session: report.session, backend: supervised, xenstore: xenstore, devices: devices) { event in
                    print("domb supervise: \(event)")
                    fflush(nil)
                }.run()
                print("domb supervise: no supervised domain is left")
            }
        } catch let failure as BootFailure {
            if json {
                let object: [String: Any] = [
                    "result": "refused", "stage": failure.stage.rawValue, "reason": failure.reason,
                    "eventsExtended": failure.eventsExtended, "tornDown": failure.tornDown,
                    "started": failure.started, "launchClosed": failure.launchClosed,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
            }
            throw failure
        }
    }

    private func chosenBackend() -> Backend {
        backend ?? (FileManager.default.fileExists(atPath: "/dev/xen/privcmd") ? .libxl : .plan)
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
                "tpmCommands": tpmCommands,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("launched \(report.domains.count) domain(s) in order \(report.startOrder.joined(separator: " → "))")
        if !report.leftPaused.isEmpty { print("  left paused: \(report.leftPaused.joined(separator: ", "))") }
        if report.devicesConnected > 0 { print("  \(report.devicesConnected) PV device(s) connected on both ends") }
        print("  \(report.events) events in \(report.banks.map(\.name).joined(separator: ", ")); \(tpmCommands) TPM commands")
        print("  event log: \(report.eventLogPath ?? "(not written)")\(report.matchesPrediction ? " — identical to the bundle's predicted log" : "")")
        for bank in report.pcrs.algorithms where bank == .sha256 {
            for pcr in report.pcrs.pcrs(in: bank) {
                print("  PCR \(pcr) \(bank): \((report.pcrs[bank, pcr] ?? []).hexString)")
            }
        }
    }
}
