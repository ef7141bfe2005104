//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore

/// The root `domb` command. Each subcommand lives in its own file.
public struct DombCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "domb",
        abstract: "Xen Hyperlaunch boot domain (domB) with TPM measured launch.",
        discussion: """
            Turns a description of several Xen domains into a signed launch bundle; at boot \
            verifies it, measures every image into the TPM with a TCG event log, prepopulates \
            Xenstore, and builds and starts the domains; verifies logs and attests hosts.
            """,
        version: DombVersion.current,
        subcommands: [
            TPMCommand.self,
            BootCommand.self,
            ConfigCommand.self,
            InspectCommand.self,
            LogCommand.self,
            MeasureCommand.self,
            DigestCommand.self,
            AKCommand.self,
            QuoteCommand.self,
            AttestCommand.self,
            XenstoreCommand.self,
            BuildCommand.self,
            BundleCommand.self,
            PredictCommand.self,
        ]
    )

    public init() {}
}

/// What the `domb` executable's `@main` calls.
public enum DombMain {
    public static func main() async {
        do {
            var command = try DombCommand.parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            DombCommand.exit(withError: TerminalSafeError.wrapping(error))
        }
    }
}

/// An error whose message may quote untrusted text (member names, record fields, file
/// contents), printed through ``TerminalText`` so it cannot drive the terminal.
/// ArgumentParser's own errors (help, usage, exit codes) pass through unchanged.
struct TerminalSafeError: Error, CustomStringConvertible {
    var description: String

    static func wrapping(_ error: any Error) -> any Error {
        if error is ExitCode || error is CleanExit || error is ValidationError
            || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
        {
            return error
        }
        return TerminalSafeError(description: TerminalText.escape("\(error)", keepingLineBreaks: true))
    }
}
