//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCLI
import DombCore
import DombTestSupport
import Foundation
import Testing

/// The words of a synopsis and the sandbox value each stands for: the one table that maps
/// what the docs write to what the tests have. A key is a word, or `OPTION WORD` for a word
/// that means something else after that option (looked up first). The values are what the
/// parser accepts (a number where it wants a number) and, where the sandbox has one, the
/// sandbox's file, so that a variant run there gets as far as it can.
enum DocPlaceholders {
    static let values: [String: String] = [
        "BUNDLE": "launch.bundle", "CONFIG": "launch.dts", "KEY": "signer.key", "CERT.pem": "signer.pem",
        "CHAIN.pem": "chain.pem", "PCRS.json": "policies/pcr-policy.json", "BANKS": "sha256", "TEXT": "storage",
        "--string TEXT": "hello", "N": "7", "--pcr N": "12", "--max-attempts N": "4", "DIR": "trust",
        "--lock-dir DIR": "/run/domb", "--trust FILE": "trust/ca.pem", "--cert FILE": "signer.pem",
        "--pubkey FILE": "signer.pub.pem", "--pcrs FILE": "pcrs.txt", "FILE": "images/out/pv-kernel.elf",
        "NEWDIR": "extracted", "OUT": "launch.svg", "EPOCH": "1767225600", "TCTI": "$TPM2TOOLS_TCTI",
        "PATH": "/run/domb/eventlog.bin", "--root PATH": "/", "SECONDS": "30", "HEX": String(repeating: "ab", count: 20),
        "LOG": "/run/domb/eventlog.bin", "D": "dom0", "R": "kernel", "PLAN": "plan.json", "VALUES.json": "values.json",
        "LISTING": "listing.txt", "GLOB": "/vm/*/image/kernel", "IMAGE": "images/out/pv-kernel.elf",
        "--trust …": "/etc/domb/trust", "--cert …": "signer.pem", "--pubkey …": "signer.pub.pem", "--key …": "signer.key",
        "--pcr-key …": "pcr-policy.key",
    ]

    /// Environment variables a doc line uses, as the sandbox sets them (the sandbox adds
    /// `TPM2TOOLS_TCTI`, its swtpm; the parse-only check uses the one given here).
    static let environment: [String: String] = [
        "NONCE": String(repeating: "ab", count: 20), "UUID": "d432fbb3-d2f1-4a97-9ef7-75bd81c00000",
        "TPM2TOOLS_TCTI": "swtpm:host=127.0.0.1,port=2321",
    ]

    /// An all-capital word (`BUNDLE`, `TCTI`, `N`) or a key of the table.
    static func isPlaceholder(_ word: String) -> Bool {
        if values[word] != nil { return true }
        return word.contains { $0.isUppercase } && word.allSatisfy { $0.isUppercase || $0.isNumber || $0 == "_" }
    }

    struct Unknown: Error, CustomStringConvertible {
        var word: String
        var description: String { "`\(word)` is a placeholder the table of DocPlaceholders does not know: add it" }
    }

    /// `words` (a synopsis variant without its leading `domb`) with every placeholder replaced,
    /// quotes removed and the `$VARIABLE`s of `environment` expanded: the argument vector.
    static func arguments(_ words: [String], environment: [String: String] = environment) throws -> [String] {
        var result: [String] = []
        for (index, word) in words.enumerated() {
            let previous = index > 0 ? words[index - 1] : ""
            if word == "…" {
                if let value = values["\(previous) …"] {
                    result.append(value)
                } else if index != words.count - 1 {
                    throw Unknown(word: "\(previous) …")
                }
                continue
            }
            var unquoted = word
            if let value = values["\(previous) \(word)"] ?? values[word] {
                unquoted = value
            } else if isPlaceholder(word) {
                throw Unknown(word: word)
            } else if let first = word.first, first == "'" || first == "\"", word.count >= 2, word.last == first {
                unquoted = String(word.dropFirst().dropLast())
            }
            for (name, value) in environment { unquoted = unquoted.replacingOccurrences(of: "$\(name)", with: value) }
            result.append(unquoted)
        }
        return result
    }
}

/// A doc example that cannot succeed on this machine, and the reason. The line still runs,
/// and must fail with `expected` on standard error (never a usage error); an entry that no
/// longer matches a failing doc line fails the test, so the list cannot rot.
struct EnvironmentalLine: Sendable {
    /// The page.
    var file: String
    /// The command exactly as extracted (``DocCommandLine/text``).
    var command: String
    /// A part of what domb prints (standard output or error) when it fails for the reason.
    var expected: String
    var reason: String
}

/// Every `domb …` command line of README.md and docs/*.md (rule: ``DocCommandLine``) is
/// checked against the program, so the docs cannot drift from it:
/// - every *synopsis* is expanded into its variants (``DocSynopsis``) and each is parsed by
///   the real argument parser in process (`DombCommand.parseAsRoot`, what `domb`'s `main`
///   calls, validation included) and must name a command, not a group;
/// - and each variant also runs in the page's sandbox after its examples, and must not be
///   refused as a usage error (some usage rules are only checked when a command runs);
/// - every *example* runs, in page order, in a sandbox prepared as a user would have it
///   (below), and must exit 0 — or be on ``environmental`` and fail for that reason;
/// - what the page shows an example printing (a `$ ` transcript, or `#   ` lines after it)
///   must be what it prints, line by line in order (``DocCommandLine/missingShownLine``).
///
/// The sandbox, one per page: a directory holding the demo (examples/demo/launch.dts and the
/// test guests at images/out, as in the repository), `launch.dts` (the demo with its module
/// paths made relative to the sandbox), `Tests` (the repository's, for lines that read its
/// fixtures from the repository root), `signer.key`/`signer.pem`/`signer.pub.pem` (a P-256
/// code-signing key of the test CA; `signer.pub` too) and `trust/` (the CA), `launch.bundle`
/// (the demo, built and signed with it), `demo.bundle` (the demo in four banks with a
/// raw signature, as docs/bundle.md shows it), `launch-v2.dts` (the next release), `dom0less.dts` (docs/binding.md's
/// tree, with stand-in images), `plan.json` (the demo's Xenstore plan), a swtpm with every
/// bank active (docs/keylime.md: a manufactured one, with EK certificates) named by
/// `TPM2TOOLS_TCTI` as the README tells users, and for docs/secrets.md the SoftHSM token
/// its step 1 makes. Each line runs with
/// `bash` in a private mount namespace where the sandbox's `run/` is `/run` (so defaults
/// such as `/run/domb/eventlog.bin` land there); `/etc/domb` and `/var/lib/domb` in a line
/// are the sandbox's `etc/domb` and `var/lib/domb`; `domb` is the built binary on `PATH`.
@Suite struct DocCommandLineTests {
    /// The examples that cannot succeed here. Keep it short; each says why.
    static let environmental: [EnvironmentalLine] = [
        EnvironmentalLine(
            file: "docs/xenstore.md", command: "domb xenstore compare plan.json listing.txt", expected: "no value for ${uuid:",
            reason: "listing.txt is `xenstore-ls -f -p` on a Xen host running the launch; the sandbox's is from a host without it"),
        EnvironmentalLine(
            file: "docs/xenstore.md", command: "domb xenstore compare plan.json listing.txt --running", expected: "no value for ${uuid:",
            reason: "listing.txt is `xenstore-ls -f -p` on a Xen host running the launch; the sandbox's is from a host without it"),
    ]

    /// Pages whose examples run (every page with a command line).
    static func pagesWithCommands() throws -> [String] {
        Array(Set(try DocCommandLine.all().map(\.file))).sorted()
    }

    // MARK: - The extraction itself

    @Test func extractionFollowsItsRule() {
        let page = """
            Prose mentioning `domb build X` is not a command line.
            ```sh
            $ domb build a.dts --key k.pem \\
                 -o b.bundle   # a comment
            domb boot BUNDLE [--tpm TCTI]
                      [--json]
            #   verified: output shown
            tpm2_pcrread sha256:12 # domb is mentioned here but not run
            keylime_tenant --tpm_policy "$(domb keylime policy b.bundle --trust t/)" -c add
            ```
            ```
            $ domb log show x.bin
             #  PCR
              indented output, not a continuation
            $ domb log replay x.bin
            ```
            domb outside a block
            """
        let lines = DocCommandLine.extract(file: "x.md", text: page)
        #expect(lines.map(\.text) == [
            "domb build a.dts --key k.pem -o b.bundle", "domb boot BUNDLE [--tpm TCTI] [--json]",
            "domb keylime policy b.bundle --trust t/", "domb log show x.bin", "domb log replay x.bin",
        ])
        #expect(lines.map(\.line) == [3, 5, 9, 12, 15])
        #expect(lines.map(\.isSynopsis) == [false, true, false, false, false])
        #expect(lines[1].shownOutput == ["verified: output shown"])
        #expect(lines[3].shownOutput == [" #  PCR", "  indented output, not a continuation"])
    }

    @Test func shownOutputIsMatchedLineByLineInOrder() {
        let printed = "format: crypto-agile\n\n #  PCR  TYPE   \n 1    0  EV_S_CRTM_VERSION\n 2    0  EV_SEPARATOR\nkey fingerprint 4757ab5f28, TPM name 000b\n"
        #expect(DocCommandLine.missingShownLine(["format: crypto-agile", "", " #  PCR  TYPE", "…"], in: printed) == nil)
        #expect(DocCommandLine.missingShownLine(["  key fingerprint 4757…5f28, TPM name 000b…"], in: printed) == nil)
        #expect(DocCommandLine.missingShownLine([" 2    0  EV_SEPARATOR", " 1    0  EV_S_CRTM_VERSION"], in: printed) == " 1    0  EV_S_CRTM_VERSION")
        #expect(DocCommandLine.missingShownLine(["format: crypto-agile, v2"], in: printed) == "format: crypto-agile, v2")
        #expect(DocCommandLine.missingShownLine(["key hash 4757…"], in: printed) == "key hash 4757…")
    }

    @Test func synopsisVariantsCoverEveryOptionAndAlternative() throws {
        let variants = try DocSynopsis.variants(
            "domb boot BUNDLE (--trust DIR | --cert FILE) [--backend libxl [--supervise] | --backend plan] [--banks sha1,sha256,...] FILE...")
        #expect(variants == [
            ["domb", "boot", "BUNDLE", "--trust", "DIR", "FILE"],
            ["domb", "boot", "BUNDLE", "--trust", "DIR", "--backend", "libxl", "--supervise", "--banks", "sha1,sha256", "FILE"],
            ["domb", "boot", "BUNDLE", "--cert", "FILE", "--backend", "plan", "--banks", "sha1,sha256", "FILE"],
        ])
        #expect(try DocSynopsis.variants("domb x [--a b|c]") == [["domb", "x"], ["domb", "x", "--a", "b"], ["domb", "x", "--a", "c"]])
        #expect(throws: DocSynopsis.GrammarError.self) { try DocSynopsis.variants("domb x [--a") }
    }

    /// The control: the checks refuse what is wrong (an unknown option, a missing argument,
    /// a group without its command), so a passing run means something.
    @Test func theParserCheckRefusesWhatIsWrong() throws {
        for wrong in ["domb bundle verify launch.bundle --trusted trust/", "domb bundle verify", "domb bundle", "domb bundel show x"] {
            let words = try #require(try DocSynopsis.variants(wrong).first)
            #expect(Self.parse(words) != nil, "\(wrong) was accepted")
        }
        #expect(Self.parse(["domb", "bundle", "verify", "x", "--trust", "t"]) == nil)
    }

    // MARK: - Synopses

    /// Why `words` (`domb …`) is not a command line the parser accepts, or nil.
    static func parse(_ words: [String]) -> String? {
        let arguments: [String]
        do {
            arguments = try DocPlaceholders.arguments(Array(words.dropFirst()))
        } catch {
            return "\(error)"
        }
        do {
            let command = try DombCommand.parseAsRoot(arguments)
            let type = type(of: command)
            if !type.configuration.subcommands.isEmpty && type.configuration.defaultSubcommand == nil {
                return "names the group `\(type.configuration.commandName ?? "?")`, not one of its commands"
            }
            return nil
        } catch {
            return DombCommand.message(for: error)
        }
    }

    @Test func everySynopsisVariantParses() throws {
        let synopses = try DocCommandLine.all().filter(\.isSynopsis)
        #expect(synopses.count >= 20, "the extraction found only \(synopses.count) synopses")
        var variants = 0
        for line in synopses {
            let expanded: [[String]]
            do {
                expanded = try DocSynopsis.variants(line.text)
            } catch {
                Issue.record("\(line): \(error)")
                continue
            }
            for words in expanded {
                variants += 1
                if let problem = Self.parse(words) {
                    Issue.record("\(line.file):\(line.line): `\(words.joined(separator: " "))` — \(problem)")
                }
            }
        }
        #expect(variants >= synopses.count)
    }

    // MARK: - Inline mentions

    /// The command tree as the real parser describes it (`domb --experimental-dump-help`,
    /// swift-argument-parser's ToolInfo JSON): each command's subcommands and long options.
    struct CommandTree {
        var name: String
        var options: Set<String>
        var subcommands: [String: CommandTree]

        init(_ object: [String: Any]) {
            name = object["commandName"] as? String ?? ""
            var options = Set<String>()
            for argument in object["arguments"] as? [[String: Any]] ?? [] {
                for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                    if let text = name["name"] as? String { options.insert(text) }
                }
            }
            self.options = options
            var subcommands: [String: CommandTree] = [:]
            for child in object["subcommands"] as? [[String: Any]] ?? [] {
                let tree = CommandTree(child)
                subcommands[tree.name] = tree
            }
            self.subcommands = subcommands
        }

        /// This command's options and those of every command below it.
        var allOptions: Set<String> { subcommands.values.reduce(options) { $0.union($1.allOptions) } }

        static func load() throws -> CommandTree {
            let dump = try DombBinary.run(["--experimental-dump-help"])
            let object = try JSONSerialization.jsonObject(with: Data(dump.stdout)) as? [String: Any]
            return CommandTree(try #require(object?["command"] as? [String: Any], "no command in --experimental-dump-help"))
        }
    }

    /// Why the mention `text` (`domb …`) names a command or option that does not exist, or nil.
    /// The command path is the words after `domb` that are subcommands, up to the first that
    /// is not; every `--option` in the mention must belong to that command or one below it
    /// (a table cell lists several: `domb config check\|show [--dot]\|import-xl`).
    static func unknownName(in text: String, tree: CommandTree) -> String? {
        let words = text.split(separator: " ").map(String.init).dropFirst()
        var command = tree
        var path = "domb"
        for word in words {
            guard let child = command.subcommands[word] else {
                if command.subcommands.isEmpty || word.hasPrefix("-") || word.contains("|") || word == "…" || word.hasPrefix("[") {
                    break
                }
                return "`\(path)` has no command `\(word)`"
            }
            command = child
            path += " " + word
        }
        guard path != "domb" else { return "names no command" }
        let allowed = command.allOptions
        let regex = try? NSRegularExpression(pattern: "(?<![A-Za-z0-9-])--([a-z0-9][a-z0-9-]*)")
        let range = NSRange(text.startIndex..., in: text)
        for match in regex?.matches(in: text, range: range) ?? [] {
            guard let nameRange = Range(match.range(at: 1), in: text) else { continue }
            let name = String(text[nameRange])
            if !allowed.contains(name) { return "`\(path)` has no option `--\(name)`" }
        }
        return nil
    }

    @Test func everyInlineMentionNamesRealCommandsAndOptions() throws {
        let tree = try CommandTree.load()
        #expect(Self.unknownName(in: "domb boot --supervise", tree: tree) == nil)
        #expect(Self.unknownName(in: "domb boot --superviser", tree: tree) != nil, "the control: an unknown option")
        #expect(Self.unknownName(in: "domb bundel show", tree: tree) != nil, "the control: an unknown command")
        let mentions = try DocCommandLine.allInlineMentions()
        #expect(mentions.count >= 30, "the extraction found only \(mentions.count) inline mentions")
        for mention in mentions {
            if let problem = Self.unknownName(in: mention.text, tree: tree) { Issue.record("\(mention): \(problem)") }
        }
        // The fenced command lines name real options too (their parse says more; this
        // also covers the examples before they run).
        for line in try DocCommandLine.all() {
            if let problem = Self.unknownName(in: line.text, tree: tree) { Issue.record("\(line): \(problem)") }
        }
    }

    /// Options of other programs that domb's messages name (keylime_tenant's).
    static let otherProgramsOptions: Set<String> = ["mb-policy"]

    /// What domb says is documentation too: every `--option` inside a string literal of the
    /// program's sources (an error that says "give --host-cpus", a help text) is an option
    /// of some domb command. (`--host-cp-us` and `--max-decompressed-mi-b`, the parser's
    /// derived spellings, once made the errors name options that did not exist.)
    @Test func everyOptionTheProgramNamesExists() throws {
        let all = try CommandTree.load().allOptions
        #expect(all.contains("host-cpus") && all.contains("max-decompressed-mib"))
        let sources = Repository.root + "/Sources"
        let literal = try NSRegularExpression(pattern: #""((?:[^"\\]|\\.)*)""#)
        let option = try NSRegularExpression(pattern: "(?<![A-Za-z0-9-])--([a-z0-9][a-z0-9-]*)")
        var checked = 0
        for case let file as String in FileManager.default.enumerator(atPath: sources) ?? NSEnumerator()
        where file.hasSuffix(".swift") && !file.hasPrefix("DombTestSupport/") {
            let text = try String(contentsOfFile: "\(sources)/\(file)", encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = String(line)
                for match in literal.matches(in: line, range: NSRange(line.startIndex..., in: line)) {
                    guard let range = Range(match.range(at: 1), in: line) else { continue }
                    let content = String(line[range])
                    for found in option.matches(in: content, range: NSRange(content.startIndex..., in: content)) {
                        guard let nameRange = Range(found.range(at: 1), in: content) else { continue }
                        let name = String(content[nameRange])
                        checked += 1
                        if !all.contains(name) && !Self.otherProgramsOptions.contains(name) {
                            Issue.record("Sources/\(file):\(number + 1): names --\(name), which no domb command has")
                        }
                    }
                }
            }
        }
        #expect(checked >= 50, "found only \(checked) options named in the sources")
    }

    // MARK: - Examples

    /// A page's sandbox (see the type's documentation).
    final class Sandbox {
        let directory: TemporaryDirectory
        let tpm: Swtpm
        var environment: [String: String]
        var path: String { directory.path }

        init(page: String) throws {
            for tool in ["unshare", "mount", "bash"] { _ = try Tools.require(tool) }
            // The demo's HVM domain boots Xen's hvmloader, as the docs' examples do.
            try Tools.requireFile("/usr/lib/xen-4.17/boot/hvmloader", package: "xen-utils-4.17")
            let pki = try TestPKI.shared()
            let images = try GuestImages.directory()
            directory = try TemporaryDirectory(prefix: "domb-docs")
            let manager = FileManager.default
            for folder in ["bin", "run/domb", "run/keys", "examples/demo", "images", "etc/domb", "var/lib/domb/enrolled", "policies"] {
                try manager.createDirectory(atPath: directory.file(folder), withIntermediateDirectories: true)
            }
            // Lines written for the repository root read its fixtures (read only).
            try manager.createSymbolicLink(atPath: directory.file("Tests"), withDestinationPath: Repository.root + "/Tests")
            try manager.createSymbolicLink(atPath: directory.file("bin/domb"), withDestinationPath: try DombBinary.path)
            try manager.copyItem(atPath: images, toPath: directory.file("images/out"))
            let demo = try String(contentsOfFile: Repository.root + "/examples/demo/launch.dts", encoding: .utf8)
            _ = try directory.write("examples/demo/launch.dts", demo)
            let launch = demo.replacingOccurrences(of: "\"../../images/out/", with: "\"images/out/")
            _ = try directory.write("launch.dts", launch)
            // The next release: the same system with a command line changed.
            let nextRelease = launch.replacingOccurrences(of: "bootargs = \"", with: "bootargs = \"release=2 ")
            guard nextRelease != launch else { throw SandboxError(message: "the demo has no bootargs to change for launch-v2.dts") }
            _ = try directory.write("launch-v2.dts", nextRelease)
            try manager.copyItem(atPath: Repository.root + "/policies/pcr-policy.json", toPath: directory.file("policies/pcr-policy.json"))
            for (name, suffix) in [("signer.key", "key"), ("signer.pem", "pem"), ("signer.pub.pem", "pub")] {
                let source = suffix == "key" ? pki.key("p256") : suffix == "pem" ? pki.certificate("p256") : pki.publicKey("p256")
                try manager.copyItem(atPath: source, toPath: directory.file(name))
            }
            try manager.copyItem(atPath: pki.trustDirectory, toPath: directory.file("trust"))
            try manager.copyItem(atPath: pki.trustDirectory, toPath: directory.file("etc/domb/trust"))
            let manufactured = try ProvisionedSwtpm.manufactured()
            try manager.copyItem(atPath: manufactured.caDirectory, toPath: directory.file("etc/domb/ek-cas"))
            // docs/binding.md's dom0less tree with stand-ins for its Arm images.
            try manager.copyItem(
                atPath: Repository.root + "/Tests/DombModelTests/Fixtures/upstream/dom0less-4.17.dts", toPath: directory.file("dom0less.dts"))
            for domain in ["domU1", "domU2"] {
                try manager.copyItem(atPath: "\(images)/pvh-kernel.elf", toPath: directory.file("Image-\(domain)"))
                try manager.copyItem(atPath: "\(images)/ramdisk.cpio.gz", toPath: directory.file("initrd-\(domain)"))
            }
            _ = try directory.write("disk.key", Array((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }))
            // A TPM with every bank active, as swtpm starts and as `make demo` uses it;
            // docs/keylime.md enrols against the EK certificate of a manufactured one.
            tpm = page == "docs/keylime.md" ? try ProvisionedSwtpm.start() : try Swtpm()
            environment = DocPlaceholders.environment.merging([
                "PATH": directory.file("bin") + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
                "TPM2TOOLS_TCTI": tpm.tcti, "TSS2_LOG": "all+none",
            ]) { $1 }
            try manager.copyItem(atPath: pki.publicKey("p256"), toPath: directory.file("signer.pub"))
            for (bundle, source, banks, cms) in [
                ("launch.bundle", "launch.dts", "sha256", true), ("demo.bundle", "examples/demo/launch.dts", "sha1,sha256,sha384,sha512", false),
            ] {
                let build = try DombBinary.run(
                    ["build", directory.file(source), "--key", directory.file("signer.key"), "--banks", banks, "-o", directory.file(bundle), "--no-progress"]
                        + (cms ? ["--cert", directory.file("signer.pem")] : []))
                guard build.status == 0 else { throw SandboxError(message: "the sandbox's \(bundle): \(build.stderrText)") }
            }
            if page == "docs/secrets.md" { try makeReleaseToken(pki: pki) }
            // docs/xenstore.md: the demo's plan, and a listing of a host where it does not run.
            let plan = try DombBinary.run(["xenstore", "plan", directory.file("launch.dts")])
            guard plan.status == 0 else { throw SandboxError(message: "the sandbox's plan.json: \(plan.stderrText)") }
            _ = try directory.write("plan.json", plan.stdout)
            _ = try directory.write("listing.txt", "/local = \"\"   (n0)\n/local/domain = \"\"   (n0)\n/local/domain/0 = \"\"   (r0)\n/local/domain/0/name = \"Domain-0\"   (r0)\n")
        }

        /// docs/secrets.md step 1, run as written (its `hsm-keys` block), and the CA's
        /// certificate for the release key it makes (`release.pem`).
        private func makeReleaseToken(pki: TestPKI) throws {
            for tool in ["softhsm2-util", "p11tool", "openssl"] { _ = try Tools.require(tool) }
            _ = try Tools.requireOpenSSLModule("pkcs11", provider: false, package: "libengine-pkcs11-openssl")
            try FileManager.default.createDirectory(atPath: directory.file("tokens"), withIntermediateDirectories: true)
            let conf = try directory.write(
                "softhsm2.conf", "directories.tokendir = \(directory.file("tokens"))\nobjectstore.backend = file\nlog.level = ERROR\n")
            environment["SOFTHSM2_CONF"] = conf
            let script = try directory.write("hsm-keys.sh", "cd '\(path)'\n" + (try SecretsCLITests.docsBlock("hsm-keys")))
            let keys = try Tools.run(
                "bash", [script],
                environment: environment.merging(["PIN": "1234", "SO_PIN": "56785678", "PIN_FILE": directory.file("run/keys/pin")]) { $1 },
                check: false)
            guard keys.status == 0 else { throw SandboxError(message: "docs/secrets.md's hsm-keys block: \(keys.stderrText)") }
            try Tools.run(
                "openssl",
                [
                    "x509", "-req", "-in", directory.file("release.csr"), "-CA", pki.caCertificate, "-CAkey", pki.key("ca"),
                    "-CAcreateserial", "-days", "30", "-extfile", pki.directory.file("codesign.ext"), "-out", directory.file("release.pem"),
                ])
        }

        /// Runs one example as the page shows it (see the type's documentation).
        func run(_ line: DocCommandLine) throws -> ProcessResult {
            let text = line.text
                .replacingOccurrences(of: "/etc/domb", with: directory.file("etc/domb"))
                .replacingOccurrences(of: "/var/lib/domb", with: directory.file("var/lib/domb"))
            let script = "mount --bind \"$DOCS_SANDBOX/run\" /run && cd \"$DOCS_SANDBOX\" && \(text)"
            return try Tools.run(
                "unshare", ["--mount", "--propagation", "private", "bash", "-c", script],
                environment: environment.merging(["DOCS_SANDBOX": path]) { $1 }, check: false, timeout: 120)
        }

        deinit { tpm.stop() }
    }

    struct SandboxError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// What says that the parser refused the line (the exit status or its wording).
    static func isUsageError(_ result: ProcessResult) -> Bool {
        result.status == 64
            || ["Unknown option", "Missing expected argument", "Unexpected argument", "Usage:"].contains { result.stderrText.contains($0) }
    }

    @Test(arguments: try DocCommandLineTests.pagesWithCommands())
    func everyExampleRuns(page: String) throws {
        let lines = try DocCommandLine.all().filter { $0.file == page }
        let examples = lines.filter { !$0.isSynopsis }
        let sandbox = try Sandbox(page: page)
        for line in examples {
            // `domb boot` runs when the host boots: the host reboots first, orderly
            // (`TPM2_Shutdown`, so the TPM clock stays safe; PCRs back at their reset values,
            // persistent keys kept), as it would between two releases.
            if line.text.hasPrefix("domb boot ") {
                try Tools.run("tpm2_shutdown", ["-c", "-T", sandbox.tpm.tcti], environment: ["TSS2_LOG": "all+none"])
                try sandbox.tpm.reboot()
            }
            let result = try sandbox.run(line)
            let allowed = Self.environmental.first { $0.file == page && line.text == $0.command }
            let refused = Self.isUsageError(result)
            #expect(!refused, "\(line): the parser refused it: \(result.stderrText)")
            if let allowed {
                #expect(result.status != 0, "\(line) now succeeds: remove its entry (\(allowed.reason)) from the environmental list")
                #expect(
                    (result.stdoutText + result.stderrText).contains(allowed.expected),
                    "\(line) failed, but not for the listed reason (\(allowed.reason)): \(result.stderrText)")
            } else {
                #expect(result.status == 0, "\(line) exited \(result.status): \(result.stderrText)\(result.stdoutText.suffix(400))")
            }
            if let missing = DocCommandLine.missingShownLine(line.shownOutput, in: result.stdoutText) {
                Issue.record("\(line): the page shows `\(missing)`, which it did not print (in that order):\n\(result.stdoutText)")
            }
        }
        // Then every synopsis variant runs too, after the examples (on what they left): it
        // may fail for want of a Xen host or a file the placeholder names, but never as a
        // usage error — some usage rules are only checked when the command runs
        // (`boot --supervise` needs the libxl backend).
        for line in lines where line.isSynopsis {
            for words in try DocSynopsis.variants(line.text) {
                let arguments = try DocPlaceholders.arguments(Array(words.dropFirst()), environment: sandbox.environment)
                let command = (["domb"] + arguments.map(DombBinary.shellQuoted)).joined(separator: " ")
                let variant = DocCommandLine(file: line.file, line: line.line, text: command, shownOutput: [])
                let result = try sandbox.run(variant)
                let refused = Self.isUsageError(result)
                #expect(!refused, "\(variant): a usage error when run: \(result.stderrText)")
            }
        }
    }

    @Test func everyEnvironmentalEntryStillNamesADocLine() throws {
        let examples = try DocCommandLine.all().filter { !$0.isSynopsis }
        for entry in Self.environmental {
            let matches = examples.filter { $0.file == entry.file && $0.text == entry.command }
            #expect(matches.count == 1, "environmental entry `\(entry.command)` (\(entry.file)) matches \(matches.count) doc lines")
        }
    }

    /// The README's own examples are all there (a broken extraction would otherwise check nothing).
    @Test func theReadmeExamplesAreFound() throws {
        let readme = try DocCommandLine.all().filter { $0.file == "README.md" }
        #expect(readme.filter { !$0.isSynopsis }.count >= 9, "\(readme)")
    }
}
