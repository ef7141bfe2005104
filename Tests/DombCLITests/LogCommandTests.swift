//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

@Suite struct LogCommandTests {
    static let fixtures = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs/tpm2-tools"

    /// `domb measure` into a fresh swtpm, appending across runs; tpm2_eventlog reads the log
    /// without a warning; `domb log verify --tpm` and `--pcrs` agree; tampering is caught.
    @Test func measureThenVerifyAgainstSwtpm() throws {
        let directory = try TemporaryDirectory()
        let kernel = try directory.write("vmlinuz", (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        let config = try directory.write("dom1.cfg", "name = \"dom1\"\nmemory = 512\n")
        let log = directory.file("measure.log")
        try Swtpm.with { swtpm in
            let first = try DombBinary.run(
                ["measure", "--tpm", swtpm.tcti, "--log", log, "--domain", "dom1", "--role", "kernel", kernel])
            #expect(first.status == 0, "\(first.stderrText)")
            let second = try DombBinary.run(
                ["measure", "--tpm", swtpm.tcti, "--log", log, "--inline", "--domain", "dom1", config,
                 "--string", "console=hvc0", "--close"])
            #expect(second.status == 0, "\(second.stderrText)")
            #expect(second.stdoutText.contains("PCR 12 EV_IPL"))

            let tools = try Tools.run("tpm2_eventlog", [log])
            #expect(tools.stderrText.isEmpty, "tpm2_eventlog warned: \(tools.stderrText)")
            #expect(tools.stdoutText.contains("EV_EVENT_TAG"))
            #expect(tools.stdoutText.contains("EV_SEPARATOR"))

            let verify = try DombBinary.run(["log", "verify", log, "--tpm", swtpm.tcti])
            #expect(verify.status == 0, "\(verify.stderrText)")
            #expect(verify.stdoutText.contains("verified: 5 events, PCRs 12,13"))

            // The module event's sha256 is the file's.
            let shown = try DombBinary.run(["log", "show", log, "--json"])
            #expect(shown.status == 0)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout)) as? [String: Any])
            let events = try #require(object["events"] as? [[String: Any]])
            let digests = try #require(events.first?["digests"] as? [String: String])
            let openssl = try Tools.run("openssl", ["dgst", "-sha256", "-r", kernel]).stdoutText
            #expect(openssl.hasPrefix(try #require(digests["sha256"])))

            // Replay output feeds --pcrs; one changed PCR fails verification.
            let replay = try DombBinary.run(["log", "replay", log])
            #expect(replay.status == 0)
            let pcrFile = try directory.write("pcrs.txt", replay.stdoutText)
            #expect(try DombBinary.run(["log", "verify", log, "--pcrs", pcrFile]).status == 0)
            var lines = replay.stdoutText.split(separator: "\n").map(String.init)
            let index = try #require(lines.firstIndex { $0.contains("13: 0x") })
            lines[index] = "  13: 0x" + String(repeating: "0", count: lines[index].count - 8)
            let tampered = try directory.write("tampered.txt", lines.joined(separator: "\n"))
            let refused = try DombBinary.run(["log", "verify", log, "--pcrs", tampered])
            #expect(refused.status == 1)
            #expect(refused.stderrText.contains("PCR 13"))
        }
    }

    @Test func fixtureLogsShowReplayAndExport() throws {
        let path = Self.fixtures + "/event-sd-boot-fedora37.bin"
        let show = try DombBinary.run(["log", "show", path])
        #expect(show.status == 0, "\(show.stderrText)")
        #expect(show.stdoutText.contains("EV_EFI_VARIABLE_DRIVER_CONFIG"))
        let replay = try DombBinary.run(["log", "replay", path])
        #expect(replay.stdoutText.contains("12: 0x73B2090E3E72430531E7BC7D63E88826891EF4E04D6C1E250DC5C52DB24F2F48"))
        let export = try DombBinary.run(["log", "export", path, "--cel-json"])
        #expect(export.status == 0)
        let records = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout)) as? [[String: Any]])
        #expect(records.first?["content_type"] as? String == "pcclient_std")
        #expect(records.first?["recnum"] as? Int == 0)
        let content = try #require(records.last?["content"] as? [String: Any])
        #expect(content["event_type"] is String)
        #expect(try DombBinary.run(["log", "export", path]).status != 0, "a format must be chosen")
    }

    @Test func damagedLogsAreRefusedWithOffsetAndReason() throws {
        let directory = try TemporaryDirectory()
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/event.bin")))
        let truncated = try directory.write("truncated.bin", Array(original.dropLast(3)))
        let result = try DombBinary.run(["log", "show", truncated])
        #expect(result.status != 0)
        #expect(result.stderrText.contains(truncated))
        #expect(result.stderrText.contains("offset"))
        #expect(!result.stderrText.contains("Fatal error"))
        let missing = try DombBinary.run(["log", "replay", directory.file("nope")])
        #expect(missing.status != 0)
        #expect(missing.stderrText.contains("no such file"))
    }

    @Test func measureRefusesMissingFilesBeforeExtending() throws {
        let directory = try TemporaryDirectory()
        let good = try directory.write("good", "x")
        let log = directory.file("log.bin")
        try Swtpm.with { swtpm in
            let result = try DombBinary.run(["measure", "--tpm", swtpm.tcti, "--log", log, good, directory.file("missing")])
            #expect(result.status != 0)
            #expect(result.stderrText.contains("missing: open: no such file"))
            #expect(!FileManager.default.fileExists(atPath: log))
            let pcrs = try DombBinary.run(["tpm", "pcrread", "--tpm", swtpm.tcti, "--pcrs", "13", "--banks", "sha256"])
            #expect(pcrs.stdoutText.contains("13: 0x" + String(repeating: "0", count: 64)))
        }
    }

    @Test func measureRefusesALogWithOtherBanks() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("f", "x")
        let log = try directory.write("fw.bin", try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/event-sd-boot-fedora37.bin"))))
        try Swtpm.with { swtpm in
            let result = try DombBinary.run(["measure", "--tpm", swtpm.tcti, "--log", log, file])
            #expect(result.status != 0)
            #expect(result.stderrText.contains("banks"))
            let unchanged = try [UInt8](Data(contentsOf: URL(fileURLWithPath: log)))
            #expect(unchanged == (try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/event-sd-boot-fedora37.bin")))))
            // And nothing was extended.
            let pcrs = try DombBinary.run(["tpm", "pcrread", "--tpm", swtpm.tcti, "--pcrs", "13", "--banks", "sha256"])
            #expect(pcrs.stdoutText.contains("13: 0x" + String(repeating: "0", count: 64)))
        }
    }
}

/// `domb log show|replay|verify` on logs that need quirks: each is named.
@Suite struct LogCommandQuirkTests {
    static let realWorld = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs/real-world"

    @Test func showNamesTheQuirksALogNeeded() throws {
        let hcrtm = try DombBinary.run(["log", "show", Self.realWorld + "/tpm2-tss-hcrtm.bin"])
        #expect(hcrtm.status == 0, "\(hcrtm.stderrText)")
        #expect(hcrtm.stdoutText.contains("quirk:  H-CRTM without a StartupLocality record (event 1 is EV_EFI_HCRTM_EVENT): PCR 0 starts at …04"))
        let bootGuard = try DombBinary.run(["log", "show", Self.realWorld + "/keylime-bootguard.bin"])
        #expect(bootGuard.stdoutText.contains("quirk:  StartupLocality 3 (event 1)"))
        let windows = try DombBinary.run(["log", "show", Self.realWorld + "/go-attestation-windows-option-rom.bin"])
        #expect(windows.status == 0, "\(windows.stderrText)")
        #expect(windows.stdoutText.contains("quirk:  1 EV_NO_ACTION record on PCR 0xFFFFFFFF from event 60"))
        #expect(windows.stdoutText.contains("\n60   -1  EV_NO_ACTION "), "\(windows.stdoutText)")
        let verbose = try DombBinary.run(["log", "show", "--verbose", Self.realWorld + "/go-attestation-windows-option-rom.bin"])
        #expect(verbose.stdoutText.contains("#60 PCR 0xFFFFFFFF (never extended) EV_NO_ACTION"))
        let json = try DombBinary.run(["log", "show", "--json", Self.realWorld + "/go-attestation-windows-option-rom.bin"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
        let quirks = try #require(object["quirks"] as? [[String: Any]])
        #expect(quirks.map { $0["kind"] as? String } == ["no-action-on-pcr-minus-one"])
        #expect(quirks.first?["workaround"] as? Bool == true)
        #expect(quirks.first?["first"] as? Int == 60)
        // Each quirk carries the facts of its kind and no others.
        let hcrtmJSON = try DombBinary.run(["log", "show", "--json", Self.realWorld + "/tpm2-tss-hcrtm.bin"])
        let hcrtmObject = try #require(try JSONSerialization.jsonObject(with: Data(hcrtmJSON.stdout)) as? [String: Any])
        let hcrtmQuirk = try #require((hcrtmObject["quirks"] as? [[String: Any]])?.first)
        #expect(hcrtmQuirk["kind"] as? String == "hcrtm-start-value", "\(hcrtmQuirk)")
        #expect(hcrtmQuirk["locality"] as? Int == 4 && hcrtmQuirk["event"] as? Int == 1, "\(hcrtmQuirk)")
        #expect(hcrtmQuirk["count"] == nil && hcrtmQuirk["banks"] == nil, "\(hcrtmQuirk)")
        // The log verifies against its own replay: the PCR −1 record (with a SHA-1 digest, as
        // Windows writes it) is on no PCR, so no record rule applies to its digest.
        let directory = try TemporaryDirectory()
        let replay = try DombBinary.run(["log", "replay", Self.realWorld + "/go-attestation-windows-option-rom.bin"])
        let pcrs = try directory.write("pcrs.txt", replay.stdoutText)
        let verify = try DombBinary.run(["log", "verify", Self.realWorld + "/go-attestation-windows-option-rom.bin", "--pcrs", pcrs])
        #expect(verify.status == 0, "\(verify.stderrText)")
        #expect(verify.stdoutText.contains("quirk: 1 EV_NO_ACTION record on PCR 0xFFFFFFFF"))
    }

    /// A fixed-size log area: replay stops at the fill and says where; anything after it
    /// is refused with its offset; replay stdout stays the --pcrs format.
    @Test func zeroFillIsReportedAndDirtFillRefused() throws {
        let directory = try TemporaryDirectory()
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.realWorld + "/tcglog-parser.bin")))
        let padded = try directory.write("padded.bin", original + [UInt8](repeating: 0, count: 65536 - original.count))
        let replay = try DombBinary.run(["log", "replay", padded])
        #expect(replay.status == 0, "\(replay.stderrText)")
        #expect(replay.stderrText.contains("quirk: zero fill after the last record: \(65536 - original.count) bytes of 0x00 from offset \(original.count)"))
        let clean = try DombBinary.run(["log", "replay", Self.realWorld + "/tcglog-parser.bin"])
        #expect(replay.stdoutText == clean.stdoutText)
        let pcrs = try directory.write("pcrs.txt", replay.stdoutText)
        let verify = try DombBinary.run(["log", "verify", padded, "--pcrs", pcrs])
        #expect(verify.status == 0, "\(verify.stderrText)")
        #expect(verify.stdoutText.contains("quirk: zero fill"))
        var dirty = original + [UInt8](repeating: 0, count: 4096)
        dirty[original.count + 4000] = 0x5A
        let dirtyPath = try directory.write("dirty.bin", dirty)
        let refused = try DombBinary.run(["log", "replay", dirtyPath])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("byte 0x5a at offset \(original.count + 4000) follows the zero fill that starts at offset \(original.count)"))
        #expect(refused.stdoutText.isEmpty)
    }

    /// Header sha1, sha256, sha384, sha512; records sha1 and sha256 (tpm2-tools fixture):
    /// replay says which banks it could not replay; verify fails if the TPM has them.
    @Test func bankSubsetsAreMarkedUntrusted() throws {
        let path = LogCommandTests.fixtures + "/event-uefiaction.bin"
        let replay = try DombBinary.run(["log", "replay", path])
        #expect(replay.status == 0, "\(replay.stderrText)")
        #expect(replay.stderrText.contains("sha384 PCR 4 not replayed"))
        #expect(replay.stderrText.contains("sha512 PCR 4 not replayed"))
        #expect(!replay.stdoutText.contains("sha384"))
        let directory = try TemporaryDirectory()
        let pcrs = try directory.write("pcrs.txt", replay.stdoutText + "sha384:\n   4: 0x" + String(repeating: "00", count: 48) + "\n")
        let verify = try DombBinary.run(["log", "verify", path, "--pcrs", pcrs])
        #expect(verify.status == 1)
        #expect(verify.stderrText.contains("PCR 4 sha384: bank is active but the log has no digests for it"))
    }
}
