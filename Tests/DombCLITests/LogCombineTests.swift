//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// `domb log combine`: a real firmware log plus a domb launch log, replayed by tpm2_eventlog.
@Suite struct LogCombineTests {
    static let firmware = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs/real-world/go-eventlog-arch-linux-workstation.bin"

    /// tpm2_eventlog's replayed PCRs: ["sha256:12": "0x…"].
    static func pcrs(_ path: String) throws -> [String: String] {
        let output = try Tools.run("tpm2_eventlog", [path]).stdoutText
        guard let start = output.range(of: "\npcrs:\n") else { return [:] }
        var bank = ""
        var result: [String: String] = [:]
        for line in output[start.upperBound...].split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasSuffix(":"), !trimmed.contains(" ") {
                bank = String(trimmed.dropLast())
            } else if let colon = trimmed.firstIndex(of: ":") {
                result["\(bank):\(trimmed[..<colon].trimmingCharacters(in: .whitespaces))"] = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return result
    }

    /// SHA-1 and SHA-256 with openssl, not domb.
    static func digest(_ data: [UInt8], _ name: String, in work: TemporaryDirectory) throws -> [UInt8] {
        let file = try work.write("data", data)
        let text = try Tools.run("openssl", ["dgst", "-\(name)", "-r", file]).stdoutText
        return try #require([UInt8](hex: String(text.prefix { $0 != " " })))
    }

    @Test func tpm2EventlogReplaysFirmwareAndLaunchPCRsFromTheCombinedLog() throws {
        let work = try TemporaryDirectory(prefix: "domb-combine")
        // A launch log in the firmware's banks: two images on PCR 13, a configuration on 12, separators.
        var launch = EventLog(banks: [.sha1, .sha256])
        var expected: [String: [UInt8]] = ["sha1:12": [UInt8](repeating: 0, count: 20), "sha1:13": [UInt8](repeating: 0, count: 20),
            "sha256:12": [UInt8](repeating: 0, count: 32), "sha256:13": [UInt8](repeating: 0, count: 32)]
        for (pcr, type, data) in [(12, EventType.ipl, Array("dom1 cmdline console=hvc0".utf8)), (13, .eventTag, Array("kernel".utf8)),
            (13, .eventTag, Array("initrd".utf8)), (12, .separator, [0, 0, 0, 0]), (13, .separator, [0, 0, 0, 0])] {
            let sha1 = try Self.digest(data, "sha1", in: work)
            let sha256 = try Self.digest(data, "sha256", in: work)
            try launch.append(UnverifiedEvent(pcr: UInt32(pcr), type: type, digests: DigestSet([TaggedDigest(.sha1, sha1), TaggedDigest(.sha256, sha256)]), data: data))
            expected["sha1:\(pcr)"] = try Self.digest((expected["sha1:\(pcr)"] ?? []) + sha1, "sha1", in: work)
            expected["sha256:\(pcr)"] = try Self.digest((expected["sha256:\(pcr)"] ?? []) + sha256, "sha256", in: work)
        }
        let launchPath = try work.write("launch.bin", launch.serialized())
        let result = try DombBinary.run(["log", "combine", Self.firmware, launchPath, "-o", work.file("combined.bin")])
        #expect(result.status == 0, "\(result.stderrText)")

        let before = try Self.pcrs(Self.firmware)
        let after = try Self.pcrs(work.file("combined.bin"))
        #expect(!before.isEmpty)
        for (key, value) in before { #expect(after[key] == value, "\(key) changed") }
        for (key, value) in expected { #expect(after[key] == "0x" + value.hexString, "\(key)") }
        // The firmware's bytes come first, unchanged.
        let firmwareBytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.firmware)))
        let combined = try [UInt8](Data(contentsOf: URL(fileURLWithPath: work.file("combined.bin"))))
        #expect(Array(combined.prefix(firmwareBytes.count)) == firmwareBytes)

        // A launch log in other banks than the firmware's is refused.
        var sha256Only = EventLog(banks: [.sha256])
        try sha256Only.append(UnverifiedEvent(pcr: 13, type: .eventTag, digests: DigestSet([TaggedDigest(.sha256, [UInt8](repeating: 1, count: 32))]), data: [1]))
        let mismatched = try work.write("sha256.bin", sha256Only.serialized())
        let refused = try DombBinary.run(["log", "combine", Self.firmware, mismatched, "-o", work.file("bad.bin")])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("are both logs from this boot"))
        #expect(!FileManager.default.fileExists(atPath: work.file("bad.bin")))
    }
}
