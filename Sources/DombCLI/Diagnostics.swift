//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombArchive
import DombCore
import DombCrypto
import DombFiles
import DombModel
import DombTPM
import Foundation

/// domb's exit statuses, the same for every command (each command's `--help` says what
/// 0 and 1 mean for it).
enum ExitStatus: Int32, CaseIterable, Comparable, Sendable {
    /// The command did its work; a verifier found what it checked good.
    case success = 0
    /// The input was read and refused: malformed, invalid, not verified, different.
    case refused = 1
    /// The command could not run: a file missing, unreadable or not a regular file, the
    /// TPM, Xen or a tool unavailable, an output that cannot be written.
    case cannotRun = 2
    /// Wrong usage: an unknown command or option, a missing or malformed argument
    /// (`EX_USAGE`, as swift-argument-parser exits).
    case usage = 64

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The "Exit status" paragraph of a command's `--help`.
    ///
    /// - Parameters:
    ///   - success: what 0 means for this command.
    ///   - refused: what 1 means for this command.
    ///   - interruptible: the command stops at a safe point on SIGINT or SIGTERM and exits
    ///     128 + the signal (`boot`, `measure`).
    static func help(success: String, refused: String, interruptible: Bool = false) -> String {
        var text = """
            Exit status: 0 \(success); 1 \(refused); 2 it could not run (a file missing, \
            unreadable or not a regular file, the TPM, Xen or a tool unavailable, an output \
            that cannot be written); 64 wrong usage (unknown command or option, missing argument)
            """
        if interruptible { text += "; 130 or 143 stopped by SIGINT or SIGTERM before anything was started" }
        return text + "."
    }
}

/// What a failure looks like to a person: one line saying what failed, where (the file,
/// member, node, domain or PCR, carried by the error's own message) and, when there is
/// one, what to do; and the exit status that goes with it.
struct Diagnostic: Sendable, Equatable {
    var message: String
    var hint: String?
    var status: ExitStatus

    /// `domb bundle verify: /tmp/x: open: no such file — check the path`: untrusted text
    /// (member names, record fields, file contents) escaped through ``TerminalText``.
    func line(command: String) -> String {
        let text = TerminalText.escape(message, keepingLineBreaks: true)
        return "\(command): \(text)\(hint.map { " — \($0)" } ?? "")"
    }
}

/// The one error formatter of the CLI: every error a command throws, and every failure it
/// reports itself, is shown through ``Diagnostics``.
enum Diagnostics {
    /// The diagnostic for an error a command threw.
    static func diagnose(_ error: any Error) -> Diagnostic {
        switch error {
        case let context as ContextError:
            // The context (file, node, domain) leads; the cause decides hint and status.
            var inner = diagnose(context.underlying)
            inner.message = "\(context.context): \(inner.message)"
            return inner
        case let file as FileError:
            return Diagnostic(message: file.description, hint: hint(for: file), status: .cannotRun)
        case let foundation as CocoaError:
            // A Foundation file error that got this far: its path and reason in plain words,
            // never its `Error Domain=NSCocoaErrorDomain … UserInfo=` dump.
            return diagnose(fileError(foundation))
        case let archive as ArchiveError where archive.isNotATarArchive:
            return Diagnostic(message: archive.description, hint: "a bundle is the tar file `domb build` writes", status: .refused)
        case let parse as ParseError where parse.code == .readFailed:
            // An image source that could not be opened or read (the file, not its content).
            let hint = parse.reason.contains("no such file") ? "check the path" : nil
            return Diagnostic(message: parse.description, hint: hint, status: .cannotRun)
        case let tpm as TPMError:
            return Diagnostic(message: tpm.description, hint: hint(for: tpm), status: tpm.isRefusal ? .refused : .cannotRun)
        case let dtc as DTCError where dtc.message.contains("is not installed"):
            return Diagnostic(message: dtc.message, hint: nil, status: .cannotRun)
        case let graphviz as GraphvizError:
            return Diagnostic(message: graphviz.message, hint: nil, status: .cannotRun)
        case let missing as MissingProgram:
            return Diagnostic(message: missing.description, hint: "install the Debian package \(missing.package)", status: .cannotRun)
        case let invalid as LaunchValidationError:
            return Diagnostic(message: invalid.description, hint: nil, status: .refused)
        case let validation as ValidationError:
            // Library code's (``DombMain`` sends a command's own, thrown by `run()`, through
            // ``usage(_:path:)``, like the checks made while parsing).
            return Diagnostic(message: validation.message, hint: nil, status: .refused)
        default:
            return Diagnostic(message: "\(error)", hint: nil, status: .refused)
        }
    }

    /// A Foundation file error as a ``FileError``: the path it names, the `errno` beneath it
    /// (`NSUnderlyingError` in `NSPOSIXErrorDomain`) or else a reason from its code.
    static func fileError(_ error: CocoaError) -> FileError {
        let path = error.filePath ?? error.url?.path ?? "a file"
        let code = error.code.rawValue
        // Foundation's ranges: 256–511 reading, 512–767 writing (FoundationErrors.h).
        let operation = (256..<512).contains(code) ? "read" : (512..<768).contains(code) ? "write" : "use"
        if let underlying = error.underlying.map({ $0 as NSError }), underlying.domain == NSPOSIXErrorDomain {
            return FileError(path: path, operation: operation, code: Int32(truncatingIfNeeded: underlying.code))
        }
        let errnoValue: Int32? =
            switch error.code {
            case .fileNoSuchFile, .fileReadNoSuchFile: ENOENT
            case .fileReadNoPermission, .fileWriteNoPermission: EACCES
            case .fileWriteOutOfSpace: ENOSPC
            case .fileWriteVolumeReadOnly: EROFS
            case .fileWriteFileExists: EEXIST
            default: nil
            }
        if let errnoValue { return FileError(path: path, operation: operation, code: errnoValue) }
        return FileError(path: path, operation: operation, message: "failed (Foundation file error \(code))")
    }

    /// What to do about a file that could not be used.
    static func hint(for error: FileError) -> String? {
        switch error.code {
        case ENOENT: return "check the path"
        case EACCES, EPERM: return "check its permissions (or run as root)"
        case ENOSPC, EDQUOT: return "free some space on that file system"
        case EROFS: return "write somewhere writable"
        case EISDIR: return "give a file, not a directory"
        default:
            if error.message.contains("not a regular file") { return "give a regular file" }
            return nil
        }
    }

    /// What to do about a TPM that could not be used.
    static func hint(for error: TPMError) -> String? {
        // TCTI layer (10): nothing answered at the address.
        guard error.layer == 10 || error.operation.hasPrefix("Tss2_TctiLdr") else { return nil }
        return "is the TPM there? give --tpm TCTI (device:/dev/tpmrm0, swtpm:host=127.0.0.1,port=2321) or set $TPM2TOOLS_TCTI"
    }

    /// Prints `diagnostic` on standard error for the command named by the process's
    /// arguments.
    static func print(_ diagnostic: Diagnostic) {
        FileHandle.standardError.write(Data((diagnostic.line(command: CommandPath.current.name) + "\n").utf8))
    }

    /// Prints `error` and exits with its status.
    static func exit(with error: any Error) -> Never {
        let diagnostic = diagnose(error)
        print(diagnostic)
        Foundation.exit(diagnostic.status.rawValue)
    }

    /// Prints a line of a failure the command reports itself (a refusal it explains),
    /// through the same escaping.
    static func report(_ message: String) {
        print(Diagnostic(message: message, hint: nil, status: .refused))
    }

    /// Prints a verifier's refusal of `subject`: one line with the reason when there is one,
    /// else a first line and one indented line per reason.
    static func refusal(_ subject: String, verdict: String = "NOT verified", reasons: [String]) {
        let message =
            reasons.count == 1
            ? "\(subject): \(verdict): \(reasons[0])"
            : "\(subject): \(verdict) (\(reasons.count) reasons):" + reasons.map { "\n  \($0)" }.joined()
        print(Diagnostic(message: message, hint: nil, status: .refused))
    }
}

extension TPMError {
    /// Whether the TPM refused on purpose (a policy that does not hold, a wrong
    /// authorization): the input is at fault, not the TPM's availability.
    var isRefusal: Bool {
        guard layer == 0 else { return false }
        // Format-one codes carry a handle, parameter or session number (Part 2, §6.6.2):
        // keep the error bits. TPM_RC_POLICY_FAIL, TPM_RC_AUTH_FAIL, TPM_RC_BAD_AUTH, and
        // the format-zero TPM_RC_PCR_CHANGED.
        let code = baseCode & 0x80 != 0 ? baseCode & 0xBF : baseCode
        return [0x09D, 0x08E, 0x0A2, 0x128].contains(code)
    }
}

/// The subcommand the process's arguments name, found by walking the command tree the way
/// the parser does: for the line prefix of every diagnostic, and for usage errors before a
/// command could be parsed (`domb bootx`, `domb bundle verfy`).
struct CommandPath {
    /// The commands named, the root first.
    var commands: [any ParsableCommand.Type]
    /// The first word where a subcommand was expected and none matched.
    var unknown: String?

    static let current = CommandPath(arguments: Array(CommandLine.arguments.dropFirst()))

    init(arguments: [String]) {
        var commands: [any ParsableCommand.Type] = [DombCommand.self]
        var unknown: String?
        for argument in arguments {
            guard !argument.hasPrefix("-"), let current = commands.last else { break }
            let subcommands = current.configuration.subcommands
            guard !subcommands.isEmpty else { break }
            guard let next = subcommands.first(where: { Self.names($0).contains(argument) }) else {
                unknown = argument
                break
            }
            commands.append(next)
        }
        self.commands = commands
        self.unknown = unknown
    }

    /// "domb bundle verify".
    var name: String { commands.map { $0._commandName }.joined(separator: " ") }

    /// The subcommands of the last command named.
    var subcommandNames: [String] {
        (commands.last?.configuration.subcommands ?? []).filter { $0.configuration.shouldDisplay }.map { $0._commandName }
    }

    private static func names(_ command: any ParsableCommand.Type) -> [String] {
        [command._commandName] + command.configuration.aliases
    }

    /// The subcommand closest to `word` (a typo of it: an edit distance of at most 2, or a
    /// prefix of it), if there is one.
    func suggestion(for word: String) -> String? {
        let scored = subcommandNames.map { ($0, Self.distance(word, $0)) }.filter { $0.1 <= 2 || $0.0.hasPrefix(word) }
        return scored.min { $0.1 < $1.1 }?.0
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}

extension Diagnostics {
    /// The diagnostic for a command line the parser refused (exit 64), or nil to let the
    /// parser's own output through (help, version).
    static func usage(_ error: any Error, path: CommandPath) -> Diagnostic? {
        guard DombCommand.exitCode(for: error) == .validationFailure else { return nil }
        if let unknown = path.unknown {
            let list = path.subcommandNames.joined(separator: ", ")
            let guess = path.suggestion(for: unknown).map { "did you mean '\($0)'? " } ?? ""
            return Diagnostic(
                message: "unknown command '\(unknown)'",
                hint: "\(guess)the commands are \(list) (`\(path.name) --help` says what each does)", status: .usage)
        }
        var message = DombCommand.message(for: error)
        if let first = message.first { message = first.lowercased() + message.dropFirst() }
        return Diagnostic(message: message, hint: "see `\(path.name) --help`", status: .usage)
    }

    /// The diagnostic for a command group named without one of its commands (`domb`,
    /// `domb bundle`).
    static func noCommand(_ path: CommandPath) -> Diagnostic {
        Diagnostic(
            message: "give a command: \(path.subcommandNames.joined(separator: ", "))",
            hint: "`\(path.name) --help` says what each does", status: .usage)
    }
}
