//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// A tool the tests need is missing. Tests fail with this; they never skip.
public struct MissingToolError: Error, CustomStringConvertible {
    public var tool: String
    public var package: String
    public var description: String {
        "\(tool) is not installed: run `apt-get install \(package)` (or `make test`, which installs everything)"
    }
}

/// Output of a finished process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public var command: [String]
    public var result: ProcessResult
    public var description: String {
        "`\(command.joined(separator: " "))` exited \(result.status)\nstdout: \(result.stdoutText)\nstderr: \(result.stderrText)"
    }
}

public enum Tools {
    /// Known tools and the Debian package that provides each.
    public static let packages: [String: String] = [
        "swtpm": "swtpm swtpm-tools",
        "swtpm_setup": "swtpm-tools",
        "swtpm_localca": "swtpm-tools",
        "tpm2_makecredential": "tpm2-tools",
        "tpm2_activatecredential": "tpm2-tools",
        "tpm2_startauthsession": "tpm2-tools",
        "tpm2_policysecret": "tpm2-tools",
        "tpm2_flushcontext": "tpm2-tools",
        "tpm2_pcrread": "tpm2-tools",
        "tpm2_eventlog": "tpm2-tools",
        "tpm2_checkquote": "tpm2-tools",
        "tpm2_getcap": "tpm2-tools",
        "tpm2_pcrextend": "tpm2-tools",
        "openssl": "openssl",
        "dtc": "device-tree-compiler",
        "fdtget": "device-tree-compiler",
        "sha256sum": "coreutils",
        "tar": "tar",
        "taskset": "util-linux",
        "env": "coreutils",
        "xz": "xz-utils",
        "zstd": "zstd",
        "gzip": "gzip",
        "cpio": "cpio",
        "python3": "python3",
        "bzip2": "bzip2",
        "lz4": "lz4",
        "make": "make",
        "gcc": "gcc",
        "ld": "binutils",
        "readnotes": "xen-utils-4.17",
        "swtpm_ioctl": "swtpm-tools",
        "tpm2_startup": "tpm2-tools",
        "tpm2_shutdown": "tpm2-tools",
        "unshare": "util-linux",
        "bash": "bash",
        "tpm2_createprimary": "tpm2-tools",
        "tpm2_evictcontrol": "tpm2-tools",
        "tpm2_unseal": "tpm2-tools",
        "tpm2_readpublic": "tpm2-tools",
        "softhsm2-util": "softhsm2",
        "p11tool": "gnutls-bin",
        "pkcs11-tool": "opensc",
        "jq": "jq",
        "xxd": "xxd",
        "mount": "mount",
        "umount": "mount",
        "mkfifo": "coreutils",
        "mknod": "coreutils",
        "flock": "util-linux",
        "script": "bsdutils",
    ]

    /// The absolute path of `name` on PATH, or a ``MissingToolError`` naming the package.
    public static func require(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/lib/xen-4.17/bin"]
        for dir in directories {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw MissingToolError(tool: name, package: packages[name] ?? name)
    }

    /// `path` if it exists (a library, a module), or a ``MissingToolError`` naming `package`.
    @discardableResult
    public static func requireFile(_ path: String, package: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw MissingToolError(tool: path, package: package) }
        return path
    }

    /// The path of OpenSSL's engine (`provider` false) or provider module `name`, in the
    /// directory `openssl version -e|-m` names, or a ``MissingToolError`` naming `package`.
    public static func requireOpenSSLModule(_ name: String, provider: Bool, package: String) throws -> String {
        let kind = provider ? "provider" : "engine"
        let version = try run("openssl", ["version", provider ? "-m" : "-e"]).stdoutText
        // `MODULESDIR: "/usr/lib/…/ossl-modules"` or `ENGINESDIR: "…"`.
        let quoted = version.split(separator: "\"", omittingEmptySubsequences: false)
        if quoted.count >= 2 {
            let candidate = "\(quoted[1])/\(name).so"
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        throw MissingToolError(tool: "OpenSSL's \(name) \(kind)", package: package)
    }

    /// Runs a tool to completion and returns its output; stdin is `input` or empty.
    @discardableResult
    public static func run(
        _ name: String, _ arguments: [String], input: [UInt8]? = nil,
        environment: [String: String]? = nil, check: Bool = true, timeout: Double = 300
    ) throws -> ProcessResult {
        let executable = name.hasPrefix("/") ? name : try require(name)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let outPipe = Pipe()
        let errPipe = Pipe()
        let inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        try process.run()
        // A hung tool must fail the test, not hang the suite. SIGKILL, because children
        // that Foundation's Process starts inherit a signal mask that blocks SIGTERM.
        let watchdog = DispatchWorkItem { [process] in
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        defer { watchdog.cancel() }
        // Read both pipes concurrently so neither fills and blocks the child.
        let errData = LockedBox<Data>(Data())
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData.value = errPipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        if let input { inPipe.fileHandleForWriting.write(Data(input)) }
        try? inPipe.fileHandleForWriting.close()
        let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        let result = ProcessResult(status: process.terminationStatus, stdout: Array(outData), stderr: Array(errData.value))
        if check && result.status != 0 {
            throw ProcessFailure(command: [name] + arguments, result: result)
        }
        return result
    }
}

/// A mutable box for handing a value out of a concurrent closure.
public final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    public init(_ value: T) { _value = value }
    public var value: T {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}

/// A temporary directory removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String
    public var url: URL { URL(fileURLWithPath: path) }

    public init(prefix: String = "domb-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CocoaError(.fileWriteUnknown)
        }
        path = String(cString: made)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    public func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The `domb` executable built alongside the test bundle.
public enum DombBinary {
    public static var path: String {
        get throws {
            // The test bundle lives in the build products directory (.build/debug/…xctest).
            var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            for _ in 0..<3 {
                let candidate = directory.appendingPathComponent("domb").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
                directory = directory.deletingLastPathComponent()
            }
            let fallback = URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/domb").path
            if FileManager.default.isExecutableFile(atPath: fallback) { return fallback }
            throw MissingToolError(tool: "domb (the built executable)", package: "nothing: run `swift build` first")
        }
    }

    /// Runs `domb` with `arguments`; does not throw on a non-zero exit.
    @discardableResult
    public static func run(
        _ arguments: [String], input: [UInt8]? = nil, environment: [String: String]? = nil, timeout: Double = 300
    ) throws -> ProcessResult {
        try Tools.run(try path, arguments, input: input, environment: environment, check: false, timeout: timeout)
    }
}

extension DombBinary {
    /// Runs `domb` under a pseudo-terminal (util-linux `script`), as a person at a
    /// terminal would: standard output and standard error are both the terminal, and
    /// ``ProcessResult/stdout`` is everything written to it (``ProcessResult/stderr`` is
    /// `script`'s own). The status is domb's (`script -e`).
    @discardableResult
    public static func runInTerminal(
        _ arguments: [String], environment: [String: String]? = nil, timeout: Double = 300
    ) throws -> ProcessResult {
        let command = ([try path] + arguments).map(shellQuoted).joined(separator: " ")
        return try Tools.run("script", ["-q", "-e", "-c", command, "/dev/null"], environment: environment, check: false, timeout: timeout)
    }

    /// `text` as one word for `sh -c`.
    public static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// The repository root, for tests that read examples or policies.
public enum Repository {
    public static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

/// The test guests of images/, built once per test process: make must not run twice at
/// once on the same output directory (two suites racing left a truncated ramdisk).
public enum GuestImages {
    public static let built: Result<String, any Error> = Result {
        for tool in ["make", "gcc", "ld", "cpio"] { _ = try Tools.require(tool) }
        try Tools.run("make", ["-s", "-C", Repository.root + "/images"])
        return Repository.root + "/images/out"
    }

    /// images/out, built.
    public static func directory() throws -> String { try built.get() }
}

/// A small tmpfs mounted for one test (needs root, as the tests run in CI): a file system
/// that can be made full or read-only on purpose. Unmounted when released.
public final class SmallFileSystem: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public var path: String { directory.path }

    /// - Parameter kibibytes: the size of the file system.
    public init(kibibytes: Int = 256) throws {
        directory = try TemporaryDirectory(prefix: "domb-tmpfs")
        try Tools.run("mount", ["-t", "tmpfs", "-o", "size=\(kibibytes)k,mode=0755", "tmpfs", directory.path])
    }

    public func file(_ name: String) -> String { directory.file(name) }

    /// Fills every free byte (a file named `filler`).
    public func fill() throws {
        let descriptor = open(file("filler"), O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(descriptor) }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        // Whole pages, then byte by byte, until ENOSPC (EINTR retried).
        for size in [block.count, 1] {
            while true {
                let written = block.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, size) }
                if written > 0 || (written < 0 && errno == EINTR) { continue }
                break
            }
        }
    }

    public func remountReadOnly() throws {
        try Tools.run("mount", ["-o", "remount,ro", directory.path])
    }

    deinit {
        _ = try? Tools.run("umount", ["-l", directory.path], check: false)
    }
}

/// The large systems of issue 20, as benchmarks/scale.sh makes them
/// (benchmarks/scale-system.py): `count` PV domains, each with the test PV kernel (one
/// file for all), a console, a vif and a vbd.
public enum ScaleSystem {
    /// Writes the description as `system-<count>.dts` in `directory`; returns its path.
    public static func write(_ count: Int, in directory: TemporaryDirectory) throws -> String {
        let kernel = try GuestImages.directory() + "/pv-kernel.elf"
        let dts = try Tools.run("python3", [Repository.root + "/benchmarks/scale-system.py", "\(count)", kernel]).stdout
        return try directory.write("system-\(count).dts", dts)
    }
}
