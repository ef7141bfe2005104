//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import Foundation

/// The root `domb` command. Each subcommand lives in its own file.
public struct DombCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "domb",
        abstract: "Xen Hyperlaunch boot domain (domB) with TPM measured launch.",
        discussion: """
            Turns a description of several Xen domains into a signed launch bundle; at boot \
            verifies it, measures every image into the TPM with a TCG event log, prepopulates \
            Xenstore, and builds and starts the domains; verifies logs and attests hosts.

            Every error is one line on standard error: what failed, the file, node, domain or \
            PCR, and what to do. The exit status is the same for every command: 0 success \
            (verified); 1 refused (the input was read and is malformed, invalid, not verified \
            or different); 2 the command could not run (a file missing or not a regular file, \
            the TPM, Xen or a tool unavailable, an output that cannot be written); 64 wrong \
            usage. Each command's --help says what 0 and 1 mean for it.
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
            AgentCommand.self,
            KeylimeCommand.self,
            XenstoreCommand.self,
            BuildCommand.self,
            BundleCommand.self,
            PredictCommand.self,
            SealCommand.self,
            UnsealCommand.self,
        ]
    )

    public init() {}
}

/// What the `domb` executable's `@main` calls: parses, runs, and sends every failure
/// through ``Diagnostics`` (one line, a documented exit status).
public enum DombMain {
    public static func main() async {
        let path = CommandPath.current
        var command: any ParsableCommand
        do {
            command = try DombCommand.parseAsRoot()
        } catch {
            guard let usage = Diagnostics.usage(error, path: path) else { DombCommand.exit(withError: error) }
            Diagnostics.print(usage)
            exit(usage.status.rawValue)
        }
        // A command group named without one of its commands (`domb`, `domb bundle`).
        if !type(of: command).configuration.subcommands.isEmpty, type(of: command).configuration.defaultSubcommand == nil {
            let usage = Diagnostics.noCommand(path)
            Diagnostics.print(usage)
            exit(usage.status.rawValue)
        }
        do {
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            // The command has reported what went wrong itself.
            exit(code.rawValue)
        } catch let validation as ValidationError {
            // An argument check that needs the run (`boot --supervise` against the backend
            // the machine implies): a usage error of this command, said as one found while
            // parsing — not ArgumentParser's usage of the root command.
            let usage = Diagnostics.usage(validation, path: path)
                ?? Diagnostic(message: validation.message, hint: "see `\(path.name) --help`", status: .usage)
            Diagnostics.print(usage)
            exit(usage.status.rawValue)
        } catch where error is CleanExit || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // Help and version (`--help` parses as ArgumentParser's help command, which
            // "fails" with the help text).
            DombCommand.exit(withError: error)
        } catch {
            Diagnostics.exit(with: error)
        }
    }
}
