//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombTestSupport
import Foundation
import Testing

/// What a new user tries first (issue 19): each mistake gets one clear line on standard
/// error — what failed, where, what to do — and the exit status the command's --help
/// documents (0 success, 1 refused, 2 could not run, 64 usage).
@Suite struct NewUserCLITests {
    struct Mistake: CustomTestStringConvertible, Sendable {
        var arguments: [String]
        var status: Int32
        /// Every one of these must be in the line.
        var says: [String]
        var testDescription: String { "domb " + arguments.joined(separator: " ") }
    }

    /// Files the mistakes refer to, made once: a text file, a directory, a key pair.
    static let files: (directory: String, text: String, key: String) = {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("domb-new-user-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: base + "/a-directory", withIntermediateDirectories: true)
        try? Data("hello, this is not a bundle\n".utf8).write(to: URL(fileURLWithPath: base + "/notes.txt"))
        _ = try? Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", base + "/signer.pem"])
        _ = try? Tools.run("openssl", ["pkey", "-in", base + "/signer.pem", "-pubout", "-out", base + "/signer.pub"])
        return (base + "/a-directory", base + "/notes.txt", base + "/signer")
    }()

    static let mistakes: [Mistake] = {
        let (directory, text, key) = files
        let missing = directory + "/no-such-file.dts"
        return [
            Mistake(arguments: [], status: 64, says: ["domb: give a command", "boot", "config", "--help"]),
            Mistake(arguments: ["bootx"], status: 64, says: ["domb: unknown command 'bootx'", "did you mean 'boot'?"]),
            Mistake(arguments: ["bundle", "verfy", "x"], status: 64, says: ["domb bundle: unknown command 'verfy'", "did you mean 'verify'?"]),
            Mistake(arguments: ["bundle"], status: 64, says: ["domb bundle: give a command: verify, show, extract"]),
            Mistake(arguments: ["bundle", "verify"], status: 64, says: ["domb bundle verify: missing expected argument", "--help"]),
            Mistake(arguments: ["config", "check", missing], status: 2, says: ["domb config check: \(missing)", "no such file", "check the path"]),
            Mistake(arguments: ["build", missing, "--key", key + ".pem", "-o", directory + "/x.bundle"], status: 2, says: [missing, "check the path"]),
            Mistake(arguments: ["config", "check", directory], status: 2, says: [directory, "is a directory", "give a regular file"]),
            Mistake(arguments: ["bundle", "verify", directory, "--pubkey", key + ".pub"], status: 2, says: [directory, "is a directory"]),
            Mistake(arguments: ["log", "show", directory], status: 2, says: [directory, "is a directory"]),
            Mistake(arguments: ["bundle", "verify", text, "--pubkey", key + ".pub"], status: 1, says: [text, "NOT verified", "not a tar archive"]),
            Mistake(arguments: ["bundle", "show", text], status: 1, says: [text, "not a tar archive", "`domb build` writes"]),
            Mistake(arguments: ["log", "show", text], status: 1, says: [text, "not a readable TCG event log"]),
            Mistake(arguments: ["inspect", missing], status: 2, says: [missing, "check the path"]),
            // A directory domb would create under a regular file: plain words, not Foundation's dump.
            Mistake(
                arguments: ["agent", "--no-mtls", "--state-directory", text + "/agent", "--tpm", "swtpm:host=127.0.0.1,port=1"],
                status: 2, says: ["domb agent: \(text)/agent: create the directory: \(text) is a regular file, not a directory"]),
            Mistake(
                arguments: ["tpm", "info", "--tpm", "swtpm:host=127.0.0.1,port=1"], status: 2,
                says: ["domb tpm info:", "swtpm:host=127.0.0.1,port=1", "give --tpm"]),
            // Argument checks made when the command runs are usage errors of that command, not
            // ArgumentParser's three lines about the root command.
            Mistake(
                arguments: ["boot", text, "--backend", "plan", "--supervise", "--pubkey", key + ".pub"], status: 64,
                says: ["domb boot: --supervise needs the libxl backend", "see `domb boot --help`"]),
        ]
    }()

    @Test(arguments: mistakes) func oneClearLineAndADocumentedStatus(_ mistake: Mistake) throws {
        let result = try DombBinary.run(mistake.arguments, environment: ["TSS2_LOG": "all+none"])
        #expect(result.status == mistake.status, "\(result.stderrText)")
        let lines = result.stderrText.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "one line, not \(lines.count): \(result.stderrText)")
        for phrase in mistake.says {
            #expect(result.stderrText.contains(phrase), "\(phrase) missing from: \(result.stderrText)")
        }
        #expect(!result.stderrText.contains("Error:"), "the parser's own format leaked: \(result.stderrText)")
        #expect(!result.stderrText.contains("Error Domain="), "Foundation's error text leaked: \(result.stderrText)")
        #expect(result.stdout.isEmpty, "\(result.stdoutText)")
    }

    /// Every command's --help documents the exit statuses it uses (a command added without
    /// them fails here).
    @Test func everyCommandDocumentsItsExitStatus() throws {
        let dump = try DombBinary.run(["--experimental-dump-help"])
        #expect(dump.status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout)) as? [String: Any])
        var leaves: [(String, String)] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            let name = path + [(command["commandName"] as? String) ?? "?"]
            let subcommands = (command["subcommands"] as? [[String: Any]] ?? []).filter { $0["commandName"] as? String != "help" }
            if subcommands.isEmpty { leaves.append((name.joined(separator: " "), command["discussion"] as? String ?? "")) }
            for subcommand in subcommands { walk(subcommand, name) }
        }
        walk(try #require(root["command"] as? [String: Any]), [])
        #expect(leaves.count >= 25, "\(leaves.map(\.0))")
        for (name, discussion) in leaves {
            for status in ["Exit status: 0 ", "; 1 ", "; 2 it could not run", "; 64 wrong usage"] {
                #expect(discussion.contains(status), "\(name) --help does not document \"\(status)\"")
            }
        }
    }

    /// An untrusted name in an error reaches the terminal escaped.
    @Test func errorsEscapeWhatTheyQuote() throws {
        let hostile = Self.files.directory + "/evil\u{1B}[2Jname.dts"
        let result = try DombBinary.run(["config", "check", hostile])
        #expect(result.status == 2)
        #expect(!result.stderrText.contains("\u{1B}"), "\(result.stderrText.debugDescription)")
        #expect(result.stderrText.contains("evil\\e[2Jname.dts"), "\(result.stderrText.debugDescription)")
    }
}
