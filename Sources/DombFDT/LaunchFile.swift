//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles
import Foundation

/// Reading launch descriptions from files: `.dts` (compiled by `dtc`), `.dtb` (read after
/// `fdt_check_full`), and xl.cfg (imported).
public enum LaunchFile {
    public enum Format: String, Sendable {
        case dts, dtb, xl
    }

    /// The largest description file read.
    public static let maxFileSize = 4 << 20

    /// The format of `path`: by extension (`.dts`, `.dtb`, `.cfg`/`.xl`), else by content
    /// (FDT magic d00dfeed, `/dts-v1/`), else xl.cfg.
    public static func format(of path: String, bytes: [UInt8]) -> Format {
        let lower = path.lowercased()
        if lower.hasSuffix(".dts") { return .dts }
        if lower.hasSuffix(".dtb") { return .dtb }
        if lower.hasSuffix(".cfg") || lower.hasSuffix(".xl") { return .xl }
        if bytes.starts(with: [0xD0, 0x0D, 0xFE, 0xED]) { return .dtb }
        if String(decoding: bytes.prefix(512), as: UTF8.self).contains("/dts-v1/") { return .dts }
        return .xl
    }

    /// Reads and decodes a description; errors name the file.
    public static func load(_ path: String) throws -> LaunchDocument {
        try ContextError.wrap(path) {
            let bytes = try readFile(path)
            switch format(of: path, bytes: bytes) {
            case .dtb:
                return try LaunchDecoder.decode(dtb: bytes).locating(in: path)
            case .dts:
                return try LaunchDecoder.decode(dtb: compileDTS(path: path)).locating(in: path)
            case .xl:
                let imported = try XLImport(parsing: bytes)
                return LaunchDocument(
                    spec: LaunchSpec(domains: [imported.domain]), origins: [imported.domain.name: path],
                    notes: imported.notes.map { "\(path): \($0)" })
            }
        }
    }

    /// The bytes of a description file (opened through ``InputFile``: regular files only).
    public static func readFile(_ path: String) throws -> [UInt8] {
        do {
            return try InputFile.read(path, limit: maxFileSize)
        } catch {
            // ContextError.wrap in the callers names the path.
            throw ParseError(.readFailed, "\(error.operation): \(error.message)")
        }
    }

    /// Compiles a `.dts` file with `dtc -I dts -O dtb` (includes resolve against its
    /// directory). The blob is capped at `FDT.maxSize` (a `/incbin/` of a device cannot
    /// make it grow without bound) and dtc at `dtcTimeout` seconds.
    /// - Throws: `DTCError` with dtc's own message, or when dtc is not installed.
    public static func compileDTS(path: String) throws -> [UInt8] {
        let dtc = try findTool("dtc")
        let process = Process()
        // dtc reads a whole `/incbin/` into memory first, so memory and CPU time are capped
        // by the shell's ulimit before exec (a watchdog alone would let it grow meanwhile).
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // "./" keeps a file named like an option from being read as one.
        let argument = path.hasPrefix("/") ? path : "./" + path
        process.arguments = [
            "-c", "ulimit -v \(dtcMemoryKiB) && ulimit -t \(Int(dtcTimeout)) && exec \"$0\" \"$@\"",
            dtc, "-q", "-I", "dts", "-O", "dtb", "-o", "-", argument,
        ]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // SIGKILL: children of Foundation's Process may inherit a mask that blocks SIGTERM.
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { kill(pid, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + dtcTimeout, execute: watchdog)
        defer { watchdog.cancel() }
        // Drain stderr concurrently so that neither pipe fills and blocks dtc.
        let errorText = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorText.set(errors.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        var data = Data()
        var oversized = false
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            data.append(chunk)
            if data.count > FDT.maxSize {
                oversized = true
                kill(pid, SIGKILL)
                break
            }
        }
        if oversized { _ = try? output.fileHandleForReading.readToEnd() }
        group.wait()
        process.waitUntilExit()
        if oversized { throw DTCError(message: "dtc output exceeds \(FDT.maxSize) bytes") }
        guard process.terminationStatus == 0, process.terminationReason == .exit else {
            let message = String(decoding: errorText.get(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let how = process.terminationReason == .exit ? "exit \(process.terminationStatus)" : "killed by signal \(process.terminationStatus)"
            throw DTCError(message: "dtc failed (\(how), limits: \(dtcMemoryKiB) KiB, \(Int(dtcTimeout)) s): \(message)")
        }
        return Array(data)
    }

    /// How long dtc may run (wall clock for the watchdog, CPU seconds for ulimit).
    public static let dtcTimeout: Double = 60
    /// dtc's address-space cap (ulimit -v, KiB).
    public static let dtcMemoryKiB = 512 * 1024

    /// Looks a tool up on PATH.
    static func findTool(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw DTCError(message: "\(name) is not installed: run `apt-get install device-tree-compiler`")
    }

    /// Rewrites relative module paths written against `from` directory so they resolve
    /// the same from `to` directory. Absolute paths are kept.
    public static func rebase(_ spec: LaunchSpec, from: String, to: String) -> LaunchSpec {
        let source = absolute(from)
        let target = absolute(to)
        guard source != target else { return spec }
        var spec = spec
        for d in spec.domains.indices {
            for m in spec.domains[d].modules.indices where !spec.domains[d].modules[m].path.hasPrefix("/") {
                let full = normalize(source + "/" + spec.domains[d].modules[m].path)
                spec.domains[d].modules[m].path = relative(full, from: target)
            }
        }
        return spec
    }

    static func absolute(_ path: String) -> String {
        let base = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return normalize(base)
    }

    /// Lexical normalisation: drops `.` and empty components, resolves `..`.
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func relative(_ path: String, from directory: String) -> String {
        let a = path.split(separator: "/")
        let b = directory.split(separator: "/")
        var common = 0
        while common < a.count, common < b.count, a[common] == b[common] { common += 1 }
        let ups = Array(repeating: "..", count: b.count - common)
        let rest = a[common...].map(String.init)
        let joined = (ups + rest).joined(separator: "/")
        return joined.isEmpty ? "." : joined
    }
}

private final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}

extension LaunchDocument {
    /// Prefixes every node path with the file it came from.
    func locating(in file: String) -> LaunchDocument {
        var copy = self
        copy.origins = origins.mapValues { "\(file): \($0)" }
        copy.notes = notes.map { "\(file): \($0)" }
        return copy
    }
}

/// `dtc` is missing or refused the source.
public struct DTCError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Entry points for the fuzzers (FuzzTesting/): each takes arbitrary bytes, must never
/// trap, and checks the invariants a valid input must keep.
public enum LaunchFuzz {
    /// DTB reader: parse, decode; a valid description must round-trip through the
    /// canonical encoder to the same model. Returns whether the input was accepted.
    @discardableResult
    public static func dtb(_ bytes: [UInt8]) -> Bool {
        guard let document = try? LaunchDecoder.decode(dtb: bytes) else { return false }
        guard document.spec.validate().isEmpty else { return true }
        guard let again = try? LaunchDecoder.decode(dtb: LaunchEncoder.dtb(document.spec)) else {
            preconditionFailure("a valid decoded description failed to re-encode")
        }
        precondition(again.spec == LaunchEncoder.canonicalized(document.spec), "DTB round trip changed the model")
        return true
    }

    /// xl.cfg parser and import; an accepted domain is validated (which must not trap).
    @discardableResult
    public static func xlConfig(_ bytes: [UInt8]) -> Bool {
        guard let imported = try? XLImport(parsing: bytes) else { return false }
        _ = LaunchSpec(domains: [imported.domain]).validate()
        return true
    }
}
