//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombTestSupport
import Foundation
import Testing

/// Shell completions generated from the argument parser (issue 19): bash really completes
/// commands, subcommands and options with the script `make install` installs.
@Suite struct CompletionCLITests {
    /// What bash offers for `line` (the cursor at its end) after loading `script`, calling
    /// the function `complete -p domb` registered the way bash's programmable completion
    /// calls it: with COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT set and the command,
    /// the current word and the previous word as arguments.
    static func complete(_ line: String, script: String) throws -> [String] {
        let program = """
            source "$1"
            line="$2"
            read -r -a COMP_WORDS <<< "$line"
            [[ "$line" == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMP_LINE="$line"
            COMP_POINT=${#line}
            function=$(complete -p domb | sed -n 's/.*-F \\([^ ]*\\) domb$/\\1/p')
            [[ -n "$function" ]] || { echo "no completion registered for domb" >&2; exit 3; }
            COMPREPLY=()
            "$function" domb "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let result = try Tools.run("bash", ["-c", program, "complete", script, line])
        return result.stdoutText.split(separator: "\n").map(String.init)
    }

    @Test func bashCompletesCommandsSubcommandsAndOptions() throws {
        let work = try TemporaryDirectory(prefix: "domb-completion")
        let generated = try DombBinary.run(["--generate-completion-script", "bash"])
        #expect(generated.status == 0, "\(generated.stderrText)")
        let script = try work.write("domb.bash", generated.stdout)

        #expect(try Self.complete("domb bun", script: script) == ["bundle"])
        #expect(try Self.complete("domb bundle ver", script: script) == ["verify"])
        #expect(try Self.complete("domb bundle verify --pu", script: script) == ["--pubkey"])
        let topLevel = try Self.complete("domb ", script: script)
        for command in ["boot", "build", "bundle", "config", "log", "predict", "attest"] {
            #expect(topLevel.contains(command), "\(command) not offered: \(topLevel)")
        }
        let options = try Self.complete("domb boot --", script: script)
        for option in ["--tpm", "--eventlog", "--no-progress", "--json"] {
            #expect(options.contains(option), "\(option) not offered: \(options)")
        }
    }

    /// zsh and fish scripts come from the same command tree: every command is in them.
    @Test func zshAndFishScriptsNameEveryCommand() throws {
        for shell in ["zsh", "fish"] {
            let generated = try DombBinary.run(["--generate-completion-script", shell])
            #expect(generated.status == 0, "\(generated.stderrText)")
            for command in ["boot", "build", "bundle", "verify", "extract", "import-xl", "pcrread"] {
                #expect(generated.stdoutText.contains(command), "\(shell): \(command) missing")
            }
        }
    }
}
