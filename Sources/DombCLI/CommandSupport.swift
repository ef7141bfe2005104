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

/// A report as `--json` prints it: pretty, keys sorted, slashes unescaped.
func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
