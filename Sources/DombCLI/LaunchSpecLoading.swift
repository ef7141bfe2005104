//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFDT
import DombFiles
import Foundation

/// Reads a launch description into a `LaunchSpec`.
///
/// `*.json` is the model's own JSON form (`JSONDecoder` of `LaunchSpec`); everything else
/// goes to the launch-description loader (`.dts`, `.dtb`, xl.cfg).
enum LaunchSpecLoading {
    static let maximumSize = 16 << 20

    static func load(_ path: String) throws -> LaunchSpec {
        let lower = path.lowercased()
        if lower.hasSuffix(".json") { return try loadJSON(path) }
        return try LaunchFile.load(path).spec
    }

    static func loadJSON(_ path: String) throws -> LaunchSpec {
        let data = try readFile(path)
        do {
            return try JSONDecoder().decode(LaunchSpec.self, from: data)
        } catch let error as DecodingError {
            throw CommandError("\(path): not a LaunchSpec JSON document: \(describe(error))")
        }
    }

    static func readFile(_ path: String) throws -> Data {
        Data(try InputFile.read(path, limit: maximumSize))
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context).isEmpty ? "" : path(context) + ": ")\(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "\(path(context)): missing key \"\(key.stringValue)\""
        @unknown default:
            return "\(error)"
        }
    }
}

/// A failure of a command's work (not of its arguments): printed as "Error: …", exit 1.
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
