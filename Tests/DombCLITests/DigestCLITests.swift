//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// `domb digest`: the path it takes on one core and on several, checked against `openssl dgst`.
@Suite struct DigestCLITests {
    static let banks = ["sha1", "sha256", "sha384", "sha512", "sm3"]

    /// A 4 MiB file and what `openssl dgst` says of it, as `domb digest` prints it.
    static func sample(_ directory: TemporaryDirectory) throws -> (path: String, expected: String) {
        let data = (0..<(4 << 20) + 77).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let path = try directory.write("image", data)
        var lines: [String] = []
        for bank in banks {
            let digest = try Tools.run("openssl", ["dgst", "-\(bank)", "-binary", path]).stdout
            lines.append("\(bank == "sm3" ? "sm3_256" : bank):\(digest.hexString)  \(path)")
        }
        return (path, lines.joined(separator: "\n") + "\n")
    }

    static func hashThreads(_ stats: String) -> Int? {
        guard let range = stats.range(of: #"hash-threads (\d+)"#, options: .regularExpression) else { return nil }
        return Int(stats[range].split(separator: " ")[1])
    }

    /// The first CPU this process may run on (`taskset -c 0` fails where CPU 0 is not allowed).
    static func firstAllowedCPU() throws -> String {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
            let first = line.split(separator: "\t").last?.split(whereSeparator: { $0 == "," || $0 == "-" }).first
        else { throw ParseError.invalid("no Cpus_allowed_list in /proc/self/status") }
        return String(first)
    }

    /// Pinned to one core, domb takes the single-thread path (and still hashes right).
    @Test func oneCoreTakesTheSingleThreadPath() throws {
        let directory = try TemporaryDirectory()
        let (path, expected) = try Self.sample(directory)
        let result = try Tools.run(
            "env",
            ["-u", "DOMB_HASH_THREADS", try Tools.require("taskset"), "-c", try Self.firstAllowedCPU(), try DombBinary.path,
             "digest", "--stats", "--banks", Self.banks.joined(separator: ","), path], check: false)
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(Self.hashThreads(result.stderrText) == 1, "\(result.stderrText)")
        #expect(result.stdoutText == expected)
    }

    /// DOMB_HASH_THREADS forces the count either way; every bank still equals `openssl dgst`.
    @Test(arguments: [1, 2, 4])
    func environmentSetsTheThreads(threads: Int) throws {
        let directory = try TemporaryDirectory()
        let (path, expected) = try Self.sample(directory)
        let result = try DombBinary.run(
            ["digest", "--stats", "--banks", Self.banks.joined(separator: ","), path],
            environment: ["DOMB_HASH_THREADS": "\(threads)"])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(Self.hashThreads(result.stderrText) == threads, "\(result.stderrText)")
        #expect(result.stdoutText == expected)
    }

    @Test func malformedThreadCountIsAClearError() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("small", [1, 2, 3])
        for value in ["0", "lots", "65", "\u{1B}[31m"] {
            let result = try DombBinary.run(["digest", path], environment: ["DOMB_HASH_THREADS": value])
            #expect(result.status != 0)
            #expect(result.stderrText.contains("DOMB_HASH_THREADS must be a whole number from 1 to 64"), "\(result.stderrText)")
            #expect(!result.stderrText.contains("\u{1B}"), "untrusted text is escaped")
        }
    }
}
