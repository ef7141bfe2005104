//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import DombLaunch
import DombLibxl
import DombModel
import Foundation

/// `domb config …`: check, show, export and import launch descriptions.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check, show, export and import launch descriptions (Hyperlaunch device tree, xl.cfg).",
        discussion: "The binding is documented in docs/binding.md.",
        subcommands: [Check.self, Show.self, Export.self, ImportXL.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate launch descriptions (.dts, .dtb, xl.cfg, .json); one line per problem, non-zero exit if any.",
            discussion: """
                Device trees and JSON models are checked one by one; xl.cfg files, one domain \
                each, are checked together as one system. With --images this runs the very \
                checks `domb build` runs before it writes anything, so a description it \
                accepts builds.
                """ + "\n\n" + ExitStatus.help(success: "every description is valid", refused: "a description is malformed or invalid (one line per problem)"))

        @Argument(help: "Description files.") var files: [String]
        @Flag(help: "Also check every module file: it must exist, fit in a bundle and boot in its domain's mode (PVH needs PHYS32_ENTRY…).")
        var images = false
        @Flag(help: "Refuse descriptions the front end read only in part: ignored or unknown xl.cfg keys, ignored device-tree nodes.")
        var strict = false
        @OptionGroup var input: LaunchInputOptions

        func run() throws {
            var worst = ExitStatus.success
            let loader = try input.loader(checkImages: images)
            for (files, result) in LaunchFile.loadGroups(files, options: loader.options) {
                let label = files.joined(separator: " ")
                switch result {
                case .failure(let error):
                    let diagnostic = Diagnostics.diagnose(error)
                    worst = max(worst, diagnostic.status)
                    Diagnostics.print(diagnostic)
                case .success(let document):
                    printNotes(document)
                    if strict, document.notes.contains(where: \.dropsInput) {
                        worst = max(worst, .refused)
                        Diagnostics.report("\(label): refused (--strict): \(document.notes.filter(\.dropsInput).count) part(s) of the input were not read into the model")
                        continue
                    }
                    do {
                        let loaded = try loader.load(document, file: label)
                        print("\(TerminalText.escape(label)): ok (\(loaded.spec.domains.count) domains)")
                    } catch {
                        worst = max(worst, .refused)
                        // One line per problem, each naming the file and node.
                        for line in error.lines { Diagnostics.report(line) }
                    }
                }
            }
            if worst != .success { throw ExitCode(worst.rawValue) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the model a description decodes to, or draw the system (--dot, --svg, --png).",
            discussion: """
                The picture has one node per domain (type, domid, memory, vCPUs, capabilities, start \
                position, modules), each cpupool as a cluster, each PV device as an edge from the \
                frontend to the backend domain, static event channels as dashed edges and shared \
                memory as notes; the Xenstore domain has a double border. Drawing needs a valid \
                description. --svg and --png run Graphviz's dot (Debian package graphviz).
                """ + "\n\n" + ExitStatus.help(success: "the description was read (and drawn)", refused: "it is malformed, or invalid when drawing"))

        @Argument(help: "Description file.") var file: String
        @Flag(help: "Print the model as JSON (sorted keys).") var json = false
        @OptionGroup var picture: PictureOptions
        @OptionGroup var input: LaunchInputOptions

        func validate() throws {
            guard !(json && picture.isDrawing) else { throw ValidationError("give --json or a picture, not both") }
        }

        func run() throws {
            let document = try loadOrFail(file, options: try input.loadOptions())
            if picture.isDrawing {
                // The picture shows the start order and resolved devices: a valid system only.
                let launch = try validatedOrFail(document, file: file)
                let title = "launch description \(file.split(separator: "/").last.map(String.init) ?? file)"
                return try picture.write(LaunchTopology.dot(launch, title: title, moduleLabel: LaunchTopology.fileLabel), inputs: [file])
            }
            if json {
                print(try jsonText(document.spec, format: LaunchSpec.jsonFormat))
                return
            }
            let spec = document.spec
            if spec.staticMode { print("static mode: no domain keeps the control capability") }
            for pool in spec.cpupools {
                print("cpupool \(pool.name): cpus \(pool.cpus.map(String.init).joined(separator: ",")) sched \(pool.scheduler ?? "default")")
            }
            for domain in spec.domains {
                let caps = DomainCapabilities.names.filter { domain.capabilities.contains($0.1) }.map(\.0)
                var line = "domain \(domain.name): \(domain.type.rawValue)\(domain.is64Bit ? "" : "32")"
                line += " domid \(domain.domid.map(String.init) ?? "auto") memory \(domain.memoryKiB / 1024) MiB vcpus \(domain.vcpus)"
                if let pool = domain.cpupool { line += " pool \(pool)" }
                if !caps.isEmpty { line += " caps \(caps.joined(separator: ","))" }
                if domain.isBootDomain { line += " boot-domain" }
                if !domain.startOnBoot { line += " paused" }
                print(line)
                for module in domain.modules {
                    print("  \(module.kind.rawValue): \(module.path)\(module.bootargs.map { " \"\($0)\"" } ?? "")")
                }
                for device in domain.devices {
                    let settings = device.settings.namedSettings.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
                    print("  \(device.kind)\(device.devid.map { " \($0)" } ?? "") ← \(device.backend)\(settings.isEmpty ? "" : " \(settings)")")
                }
            }
            for channel in spec.eventChannels {
                print("evtchn \(channel.local.domain):\(channel.local.port) ↔ \(channel.remote.domain):\(channel.remote.port)")
            }
            for region in spec.sharedMemory {
                print("shm \(region.id) in \(region.domain): guest 0x\(String(region.guestAddress, radix: 16)) size 0x\(String(region.size, radix: 16)) \(region.role.rawValue)")
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a valid description in the canonical form (docs/binding.md), as DTS or DTB.",
            discussion: ExitStatus.help(success: "the description was written", refused: "it is malformed or invalid (nothing is written)"))

        @Argument(help: "Description file.") var file: String
        @Flag(help: "Write device-tree source.") var dts = false
        @Flag(help: "Write a device-tree blob.") var dtb = false
        @Option(name: .shortAndLong, help: "Output file; - or /dev/stdout writes to standard output.") var output: String
        @OptionGroup var input: LaunchInputOptions

        func validate() throws {
            guard dts != dtb else { throw ValidationError("give exactly one of --dts or --dtb") }
        }

        func run() throws {
            var document = try loadOrFail(file, options: try input.loadOptions())
            printNotes(document)
            document.spec = LaunchFile.rebase(document.spec, from: document.baseDirectory, to: outputDirectory(output))
            try write(try validatedOrFail(document, file: file), to: output, asDTB: dtb, inputs: [file])
        }
    }

    struct ImportXL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-xl",
            abstract: "Import xl.cfg domain files into one launch description (.dts or .dtb by -o's extension).",
            discussion: """
                Each file is read as xl 4.17 reads it (libxlutil, then xl_parse.c's rules); a key xl reads that \
                the launch model cannot carry is refused with its line. --libxl-json prints, for one file, the \
                libxl_domain_config domb would hand libxl, in libxl's own JSON (what `xl -N create FILE` prints). \
                --compare-xl compares that with xl's output: a file for one xl.cfg, or a directory holding \
                NAME.json for each NAME.cfg (none where xl refused the file); one line per finding, exit 1 if \
                any field differs, or domb accepts a file xl refused.
                """ + "\n\n"
                + ExitStatus.help(
                    success: "the description was written, or --compare-xl found no difference",
                    refused: "an xl.cfg file is malformed, the system is invalid, --strict and a key was not imported (nothing is written), or --compare-xl found a difference"))

        @Argument(help: "xl.cfg files, one domain each.") var files: [String]
        @Option(name: .shortAndLong, help: "Output file (.dts or .dtb); - or /dev/stdout writes DTS to standard output.")
        var output: String?
        @Flag(help: "Treat ignored and unknown xl.cfg keys as errors.") var strict = false
        @Flag(name: .customLong("libxl-json"), help: "Print the libxl_domain_config of one file as libxl's JSON.")
        var libxlJSON = false
        @Option(name: .customLong("compare-xl"), help: "Compare with `xl -N create`'s output: a file, or a directory of NAME.json.")
        var compareXL: String?
        @Option(name: .customLong("host-cpus"), help: "The host's CPU count, for CPU maps of \"all\" (default: libxl's, on Xen).")
        var hostCPUs: Int?
        @Option(
            name: .customLong("host-numa"),
            help: ArgumentHelp(
                "A NUMA node of the host and its CPUs, for `nodes:` CPULIST terms (repeatable; default: libxl's nodes on Xen, else this host's /sys/devices/system/node).",
                valueName: "NODE=CPULIST"))
        var hostNUMA: [String] = []

        func validate() throws {
            if libxlJSON || compareXL != nil {
                guard output == nil else { throw ValidationError("--libxl-json and --compare-xl write no -o") }
                guard files.count == 1 || (compareXL != nil && !libxlJSON) else {
                    throw ValidationError("--libxl-json takes one file; --compare-xl DIRECTORY takes several")
                }
            } else if output == nil {
                throw ValidationError("give -o OUTPUT (.dts or .dtb), or --libxl-json")
            }
            if let hostCPUs, !(1...Int(LaunchLimits.maxCPU) + 1).contains(hostCPUs) {
                throw ValidationError("--host-cpus takes 1 to \(LaunchLimits.maxCPU + 1)")
            }
        }

        func run() throws {
            guard let output else { return try libxl() }
            var documents: [LaunchDocument] = []
            for file in files { documents.append(try loadOrFail(file, format: .xl)) }
            var document = LaunchDocument.combining(documents)
            printNotes(document)
            if strict, let dropped = document.notes.first(where: \.dropsInput) {
                throw CommandError("refusing to write \(output): --strict, and \(dropped.key.map { "\"\($0)\"" } ?? "a key") was not imported")
            }
            document.spec = LaunchFile.rebase(document.spec, from: document.baseDirectory, to: outputDirectory(output))
            try write(try validatedOrFail(document, file: output), to: output, asDTB: output.lowercased().hasSuffix(".dtb"), inputs: files)
        }

        /// --libxl-json, or --compare-xl with `xl -N create`'s output. One line per finding,
        /// each starting with the file.
        private func libxl() throws {
            let hostCPUs = self.hostCPUs ?? Libxl.hostCPUsOnXen()
            // Read only when a file names nodes: given, else libxl's on Xen, else Linux's sysfs.
            var hostNodes: NUMANodeMap?
            func nodes() throws -> NUMANodeMap {
                if let hostNodes { return hostNodes }
                let map = try hostNUMA.isEmpty ? (Libxl.numaNodesOnXen() ?? NUMANodeMap(sysfs: "/sys/devices/system/node")) : NUMANodeMap(entries: hostNUMA)
                hostNodes = map
                return map
            }
            var directory: String?
            if let compareXL {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: compareXL, isDirectory: &isDirectory), isDirectory.boolValue {
                    directory = compareXL
                } else if files.count > 1 {
                    Diagnostics.report("\(compareXL): not a directory; several files compare with a directory of NAME.json")
                    throw ExitCode.failure
                }
            }
            var failed = false
            for file in files {
                let shown = TerminalText.escape(file)
                let xlOutput = directory.map { "\($0)/\(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent).json" }
                    ?? compareXL
                let xlRefused = xlOutput.map { !FileManager.default.fileExists(atPath: $0) } ?? false
                let json: String
                let uuidGiven: Bool
                do {
                    let (domain, notes) = try LaunchFile.loadXLDomain(file)
                    for note in notes { FileHandle.standardError.write(Data("note: \(TerminalText.escape("\(note)"))\n".utf8)) }
                    let namesNodes = [domain.cpuAffinity, domain.softCPUAffinity].contains { $0?.namesNodes == true }
                    json = try LibxlDomainConfig(describing: domain, hostCPUs: hostCPUs, nodes: namesNodes ? try nodes() : nil).json()
                    uuidGiven = domain.uuid != nil
                } catch {
                    // The message without the file name ContextError puts in front.
                    let message = (error as? ContextError).map { "\($0.underlying)" } ?? "\(error)"
                    print("\(shown): refused: \(TerminalText.escape(String(message.split(separator: "\n").first ?? "")))")
                    Diagnostics.print(Diagnostics.diagnose(error))
                    failed = failed || !xlRefused || compareXL == nil
                    continue
                }
                guard let xlOutput else {
                    print(json)
                    continue
                }
                guard !xlRefused else {
                    print("\(shown): xl refuses it, domb accepts it")
                    failed = true
                    continue
                }
                do {
                    let result = LibxlConfigComparison.compare(
                        xl: try JSONValue(parsing: try LaunchFile.readFile(xlOutput)),
                        domb: try JSONValue(parsing: Array(json.utf8)), uuidGiven: uuidGiven)
                    for accepted in result.accepted { print("\(shown): accepted: \(TerminalText.escape(accepted.description))") }
                    for difference in result.differences { print("\(shown): differs: \(TerminalText.escape(difference.description))") }
                    print(result.matches ? "\(shown): matches xl" : "\(shown): \(result.differences.count) fields differ from xl")
                    failed = failed || !result.matches
                } catch {
                    Diagnostics.report("\(xlOutput): \(error)")
                    failed = true
                }
            }
            if failed { throw ExitCode.failure }
        }
    }
}

/// What was dropped or read differently, on standard error (text from the file: escaped).
private func printNotes(_ document: LaunchDocument) {
    for note in document.notes { FileHandle.standardError.write(Data("note: \(TerminalText.escape("\(note)"))\n".utf8)) }
}

private func loadOrFail(_ file: String, format: LaunchFile.Format? = nil, options: LaunchLoadOptions = LaunchLoadOptions()) throws -> LaunchDocument {
    try LaunchFile.load(file, format: format, options: options)
}

private func validatedOrFail(_ document: LaunchDocument, file: String) throws -> ValidatedLaunch {
    try document.validated(file: file)
}

/// Where module paths of a written description are relative to: the output's directory,
/// or the current directory when it goes to standard output.
private func outputDirectory(_ output: String) -> String {
    OutputTarget.standardOutputNames.contains(output) ? FileManager.default.currentDirectoryPath : directory(of: output)
}

private func directory(of path: String) -> String {
    URL(fileURLWithPath: path).deletingLastPathComponent().path
}

/// Writes atomically under the output policy (``AtomicFile``), or straight to standard
/// output for `-` and `/dev/stdout`.
private func write(_ launch: ValidatedLaunch, to output: String, asDTB: Bool, inputs: [String]) throws {
    let bytes = try ContextError.wrap(output) {
        asDTB ? try LaunchEncoder.dtb(launch) : Array(try LaunchEncoder.dts(launch).utf8)
    }
    if try OutputTarget.writeThrough(bytes, to: output) { return }
    try AtomicFile.write(bytes, to: output, inputs: inputs)
}
