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
            AgentCommand.self,
            KeylimeCommand.self,
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
        await DombCommand.main()
    }
}
