//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombFiles
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `--pin` / `--pin-file`, shared by `seal`, `unseal` and `boot`.
struct PINOptions: ParsableArguments {
    @Flag(name: .customLong("pin"), help: "Ask for a PIN on the terminal (seal: the secret will need it).")
    var prompt = false
    @Option(name: .customLong("pin-file"), help: "Read the PIN from this file (first line).")
    var file: String?

    func validate() throws {
        if prompt && file != nil { throw ValidationError("give --pin or --pin-file, not both") }
    }

    /// The PIN, or nil when neither option is given.
    /// - Parameter confirm: ask twice (when sealing).
    func read(confirm: Bool) throws -> [UInt8]? {
        if let file {
            let bytes = try readSmallFile(file, limit: 4096, what: "PIN file")
            let line = Array(bytes.prefix { $0 != 0x0A && $0 != 0x0D })
            return try checked(line, source: file)
        }
        guard prompt else { return nil }
        let first = try readHidden(prompt: "PIN: ")
        if confirm, try readHidden(prompt: "PIN again: ") != first { throw ValidationError("the PINs differ") }
        return try checked(first, source: "the terminal")
    }

    private func checked(_ pin: [UInt8], source: String) throws -> [UInt8] {
        guard (1...SealedSecret.maximumPINSize).contains(pin.count) else {
            throw ValidationError("the PIN from \(source) must be 1 to \(SealedSecret.maximumPINSize) bytes")
        }
        return pin
    }

    /// One line from /dev/tty with echo off.
    private func readHidden(prompt: String) throws -> [UInt8] {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else { throw ValidationError("--pin needs a terminal; use --pin-file") }
        defer { close(tty) }
        var saved = termios()
        guard tcgetattr(tty, &saved) == 0 else { throw ValidationError("--pin: cannot read terminal settings") }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        _ = Array(prompt.utf8).withUnsafeBytes { write(tty, $0.baseAddress, $0.count) }
        tcsetattr(tty, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(tty, TCSAFLUSH, &saved)
            _ = write(tty, "\n", 1)
        }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(tty, &byte, 1) == 1, byte != 0x0A, line.count <= 256 { line.append(byte) }
        return line
    }
}

/// Reads a small input whole through ``InputFile`` (regular files only), or standard input
/// for "-"; more than `limit` bytes is refused.
func readSmallFile(_ path: String, limit: Int, what: String) throws -> [UInt8] {
    guard path == "-" else { return try InputFile.read(path, limit: limit) }
    let data = try FileHandle.standardInput.read(upToCount: limit + 1) ?? Data()
    guard data.count <= limit else { throw ValidationError("\(what) on standard input is larger than \(limit) bytes") }
    return Array(data)
}

/// A policy reference for people: hex, with the text when it is printable ASCII.
func describePolicyRef(_ reference: [UInt8]) -> String {
    if reference.isEmpty { return "(empty)" }
    let printable = reference.allSatisfy { (0x20..<0x7F).contains($0) && $0 != UInt8(ascii: "\"") }
    return printable ? "\"\(String(decoding: reference, as: UTF8.self))\" (\(reference.hexString))" : reference.hexString
}
