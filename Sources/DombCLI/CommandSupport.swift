//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles
import Foundation

/// A failure of a command's work (not of its arguments): printed as "Error: …", exit 1.
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Files a command reads whole (plans, build values, listings): at most 16 MiB, with
/// errors that name the path and the reason.
enum CommandInput {
    static let maximumSize = 16 << 20

    static func read(_ path: String) throws -> Data {
        Data(try InputFile.read(path, limit: maximumSize))
    }
}

/// Refuses at once, as "could not run" (exit 2), a path that does not name a readable
/// regular file: for commands whose library reports an unreadable subject as one of its
/// verdict's reasons (a bundle that is missing is not a bundle that fails to verify).
func requireInputFile(_ path: String) throws {
    _ = try InputFile(path: path)
}

/// A report as `--json` prints it: pretty, keys sorted, slashes unescaped, with its
/// `format` and `formatVersion` (docs/json.md).
func jsonText(_ value: some Encodable, format: JSONFormat) throws -> String { try JSONOutput.text(value, format: format) }
