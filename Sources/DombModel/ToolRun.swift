//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// One run of an external tool (dtc, Graphviz's dot) with bounds: killed after `timeout`
/// seconds or once its output passes `outputLimit` bytes; standard error kept for the
/// message. Standard input is `input`, or nothing.
struct ToolRun {
    let output: [UInt8]
    let errorText: String
    /// Whether the output passed the limit (the tool was killed).
    let oversized: Bool
    let status: Int32
    let reason: Process.TerminationReason

    var succeeded: Bool { !oversized && reason == .exit && status == 0 }
    /// "exit 2", "killed by signal 9".
    var how: String { reason == .exit ? "exit \(status)" : "killed by signal \(status)" }

    init(_ executable: String, _ arguments: [String], input: [UInt8]? = nil, timeout: Double, outputLimit: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        let inputPipe = input.map { _ in Pipe() }
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = inputPipe ?? FileHandle.nullDevice
        try process.run()
        // SIGKILL: children of Foundation's Process may inherit a mask that blocks SIGTERM.
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { kill(pid, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        defer { watchdog.cancel() }
        // Feed and drain concurrently so that no pipe fills and blocks the tool.
        let errorBytes = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorBytes.set(errors.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        if let inputPipe, let input {
            group.enter()
            DispatchQueue.global().async {
                try? inputPipe.fileHandleForWriting.write(contentsOf: Data(input))
                try? inputPipe.fileHandleForWriting.close()
                group.leave()
            }
        }
        var data = Data()
        var oversized = false
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            data.append(chunk)
            if data.count > outputLimit {
                oversized = true
                kill(pid, SIGKILL)
                break
            }
        }
        if oversized { _ = try? output.fileHandleForReading.readToEnd() }
        group.wait()
        process.waitUntilExit()
        self.output = Array(data)
        self.oversized = oversized
        self.errorText = String(decoding: errorBytes.get(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        self.status = process.terminationStatus
        self.reason = process.terminationReason
    }
}

/// Bytes handed from a reader thread.
private final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}
