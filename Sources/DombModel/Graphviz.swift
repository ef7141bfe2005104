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

    /// `graph` rendered by `dot -T format`.
    /// - Throws: ``MissingProgram`` when `dot` is not on PATH; ``GraphvizError`` with dot's
    ///   own message when it fails or runs past ``timeout``.
    public static func render(_ graph: String, as format: Format) throws -> [UInt8] {
        let dot = try LaunchFile.findProgram("dot", package: "graphviz")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dot)
        process.arguments = ["-T\(format.rawValue)"]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { kill(pid, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        defer { watchdog.cancel() }
        // Feed and drain concurrently so that no pipe fills and blocks dot.
        let group = DispatchGroup()
        let errorText = Box()
        group.enter()
        DispatchQueue.global().async {
            errorText.set(errors.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            try? input.fileHandleForWriting.write(contentsOf: Data(graph.utf8))
            try? input.fileHandleForWriting.close()
            group.leave()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let message = String(decoding: errorText.get(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let how = process.terminationReason == .exit ? "exit \(process.terminationStatus)" : "killed by signal \(process.terminationStatus)"
            throw GraphvizError(message: "dot -T\(format.rawValue) failed (\(how)): \(message)")
        }
        return Array(data)
    }
}

/// `dot` refused a graph or did not finish.
public struct GraphvizError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
