//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFDT
import DombFiles
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
            abstract: "Validate launch descriptions (.dts, .dtb, xl.cfg); one line per problem, non-zero exit if any.")

        @Argument(help: "Description files.") var files: [String]
        @Flag(help: "Also inspect every module file: it must exist and boot in its domain's mode (PVH needs PHYS32_ENTRY…).")
        var images = false

        func run() throws {
            var failed = false
            // xl.cfg files each describe one domain: together they are one system.
            var xlDocuments: [LaunchDocument] = []
            var xlFiles: [String] = []
            var checks: [(String, LaunchDocument)] = []
            for file in files {
                do {
                    let document = try LaunchFile.load(file)
                    if let bytes = try? LaunchFile.readFile(file), LaunchFile.format(of: file, bytes: bytes) == .xl {
                        xlDocuments.append(document)
                        xlFiles.append(file)
                    } else {
                        checks.append((file, document))
                    }
                } catch {
                    failed = true
                    printError("\(error)")
                }
            }
            if !xlDocuments.isEmpty {
                checks.append((xlFiles.joined(separator: " "), LaunchDocument.combining(xlDocuments)))
            }
            for (file, document) in checks {
                for note in document.notes { printError("note: \(note)") }
                // xl.cfg paths are taken as written (xl resolves them against the current directory).
                let base = xlFiles.joined(separator: " ") == file ? "." : directory(of: file)
                let problems = document.spec.validate(imageChecker: images ? LaunchImageChecker(baseDirectory: base) : nil)
                if problems.isEmpty {
                    print("\(file): ok (\(document.spec.domains.count) domains)")
                } else {
                    failed = true
                    for problem in problems { printError(document.describe(problem, file: file)) }
                }
            }
            if failed { throw ExitCode.failure }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the model a description decodes to.")

        @Argument(help: "Description file.") var file: String
        @Flag(help: "Print the model as JSON (sorted keys).") var json = false

        func run() throws {
            let document = try loadOrFail(file)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(document.spec), as: UTF8.self))
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
                    let settings = device.settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                    print("  \(device.kind.rawValue)\(device.devid.map { " \($0)" } ?? "") ← \(device.backend)\(settings.isEmpty ? "" : " \(settings)")")
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
            abstract: "Write a valid description in the canonical form (docs/binding.md), as DTS or DTB.")

        @Argument(help: "Description file.") var file: String
        @Flag(help: "Write device-tree source.") var dts = false
        @Flag(help: "Write a device-tree blob.") var dtb = false
        @Option(name: .shortAndLong, help: "Output file; - or /dev/stdout writes to standard output.") var output: String

        func validate() throws {
            guard dts != dtb else { throw ValidationError("give exactly one of --dts or --dtb") }
        }

        func run() throws {
            let document = try loadOrFail(file)
            for note in document.notes { printError("note: \(note)") }
            try refuseInvalid(document, file: file)
            let spec = LaunchFile.rebase(document.spec, from: directory(of: file), to: outputDirectory(output))
            try write(spec, to: output, asDTB: dtb, inputs: [file])
        }
    }

    struct ImportXL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-xl",
            abstract: "Import xl.cfg domain files into one launch description (.dts or .dtb by -o's extension).")

        @Argument(help: "xl.cfg files, one domain each.") var files: [String]
        @Option(name: .shortAndLong, help: "Output file (.dts or .dtb); - or /dev/stdout writes DTS to standard output.") var output: String
        @Flag(help: "Treat ignored and unknown xl.cfg keys as errors.") var strict = false

        func run() throws {
            var spec = LaunchSpec()
            var origins: [String: String] = [:]
            var dropped = false
            for file in files {
                let document = try loadOrFail(file, format: .xl)
                for note in document.notes {
                    printError("note: \(note)")
                    if !note.contains("remark key") { dropped = true }
                }
                let rebased = LaunchFile.rebase(document.spec, from: directory(of: file), to: outputDirectory(output))
                spec.domains += rebased.domains
                for domain in rebased.domains { origins[domain.name] = file }
            }
            if strict && dropped {
                printError("refusing to write \(output): --strict and some keys were not imported")
                throw ExitCode.failure
            }
            try refuseInvalid(LaunchDocument(spec: spec, origins: origins), file: output)
            try write(spec, to: output, asDTB: output.lowercased().hasSuffix(".dtb"), inputs: files)
        }
    }
}

private func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

private func loadOrFail(_ file: String, format: LaunchFile.Format? = nil) throws -> LaunchDocument {
    do {
        if format == .xl {
            let bytes = try ContextError.wrap(file) { try LaunchFile.readFile(file) }
            let imported = try ContextError.wrap(file) { try XLImport(parsing: bytes) }
            return LaunchDocument(
                spec: LaunchSpec(domains: [imported.domain]), origins: [imported.domain.name: file],
                notes: imported.notes.map { "\(file): \($0)" })
        }
        return try LaunchFile.load(file)
    } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
}

private func refuseInvalid(_ document: LaunchDocument, file: String) throws {
    let problems = document.spec.validate()
    guard problems.isEmpty else {
        for problem in problems { printError(document.describe(problem, file: file)) }
        throw ExitCode.failure
    }
}

/// Where module paths of a written description are relative to: the output's directory,
/// or the current directory when it goes to standard output.
private func outputDirectory(_ output: String) -> String {
    OutputTarget.standardOutputNames.contains(output) ? FileManager.default.currentDirectoryPath : directory(of: output)
}

private func directory(of path: String) -> String {
    let url = URL(fileURLWithPath: path)
    return url.deletingLastPathComponent().path
}

/// Writes atomically under the output policy (``AtomicFile``), or straight to standard
/// output for `-` and `/dev/stdout`.
private func write(_ spec: LaunchSpec, to output: String, asDTB: Bool, inputs: [String]) throws {
    let bytes: [UInt8]
    do {
        bytes = asDTB ? try LaunchEncoder.dtb(spec) : Array(try LaunchEncoder.dts(spec).utf8)
    } catch {
        printError("\(output): \(error)")
        throw ExitCode.failure
    }
    do {
        if try OutputTarget.writeThrough(bytes, to: output) { return }
        try AtomicFile.write(bytes, to: output, inputs: inputs)
    } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
}
