//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFDT
import DombFiles
import DombXLUtil
import Foundation

/// The one reader of launch descriptions: `.dts` (compiled by `dtc`), `.dtb` (checked
/// by libfdt), xl.cfg (imported; several files make one system) and `.json` (the
/// ``LaunchSpec`` model itself). Every command that takes a description reads it here.
public enum LaunchFile {
    public enum Format: String, Sendable {
        case dts, dtb, xl, json
    }

    /// The largest description file read.
    public static let maxFileSize = 4 << 20

    /// The format of `path`: by extension (`.dts`, `.dtb`, `.json`, `.cfg`/`.xl`), else by
    /// content (FDT magic d00dfeed, `/dts-v1/`), else xl.cfg.
    public static func format(of path: String, bytes: [UInt8]) -> Format {
        let lower = path.lowercased()
        if lower.hasSuffix(".dts") { return .dts }
        if lower.hasSuffix(".dtb") { return .dtb }
        if lower.hasSuffix(".json") { return .json }
        if lower.hasSuffix(".cfg") || lower.hasSuffix(".xl") { return .xl }
        if bytes.starts(with: [0xD0, 0x0D, 0xFE, 0xED]) { return .dtb }
        if String(decoding: bytes.prefix(512), as: UTF8.self).contains("/dts-v1/") { return .dts }
        return .xl
    }

    /// Reads and decodes one description; errors name the file (and node or line).
    /// - Parameters:
    ///   - format: read as this format whatever the name says.
    ///   - options: module files and the kernel reader for trees written for upstream Xen
    ///     (``LaunchLoadOptions``); `--module` paths are taken from the current directory.
    public static func load(_ path: String, format given: Format? = nil, options: LaunchLoadOptions = LaunchLoadOptions()) throws -> LaunchDocument {
        let bytes = try readFile(path)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let format = given ?? format(of: path, bytes: bytes)
        return try ContextError.wrap(path) {
            if format == .xl || format == .json, let first = options.moduleFiles.first {
                throw ParseError.invalid("\(first): --module names module nodes of a device tree; this is \(format == .xl ? "xl.cfg" : "a JSON model")")
            }
            switch format {
            case .dtb, .dts:
                // Module paths in the model are relative to the description's directory.
                var relocated = options
                relocated.moduleFiles = options.moduleFiles.map { argument in
                    var argument = argument
                    if !argument.path.hasPrefix("/") { argument.path = relative(absolute(argument.path), from: absolute(directory)) }
                    return argument
                }
                let blob = format == .dtb ? bytes : try compileDTS(path: path)
                var document = try LaunchDecoder.decode(dtb: blob, options: relocated, baseDirectory: directory).locating(in: path)
                document.baseDirectory = directory
                return document
            case .json:
                let spec = try JSONInput.decode(LaunchSpec.self, from: bytes, what: "not a LaunchSpec JSON document")
                var origins: [String: String] = [:]
                for domain in spec.domains { origins[domain.name] = path }
                return LaunchDocument(spec: spec, origins: origins, baseDirectory: directory)
            case .xl:
                let imported = try importXL(bytes)
                // Relative paths are read from the file's directory, as in a device tree
                // (xl itself uses its current directory: absolute paths mean the same to both).
                return LaunchDocument(
                    spec: LaunchSpec(domains: [imported.domain]), origins: [imported.domain.name: path],
                    notes: imported.notes.map { note in
                        var note = note
                        note.file = path
                        return note
                    }, baseDirectory: directory)
            }
        }
    }

    /// One xl.cfg file, parsed by libxlutil and imported as xl 4.17 reads it.
    public static func importXL(_ bytes: [UInt8]) throws(ParseError) -> XLImport {
        try XLImport(try XLUtilConfig(parsing: bytes))
    }

    /// One xl.cfg file as a domain on its own: imported, then validated but for the rule a
    /// single file cannot meet (its devices' backend domains are described by other files).
    /// - Throws: the import's errors, or `ParseError` listing the problems, each naming the file.
    public static func loadXLDomain(_ path: String) throws -> (domain: DomainSpec, notes: [LaunchNote]) {
        let document = try load(path, format: .xl)
        let problems = document.spec.validate().filter { $0.rule != .unknownBackend }
        guard problems.isEmpty, let domain = document.spec.domains.first else {
            throw ParseError.invalid(problems.map { document.describe($0, file: path) }.joined(separator: "\n"))
        }
        return (domain, document.notes)
    }

    /// The descriptions named on a command line: each device tree or JSON model on its own,
    /// and all xl.cfg files together as one system (each describes one domain).
    public static func loadGroups(
        _ paths: [String], options: LaunchLoadOptions = LaunchLoadOptions()
    ) -> [(files: [String], result: Result<LaunchDocument, any Error>)] {
        var groups: [(files: [String], result: Result<LaunchDocument, any Error>)] = []
        var xlFiles: [String] = []
        var xlDocuments: [LaunchDocument] = []
        var xlFailed = false
        for path in paths {
            let isXL = (try? readFile(path)).map { format(of: path, bytes: $0) == .xl } ?? false
            do {
                let document = try load(path, options: options)
                if isXL {
                    xlFiles.append(path)
                    xlDocuments.append(document)
                } else {
                    groups.append(([path], .success(document)))
                }
            } catch {
                if isXL { xlFailed = true }
                groups.append(([path], .failure(error)))
            }
        }
        if !xlFiles.isEmpty && !xlFailed {
            groups.append((xlFiles, .success(LaunchDocument.combining(xlDocuments))))
        }
        return groups
    }

    /// Reads a whole description file (at most ``maxFileSize`` bytes).
    /// - Throws: ``FileError`` naming the path and the reason.
    public static func readFile(_ path: String) throws(FileError) -> [UInt8] {
        try InputFile.read(path, limit: maxFileSize)
    }

    /// Compiles a `.dts` file with `dtc -I dts -O dtb` (includes resolve against its
    /// directory). The blob is capped at `FDT.maxSize` (a `/incbin/` of a device cannot
    /// make it grow without bound) and dtc at `dtcTimeout` seconds.
    /// - Throws: `DTCError` with dtc's own message, or when dtc is not installed.
    public static func compileDTS(path: String) throws -> [UInt8] {
        let dtc = try findTool("dtc")
        // dtc reads a whole `/incbin/` into memory first, so memory and CPU time are capped
        // by the shell's ulimit before exec (a watchdog alone would let it grow meanwhile).
        // "./" keeps a file named like an option from being read as one.
        let argument = path.hasPrefix("/") ? path : "./" + path
        let run = try ToolRun(
            "/bin/sh",
            [
                "-c", "ulimit -v \(dtcMemoryKiB) && ulimit -t \(Int(dtcTimeout)) && exec \"$0\" \"$@\"",
                dtc, "-q", "-I", "dts", "-O", "dtb", "-o", "-", argument,
            ],
            timeout: dtcTimeout, outputLimit: FDT.maxSize)
        if run.oversized { throw DTCError(message: "dtc output exceeds \(FDT.maxSize) bytes") }
        guard run.succeeded else {
            throw DTCError(message: "dtc failed (\(run.how), limits: \(dtcMemoryKiB) KiB, \(Int(dtcTimeout)) s): \(run.errorText)")
        }
        return run.output
    }

    /// How long dtc may run (wall clock for the watchdog, CPU seconds for ulimit).
    public static let dtcTimeout: Double = 60
    /// dtc's address-space cap (ulimit -v, KiB).
    public static let dtcMemoryKiB = 512 * 1024

    /// Looks a tool up on PATH (then /usr/bin).
    static func findTool(_ name: String) throws -> String {
        if let found = try? findProgram(name, package: "device-tree-compiler") { return found }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/\(name)") { return "/usr/bin/\(name)" }
        throw DTCError(message: "\(name) is not installed: run `apt-get install device-tree-compiler`")
    }

    /// Looks a program up on PATH.
    /// - Throws: ``MissingProgram`` naming the Debian `package` that has it.
    static func findProgram(_ name: String, package: String) throws(MissingProgram) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw MissingProgram(program: name, package: package)
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

extension LaunchDocument {
    /// Prefixes every node path with the file it came from.
    func locating(in file: String) -> LaunchDocument {
        var copy = self
        copy.origins = origins.mapValues { "\(file): \($0)" }
        copy.notes = notes.map { note in
            var note = note
            note.file = file
            return note
        }
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
        // Trees written for upstream Xen are decoded too: made-up files for modules the
        // tree locates in memory, PVH for domains without mode.
        var options = LaunchLoadOptions()
        options.placeholders = true
        guard let document = try? LaunchDecoder.decode(dtb: bytes, options: options) else { return false }
        guard let launch = try? document.spec.validated() else { return true }
        guard let again = try? LaunchDecoder.decode(dtb: LaunchEncoder.dtb(launch)) else {
            preconditionFailure("a valid decoded description failed to re-encode")
        }
        precondition(again.spec == LaunchEncoder.canonicalized(document.spec), "DTB round trip changed the model")
        // What validates plans: the Xenstore planner accepts every validated launch.
        precondition((try? XenstorePlanner().plan(launch)) != nil, "a valid description has no Xenstore plan")
        return true
    }

    /// xl.cfg parser and import; an accepted domain is validated (which must not trap), and
    /// a valid one must encode and plan.
    @discardableResult
    public static func xlConfig(_ bytes: [UInt8]) -> Bool {
        guard let imported = try? LaunchFile.importXL(bytes) else { return false }
        if let launch = try? LaunchSpec(domains: [imported.domain]).validated() {
            precondition((try? LaunchEncoder.dtb(launch)) != nil, "a valid imported domain failed to encode")
            precondition((try? XenstorePlanner().plan(launch)) != nil, "a valid imported domain has no Xenstore plan")
        }
        return true
    }
}
