//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// A `domb` process the test watches while it runs (to signal it at a chosen moment, or to
/// run two at once).
final class RunningDomb: @unchecked Sendable {
    let process = Process()
    private let output = LockedBox<[UInt8]>([])
    private let errors = LockedBox<[UInt8]>([])
    private let done = DispatchGroup()
    private let out = Pipe()
    private let err = Pipe()

    /// - Parameter holdOutput: fill the stdout pipe before domb starts and do not read it
    ///   until ``releaseOutput()``: domb's first line of output (the `domb boot` header,
    ///   printed once its signal handlers are in place and the TPM is open, before the launch
    ///   starts) then blocks in `write(2)`, a moment the test can wait for and act in.
    init(_ arguments: [String], holdOutput: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: try DombBinary.path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TSS2_LOG": "all+none"]) { $1 }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        if holdOutput {
            let descriptor = out.fileHandleForWriting.fileDescriptor
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            let filler = [UInt8](repeating: 0x0A, count: 4096)
            while filler.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) > 0 {}
            while filler.withUnsafeBytes({ write(descriptor, $0.baseAddress, 1) }) > 0 {}
            // The flag belongs to the open file description domb inherits: blocking again.
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        }
        try process.run()
        read(err, into: errors)
        if !holdOutput { read(out, into: output) }
    }

    private func read(_ pipe: Pipe, into box: LockedBox<[UInt8]>) {
        done.enter()
        DispatchQueue.global().async { [done] in
            while true {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                box.value += Array(chunk)
            }
            done.leave()
        }
    }

    /// Whether a thread of domb is blocked writing to its standard output.
    var isBlockedWritingOutput: Bool {
        let tasks = "/proc/\(process.processIdentifier)/task"
        for task in (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? [] {
            // /proc/PID/task/TID/syscall: "1 0x1 …" is write(2) on descriptor 1.
            if let text = try? String(contentsOfFile: "\(tasks)/\(task)/syscall", encoding: .utf8), text.hasPrefix("1 0x1 ") {
                return true
            }
        }
        return false
    }

    /// Waits until domb blocks on its held output.
    func waitUntilBlockedWritingOutput(seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, process.isRunning {
            if isBlockedWritingOutput { return true }
            usleep(2000)
        }
        return false
    }

    /// Starts reading the held output (the filler lines are dropped).
    func releaseOutput() { read(out, into: output) }

    var stdoutText: String { String(decoding: output.value.drop { $0 == 0x0A }, as: UTF8.self) }
    var stderrText: String { String(decoding: errors.value, as: UTF8.self) }

    /// Waits for the process to end; returns its exit status (killed after `seconds`).
    func finish(seconds: Double = 120) -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        done.wait()
        return process.terminationStatus
    }
}

/// `domb boot` as systemd runs it: one launch per TPM, and SIGTERM/SIGINT handled.
@Suite struct BootCLITests {
    /// The demo system, signed with a fresh Ed25519 key.
    static func demoBundle(in work: TemporaryDirectory) throws -> (bundle: String, publicKey: String) {
        _ = try GuestImages.directory()
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", work.file("signer.pub.pem")])
        let build = try DombBinary.run(
            ["build", Repository.root + "/examples/demo/launch.dts", "--key", key, "--banks", "sha1,sha256,sha384,sha512",
             "-o", work.file("demo.bundle"), "--no-progress"])
        #expect(build.status == 0, "\(build.stderrText)")
        return (work.file("demo.bundle"), work.file("signer.pub.pem"))
    }

    /// The launch PCRs as tpm2-tools reads them (sha256 bank), as raw bytes.
    static func pcrread(_ swtpm: Swtpm, in work: TemporaryDirectory) throws -> [UInt8] {
        let file = work.file("pcrs-\(UUID().uuidString).bin")
        try Tools.run("tpm2_pcrread", ["-T", swtpm.tcti, "sha256:12,13", "-o", file], environment: ["TSS2_LOG": "all+none"])
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
    }

    /// What a log replays to for PCRs 12 and 13 (sha256), computed by `domb log replay`.
    static func replay(_ log: String) throws -> [UInt8] {
        let text = try DombBinary.run(["log", "replay", log]).stdoutText
        let values = try PCRValues(parsingText: text)
        let reset = [UInt8](repeating: 0, count: 32)
        return (values[.sha256, 12] ?? reset) + (values[.sha256, 13] ?? reset)
    }

    static let resetPCRs = [UInt8](repeating: 0, count: 64)

    @Test func twoConcurrentBootsOnOneTPMLaunchExactlyOnce() throws {
        let work = try TemporaryDirectory(prefix: "domb-two-boots")
        let (bundle, key) = try Self.demoBundle(in: work)
        try Swtpm.with { swtpm in
            let boots = try ["first", "second"].map { name in
                try RunningDomb([
                    "boot", bundle, "--pubkey", key, "--tpm", swtpm.tcti, "--backend", "plan", "--json",
                    "--eventlog", work.file("\(name).bin"), "--lock-dir", work.file("locks"),
                ])
            }
            let statuses = boots.map { $0.finish() }
            #expect(statuses.filter { $0 == 0 }.count == 1, "exactly one launches: \(statuses)")
            guard let winner = statuses.firstIndex(of: 0), let loser = statuses.firstIndex(where: { $0 != 0 }) else { return }
            let refused = try #require(
                try JSONSerialization.jsonObject(with: Data(boots[loser].stdoutText.utf8)) as? [String: Any],
                "\(boots[loser].stdoutText) \(boots[loser].stderrText)")
            #expect(refused["result"] as? String == "refused")
            #expect(refused["eventsExtended"] as? Int == 0, "refused before it extended anything: \(refused)")
            #expect((refused["unpaused"] as? [String])?.isEmpty == true)
            #expect(!FileManager.default.fileExists(atPath: work.file(loser == 0 ? "first.bin" : "second.bin")))
            // The TPM holds exactly the winner's launch.
            let winnerLog = work.file(winner == 0 ? "first.bin" : "second.bin")
            #expect(try Self.pcrread(swtpm, in: work) == (try Self.replay(winnerLog)))
        }
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalBeforeTheLaunchStartsStopsItWithNothingExtended(signal: Int32) throws {
        let work = try TemporaryDirectory(prefix: "domb-boot-signal")
        let (bundle, key) = try Self.demoBundle(in: work)
        try Swtpm.with { swtpm in
            let boot = try RunningDomb(
                [
                    "boot", bundle, "--pubkey", key, "--tpm", swtpm.tcti, "--backend", "plan",
                    "--eventlog", work.file("eventlog.bin"), "--lock-dir", work.file("locks"),
                ], holdOutput: true)
            // domb is blocked printing its header: handlers installed, the launch not begun.
            #expect(boot.waitUntilBlockedWritingOutput())
            kill(boot.process.processIdentifier, signal)
            boot.releaseOutput()
            let status = boot.finish()
            let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
            #expect(status == 128 + signal, "\(boot.stdoutText) \(boot.stderrText)")
            #expect(boot.stderrText.contains("interrupted by \(name)"), "\(boot.stderrText)")
            #expect(boot.stderrText.contains("no PCR was extended"))
            #expect(boot.stderrText.contains("no domain was unpaused"))
            #expect(!boot.stdoutText.contains("plan: unpause"))
            #expect(try Self.pcrread(swtpm, in: work) == Self.resetPCRs)
        }
    }
}
