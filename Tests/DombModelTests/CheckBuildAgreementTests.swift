//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

/// `domb config check --images` accepts exactly the descriptions `domb build` accepts,
/// and refuses the others with the same problems: both commands, run as a user runs them,
/// over every launch description in the repository — the examples, the test fixtures (the
/// trees written for upstream Xen with their `--module` options), the fuzz seed corpora,
/// broken variants of the example — and over each of them again with its module files
/// replaced by real test guests (so that images are not why both refuse).
@Suite(.serialized) struct CheckBuildAgreementTests {
    /// What a command said about a description.
    struct Verdict: Equatable, CustomStringConvertible {
        var accepted: Bool
        /// The problems, one per line, without the command's framing.
        var problems: [String]
        var description: String { accepted ? "accepted" : "refused: \(problems.joined(separator: " | "))" }
    }

    struct MissingFile: Error, CustomStringConvertible { var description: String }

    static let descriptionExtensions: Set<String> = ["dts", "dtb", "cfg", "xl", "json"]

    /// Every launch description of the repository.
    static func corpus() throws -> [String] {
        var files: [String] = []
        let roots = ["examples", "Tests", "FuzzTesting/Seeds/FuzzLaunchDTB", "FuzzTesting/Seeds/FuzzXLConfig"]
        for root in roots {
            let base = "\(Repository.root)/\(root)"
            guard let walker = FileManager.default.enumerator(atPath: base) else { continue }
            for case let relative as String in walker {
                let url = URL(fileURLWithPath: "\(base)/\(relative)")
                let isSeed = root.hasPrefix("FuzzTesting")
                // Tests/ holds JSON that is not a launch description (quotes, plans): only its DT and xl files.
                let ext = url.pathExtension.lowercased()
                guard isSeed || (descriptionExtensions.contains(ext) && !(root == "Tests" && ext == "json")) else { continue }
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                    continue
                }
                files.append(url.path)
            }
        }
        return files.sorted()
    }

    /// Broken variants of examples/system.dts (the invalid-description cases).
    static func brokenVariants(in directory: TemporaryDirectory) throws -> [String] {
        let text = try String(contentsOfFile: "\(Repository.root)/examples/system.dts", encoding: .utf8)
        return try invalidDTSCases.enumerated().map { index, testCase in
            var broken = text
            for (from, to) in testCase.edits { broken = broken.replacingOccurrences(of: from, with: to) }
            return try directory.write("broken-\(index).dts", broken)
        }
    }

    /// A line without the diagnostic's command prefix ("domb config check: ", "domb build: ").
    static func withoutCommand(_ line: String, _ command: String) -> String {
        line.hasPrefix("domb \(command): ") ? String(line.dropFirst("domb \(command): ".count)) : line
    }

    static func check(_ file: String, _ arguments: [String] = []) throws -> Verdict {
        let result = try DombBinary.run(["config", "check", "--images", file] + arguments)
        let lines = result.stderrText.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("note: ") }
        return Verdict(accepted: result.status == 0, problems: lines.map { withoutCommand($0, "config check") })
    }

    static func build(_ file: String, _ arguments: [String] = [], key: String, output: String) throws -> Verdict {
        let result = try DombBinary.run(["build", file, "--key", key, "-o", output] + arguments)
        defer { try? FileManager.default.removeItem(atPath: output) }
        guard result.status != 0 else { return Verdict(accepted: true, problems: []) }
        var lines = result.stderrText.split(separator: "\n").map(String.init)
        if let first = lines.first { lines[0] = withoutCommand(first, "build") }
        // A validation failure is a heading and one indented line per problem.
        if let first = lines.first, first.hasPrefix("the launch description is invalid") {
            lines = lines.dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return Verdict(accepted: false, problems: lines)
    }

    /// The description with every module file replaced by a test guest that fits its kind
    /// and its domain's mode, as the JSON model (nil if the description does not load).
    static func withTestImages(
        _ file: String, options: LaunchLoadOptions, in directory: TemporaryDirectory, index: Int
    ) throws -> String? {
        guard let spec = try? LaunchFile.load(file, options: options).spec else { return nil }
        return try withTestImages(spec, in: directory, index: index)
    }

    static func withTestImages(_ spec: LaunchSpec, in directory: TemporaryDirectory, index: Int) throws -> String {
        var spec = spec
        let images = try GuestImages.directory()
        let hvmloader = "/usr/lib/xen-4.17/boot/hvmloader"
        guard FileManager.default.fileExists(atPath: hvmloader) else {
            throw MissingFile(description: "\(hvmloader) is missing: run `apt-get install xen-utils-4.17`")
        }
        let anyFile = try directory.write("module-\(index).bin", "not empty\n")
        for d in spec.domains.indices {
            for m in spec.domains[d].modules.indices {
                let module = spec.domains[d].modules[m]
                let path: String
                switch module.kind {
                case .kernel: path = spec.domains[d].type == .pvh ? "\(images)/pvh-kernel.elf" : "\(images)/pv-kernel.elf"
                case .ramdisk: path = "\(images)/ramdisk.cpio.gz"
                case .firmware: path = hvmloader
                case .config, .deviceTree: path = anyFile
                }
                // An empty or otherwise invalid path stays as it is: it is not about images.
                if !module.path.isEmpty { spec.domains[d].modules[m].path = path }
            }
        }
        return try directory.write("variant-\(index).json", Array(try JSONEncoder().encode(spec)))
    }

    @Test func checkWithImagesAcceptsExactlyWhatBuildAccepts() throws {
        let directory = try TemporaryDirectory()
        let key = try TestPKI.shared().key("p256")
        let files = try Self.corpus() + Self.brokenVariants(in: directory)
        #expect(files.count >= 40, "\(files)")
        var agreed = (accepted: 0, refused: 0)
        var variants: [String] = []
        // Trees written for upstream Xen are read with their --module options (stand-in images).
        let standIns = try UpstreamFixtures.standIns(in: directory)
        var arguments: [String: [String]] = [:]
        for file in files { arguments[file] = try UpstreamFixtures.arguments(for: file, standIns: standIns) }
        var upstreamAccepted = 0
        for (index, file) in files.enumerated() {
            let options = try UpstreamFixtures.options(for: file, standIns: standIns)
            if let variant = try Self.withTestImages(file, options: options, in: directory, index: index) { variants.append(variant) }
        }
        // xl.cfg files describe one domain each: the examples' files together are one system.
        let xlFiles = files.filter { $0.hasPrefix("\(Repository.root)/examples/xl/") && $0.hasSuffix(".cfg") }
        let system = try LaunchFile.loadGroups(xlFiles).first { $0.files.count == xlFiles.count }?.result.get().spec
        variants.append(try Self.withTestImages(try #require(system), in: directory, index: files.count))
        for file in files + variants {
            let check = try Self.check(file, arguments[file] ?? [])
            let build = try Self.build(file, arguments[file] ?? [], key: key, output: directory.file("out.bundle"))
            #expect(check == build, "\(file): config check --images \(check), build \(build)")
            if check == build {
                if check.accepted { agreed.accepted += 1 } else { agreed.refused += 1 }
                if check.accepted && !(arguments[file] ?? []).isEmpty { upstreamAccepted += 1 }
            }
        }
        // Both sides of the agreement are exercised: with real images most descriptions build.
        #expect(agreed.accepted >= 10, "\(agreed)")
        #expect(agreed.refused >= 30, "\(agreed)")
        // The upstream examples build as they are (their modules through --module).
        #expect(upstreamAccepted >= 8, "\(upstreamAccepted) upstream trees accepted by both")
    }

    /// The issue's example: xl's `discard` disk flag is a setting of the model, so both
    /// accept it (with images), and both refuse the same unknown flag.
    @Test func xlDiscardFlagAgrees() throws {
        let directory = try TemporaryDirectory()
        let images = try GuestImages.directory()
        let key = try TestPKI.shared().key("p256")
        for (flag, accepted) in [("discard", true), ("no-discard", true), ("direct-io-safe", true), ("discard-please", false)] {
            let file = try directory.write(
                "\(flag).cfg",
                """
                name = "guest"
                type = "pvh"
                kernel = "\(images)/pvh-kernel.elf"
                memory = 64
                disk = [ '/dev/vg0/guest,raw,xvda,rw,\(flag)' ]
                """)
            let check = try Self.check(file)
            let build = try Self.build(file, key: key, output: directory.file("out.bundle"))
            #expect(check == build, "\(flag): check \(check), build \(build)")
            #expect(check.accepted == accepted, "\(flag): \(check)")
        }
    }
}
