//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation

/// Renders DOT graphs (``LaunchTopology``) with Graphviz's `dot` (Debian `graphviz`).
public enum Graphviz {
    /// An output format of `dot -T`.
    public enum Format: String, Sendable, CaseIterable {
        case svg
        case png
    }

    /// How long `dot` may run, in seconds (a launch's graph takes milliseconds).
    public static let timeout: Double = 60
    /// The most a picture may take, in bytes (the largest launch allowed draws a few MiB).
    public static let maximumOutput = 64 << 20

    /// `graph` rendered by `dot -T format`.
    /// - Throws: ``MissingProgram`` when `dot` is not on PATH; ``GraphvizError`` with dot's
    ///   own message when it fails or runs past ``timeout``.
    public static func render(_ graph: String, as format: Format) throws -> [UInt8] {
        let dot = try LaunchFile.findProgram("dot", package: "graphviz")
        let run = try ToolRun(dot, ["-T\(format.rawValue)"], input: Array(graph.utf8), timeout: timeout, outputLimit: maximumOutput)
        guard run.succeeded else {
            let why = run.oversized ? "its output exceeds \(maximumOutput) bytes" : "\(run.how): \(run.errorText)"
            throw GraphvizError(message: "dot -T\(format.rawValue) failed (\(why))")
        }
        return run.output
    }
}

/// `dot` refused a graph or did not finish.
public struct GraphvizError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
