//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import DombLaunch
import DombModel
import DombXenstore
import Foundation

/// `domb xenstore …`: the Xenstore entries domb writes for the launch (see docs/xenstore.md).
struct XenstoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xenstore",
        abstract: "Plan, apply and check the Xenstore entries of a launch (libxl 4.17 layout).",
        subcommands: [Plan.self, Apply.self, Compare.self]
    )

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the Xenstore plan of a launch description.",
            discussion: """
                CONFIG is a launch description (.dts, .dtb, xl.cfg or the LaunchSpec model as \
                .json); it must validate. Prints the canonical JSON plan (the bytes the \
                bundle carries and measures), or with --script a shell script of xenstore-write \
                and xenstore-chmod commands. Values only known once the domains are built are \
                placeholders like ${domid:web}.
                """ + "\n\n" + ExitStatus.help(success: "the plan was printed", refused: "the description is invalid"))

        @Argument(help: "The launch description.") var config: String
        @Flag(help: "Print the canonical JSON plan (the default).") var json = false
        @Flag(help: "Print a shell script of xenstore-write/xenstore-chmod commands.") var script = false
        @OptionGroup var input: LaunchInputOptions

        func validate() throws {
            if json && script { throw ValidationError("give --json or --script, not both") }
        }

        func run() throws {
            let launch = try input.loader(checkImages: false).load(configuration: config).launch
            let plan = try ContextError.wrap(config) { try XenstorePlanner().plan(launch) }
            if script {
                print(plan.shellScript(), terminator: "")
            } else {
                FileHandle.standardOutput.write(Data(plan.canonicalBytes()))
            }
        }
    }

    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a plan to Xenstore in one transaction and introduce its domains.",
            discussion: """
                Needs a running xenstored (dom0 on Xen). Placeholders are filled from --values, \
                a JSON object mapping each domain name to {"domid":…, "uuid":…, "storePort":…, \
                "storeRingRef":…, "consolePort":…, "consoleRingRef":…, "startTime":"s.cc"}. \
                The transaction is retried on EAGAIN and either all of the plan is written or none.
                """ + "\n\n" + ExitStatus.help(success: "the plan was written", refused: "the plan is malformed or Xenstore refused it (nothing is written)"))

        @Argument(help: "The plan (JSON, as `domb xenstore plan` prints it).") var plan: String
        @Option(help: "JSON file of build-time values per domain.") var values: String?
        @Flag(help: "Write the nodes but do not introduce the domains to xenstored.") var noIntroduce = false
        @Option(help: "Transactions to try before giving up on EAGAIN.")
        var maxAttempts: Int = XenstoreApplier.defaultMaximumAttempts

        func run() throws {
            let loaded = try loadPlan(plan)
            let buildValues = try values.map(loadValues) ?? [:]
            let resolved = try ContextError.wrap(plan) { try loaded.resolve(buildValues) }
            let client: XenstoreClient
            do {
                client = try XenstoreClient()
            } catch {
                throw CommandError("cannot apply \(plan): \(error)")
            }
            let report = try XenstoreApplier(maximumAttempts: maxAttempts, introduce: !noIntroduce).apply(resolved, to: client)
            print("wrote \(report.nodesWritten) nodes in \(report.attempts) transaction attempt(s); introduced: \(report.introduced.isEmpty ? "none" : report.introduced.joined(separator: ", "))")
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare a plan with `xenstore-ls -f -p` output of the same domains.",
            discussion: """
                Build-time values (domids, uuids, rings, start times) are read from the listing, \
                so only what the toolstack decides is compared.
                """ + "\n\n" + ExitStatus.help(success: "they match", refused: "they differ (every difference is printed)"))

        @Argument(help: "The plan (JSON).") var plan: String
        @Argument(help: "Output of `xenstore-ls -f -p` (or `-p`), '-' for standard input.") var listing: String
        @Option(help: "The path given to xenstore-ls, for the indented form.") var root: String = "/"
        @Flag(help: "Forgive what guests, backends and daemons write once the domain runs.") var running = false
        @Option(
            name: .customLong("ignore"),
            help: "Also forgive the value of nodes matching this glob (* one component, ** any), e.g. '/vm/*/image/kernel'. Repeatable.")
        var ignore: [String] = []

        func run() throws {
            let loaded = try loadPlan(plan)
            let data = listing == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try CommandInput.read(listing)
            let parsed = try ContextError.wrap(listing) { try XenstoreListing(parsing: String(decoding: data, as: UTF8.self), root: root) }
            let resolved = try ContextError.wrap(plan) { try loaded.resolve(try loaded.buildValues(from: parsed)) }
            var options = running ? XenstoreComparisonOptions.running : .strict
            options.ignoreValues += ignore
            let comparison = resolved.compare(with: parsed, options: options)
            print(comparison.description)
            if !comparison.isEqual { throw ExitCode(ExitStatus.refused.rawValue) }
        }
    }
}

func loadPlan(_ path: String) throws -> XenstorePlan {
    let bytes = try InputFile.read(path, limit: CommandInput.maximumSize)
    return try ContextError.wrap(path) {
        let plan = try JSONInput.decode(XenstorePlan.self, from: bytes, what: "not a Xenstore plan")
        try plan.validate()
        return plan
    }
}

func loadValues(_ path: String) throws -> [String: XenstoreBuildValues] {
    let bytes = try InputFile.read(path, limit: CommandInput.maximumSize)
    return try ContextError.wrap(path) {
        try JSONInput.decode([String: XenstoreBuildValues].self, from: bytes, what: "not a JSON object of build values per domain")
    }
}
