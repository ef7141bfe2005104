//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// A real swtpm (TPM 2.0 simulator) for one test: fresh state, its own loopback ports.
///
/// Started with `swtpm socket --tpm2 --flags not-need-init,startup-clear`, so the TPM is
/// already started up (as firmware would leave it) and PCRs are in their reset state.
/// A watchdog shell kills swtpm if the test process dies, so no swtpm outlives the suite
/// even when a test crashes; ``stop()`` (or `deinit`) stops it normally.
public final class Swtpm: @unchecked Sendable {
    public let port: Int
    public let stateDirectory: TemporaryDirectory
    private let process: Process

    /// The TCTI string domb and tpm2-tools take.
    public var tcti: String { "swtpm:host=127.0.0.1,port=\(port)" }

    /// - Parameter state: a state directory to start from (``ProvisionedSwtpm`` copies a
    ///   manufactured TPM into one); by default a fresh, unprovisioned TPM.
    public init(state: TemporaryDirectory? = nil) throws {
        let swtpm = try Tools.require("swtpm")
        stateDirectory = try state ?? TemporaryDirectory(prefix: "domb-swtpm")
        var lastError: String = ""
        for _ in 0..<20 {
            let candidate = Int.random(in: 20_000..<60_000) & ~1
            guard Self.isFree(candidate), Self.isFree(candidate + 1) else { continue }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            // The watchdog: swtpm runs in the background; the shell polls our pid and the
            // child's, and kills swtpm once either is gone.
            let script = """
                "$1" socket --tpm2 --tpmstate dir="$2" \
                  --server type=tcp,port=$3,bindaddr=127.0.0.1 \
                  --ctrl type=tcp,port=$4,bindaddr=127.0.0.1 \
                  --flags not-need-init,startup-clear --log level=0 --pid file="$2/swtpm.pid" &
                child=$!
                trap 'kill -9 $child 2>/dev/null; wait $child 2>/dev/null; exit 0' TERM INT
                while kill -0 $5 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.2; done
                kill -9 $child 2>/dev/null
                wait $child
                """
            process.arguments = [
                "-c", script, "swtpm-watchdog", swtpm, stateDirectory.path, String(candidate),
                String(candidate + 1), String(getpid()),
            ]
            let errPipe = Pipe()
            process.standardError = errPipe
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            if Self.waitForListener(port: candidate, process: process) {
                self.port = candidate
                self.process = process
                return
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            lastError = String(decoding: errPipe.fileHandleForReading.availableData, as: UTF8.self)
        }
        throw SwtpmError(message: "swtpm did not start listening: \(lastError)")
    }

    /// Stops swtpm with SIGKILL (its state is thrown away, and children of Foundation's
    /// Process may have SIGTERM blocked), then its watchdog.
    public func stop() {
        if let text = try? String(contentsOfFile: stateDirectory.file("swtpm.pid"), encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        {
            kill(pid, SIGKILL)
        }
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// A reboot of the host as the TPM sees it: `swtpm_ioctl -i` (TPM reset: PCRs back to
    /// their reset values, transient objects and sessions gone, persistent state kept) and
    /// `TPM2_Startup(CLEAR)`, as firmware would issue it. Keys sealed to this TPM stay usable.
    public func reboot() throws {
        try Tools.run("swtpm_ioctl", ["--tcp", "127.0.0.1:\(port + 1)", "-i"])
        try Tools.run("tpm2_startup", ["-c", "-T", tcti], environment: ["TSS2_LOG": "all+none"])
    }

    /// Whether the process is still running (tests that kill the TPM mid-flow check this).
    public var isRunning: Bool { process.isRunning }

    deinit { stop() }

    /// Runs `body` with a fresh swtpm and stops it afterwards, whatever happens.
    public static func with<T>(_ body: (Swtpm) throws -> T) throws -> T {
        let tpm = try Swtpm()
        defer { tpm.stop() }
        return try body(tpm)
    }

    public static func with<T>(_ body: (Swtpm) async throws -> T) async throws -> T {
        let tpm = try Swtpm()
        defer { tpm.stop() }
        return try await body(tpm)
    }

    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }

    private static func waitForListener(port: Int, process: Process) -> Bool {
        for _ in 0..<200 {
            guard process.isRunning else { return false }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            if fd >= 0 {
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let result = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                close(fd)
                if result == 0 { return true }
            }
            usleep(25_000)
        }
        return false
    }
}

public struct SwtpmError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
