//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// What the verifiers call verified: whole records against the golden values, one set of
/// record rules for `log verify` and `attest verify`, untrusted text escaped.
@Suite struct VerdictCLITests {
    static let tss = ["TSS2_LOG": "all+none"]

    /// The sha256 of `bytes` as the OpenSSL CLI computes it.
    static func sha256(_ bytes: [UInt8]) throws -> [UInt8] {
        try Tools.run("openssl", ["dgst", "-sha256", "-binary"], input: bytes).stdout
    }

    /// A log of `events` (sha256 only), with a PCR file its replay gives (`domb log replay`).
    static func writeLog(_ events: [UnverifiedEvent], in directory: TemporaryDirectory) throws -> (log: String, pcrs: String) {
        var log = EventLog(banks: [.sha256])
        for event in events { try log.append(event) }
        let path = try directory.write("crafted.log", log.serialized())
        let replay = try DombBinary.run(["log", "replay", path])
        #expect(replay.status == 0, "\(replay.stderrText)")
        return (path, try directory.write("crafted.pcrs", replay.stdoutText))
    }

    static func digests(_ bytes: [UInt8]) throws -> DigestSet {
        var set = DigestSet()
        set[.sha256] = try sha256(bytes)
        return set
    }

    static func module(pcr: UInt32 = 13, domain: String = "dom1", label: String = "vmlinuz", digest: [UInt8]) throws -> UnverifiedEvent {
        var set = DigestSet()
        set[.sha256] = digest
        let record = ModuleRecord(domain: domain, role: "kernel", size: 5000, label: label, digests: set)
        return UnverifiedEvent(pcr: pcr, type: .eventTag, digests: set, data: try record.serialized())
    }

    /// Writes to `forged` the quote file `quote` with its event log edited by `edit`, which
    /// gets the log's bytes, the range of the web kernel's module record in them and its
    /// event. The log rides unsigned in the quote file: the quote and its signature still hold.
    static func editWebKernelRecord(
        quote: String, to forged: String, _ edit: (inout [UInt8], Range<Int>, UnverifiedEvent) throws -> Void
    ) throws {
        var file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: quote))) as? [String: Any])
        let encoded = try #require(file["eventLog"] as? String)
        var log = try #require(Data(base64Encoded: encoded)).map { $0 }
        let parsed = try EventLog(parsing: log)
        let web = try #require(parsed.events.first { event in
            if case .module(let record)? = try? DombEvent(event) { return record.domain == "web" && record.role == "kernel" }
            return false
        })
        // TCG_PCR_EVENT2 data follows the digests.
        let record = try #require(log[web.offset...].firstRange(of: web.data))
        try edit(&log, record, web)
        file["eventLog"] = Data(log).base64EncodedString()
        try JSONSerialization.data(withJSONObject: file).write(to: URL(fileURLWithPath: forged))
    }

    static func separator(_ pcr: UInt32) throws -> UnverifiedEvent {
        UnverifiedEvent(pcr: pcr, type: .separator, digests: try digests([0, 0, 0, 0]), data: [0, 0, 0, 0])
    }

    /// `log verify` and `attest verify` apply the same record rules: an EV_NO_ACTION that
    /// carries a kernel's digest, and a module record after the launch's separator, replay
    /// fine and are refused by both.
    @Test(arguments: ["no-action-with-digest", "module-after-separator"])
    func logVerifyRefusesWhatAttestVerifyRefuses(kind: String) throws {
        let directory = try TemporaryDirectory()
        let kernel = try Self.sha256(Array("kernel".utf8))
        var events = [try Self.module(digest: kernel), try Self.separator(13)]
        if kind == "no-action-with-digest" {
            var set = DigestSet()
            set[.sha256] = try Self.sha256(Array("a second kernel".utf8))
            events.insert(UnverifiedEvent(pcr: 13, type: .noAction, digests: set, data: Array("hidden".utf8)), at: 1)
        } else {
            events.append(try Self.module(label: "late", digest: try Self.sha256(Array("late kernel".utf8))))
        }
        let (log, pcrs) = try Self.writeLog(events, in: directory)
        let result = try DombBinary.run(["log", "verify", log, "--pcrs", pcrs])
        #expect(result.status == 1, "\(result.stdoutText) \(result.stderrText)")
        let expected =
            kind == "no-action-with-digest"
            ? "event #1 (EV_NO_ACTION) on PCR 13 carries a non-zero digest"
            : "event #2 (EV_EVENT_TAG) on PCR 13 comes after its closing event #1"
        #expect(result.stderrText.contains(expected), "\(result.stderrText)")
        #expect(result.stderrText.contains("NOT verified"))

        // The same log, consistent, verifies.
        let (goodLog, goodPCRs) = try Self.writeLog([try Self.module(digest: kernel), try Self.separator(13)], in: directory)
        let good = try DombBinary.run(["log", "verify", goodLog, "--pcrs", goodPCRs])
        #expect(good.status == 0, "\(good.stderrText)")
    }

    /// Records in a log are attacker-controlled: a label with terminal escapes is shown
    /// escaped by `log show` and `log verify`, never raw.
    @Test func untrustedTextNeverReachesTheTerminalRaw() throws {
        let directory = try TemporaryDirectory()
        let hostile = "\u{1B}[2J\u{1B}]0;owned\u{07}\rVERIFIED\u{202E}"
        let event = try Self.module(domain: "dom\u{1B}[31m1", label: hostile, digest: try Self.sha256(Array("k".utf8)))
        var badDigest = event
        badDigest.digests[.sha256] = try Self.sha256(Array("other".utf8))  // the record no longer matches
        let (log, pcrs) = try Self.writeLog([badDigest], in: directory)
        for arguments in [["log", "show", log], ["log", "verify", log, "--pcrs", pcrs]] {
            let result = try DombBinary.run(arguments)
            let output = result.stdout + result.stderr
            #expect(!output.contains(0x1B) && !output.contains(0x07) && !output.contains(0x0D), "\(arguments): raw control bytes")
            #expect(!result.stdoutText.contains("\u{202E}") && !result.stderrText.contains("\u{202E}"))
        }
        let shown = try DombBinary.run(["log", "show", log]).stdoutText
        #expect(shown.contains(#"domain "dom\e[31m1""#), "\(shown)")
        #expect(shown.contains(#""\e[2J\e]0;owned\x07\rVERIFIED\u{202e}""#), "\(shown)")
    }

    /// `attest verify --bundle` compares whole records: a host that rewrites a module
    /// record's domain (the digest untouched, so the replay still matches) is refused, and
    /// the forged text is not printed as launched.
    @Test func aRewrittenModuleRecordIsRefusedAgainstTheBundle() throws {
        let work = try TemporaryDirectory(prefix: "domb-verdict")
        let (bundle, key) = try BootCLITests.demoBundle(in: work)
        try Swtpm.with { swtpm in
            let boot = try DombBinary.run(
                ["boot", bundle, "--pubkey", key, "--tpm", swtpm.tcti, "--backend", "plan", "--eventlog", work.file("eventlog.bin"),
                 "--lock-dir", work.file("locks")], environment: Self.tss)
            #expect(boot.status == 0, "\(boot.stderrText)")
            #expect(try DombBinary.run(["ak", "create", "--tpm", swtpm.tcti, "-o", work.file("ak.pub.pem")], environment: Self.tss).status == 0)
            let nonce = "00112233445566778899aabbccddeeff00112233"
            let quote = try DombBinary.run(
                ["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "--eventlog", work.file("eventlog.bin"), "-o", work.file("quote.json")],
                environment: Self.tss)
            #expect(quote.status == 0, "\(quote.stderrText)")
        }
        func verify(_ quote: String) throws -> ProcessResult {
            try DombBinary.run([
                "attest", "verify", quote, "--ak-pub", work.file("ak.pub.pem"), "--nonce", "00112233445566778899aabbccddeeff00112233",
                "--bundle", bundle, "--pubkey", key,
            ])
        }
        let genuine = try verify(work.file("quote.json"))
        #expect(genuine.status == 0, "\(genuine.stdoutText) \(genuine.stderrText)")
        #expect(genuine.stdoutText.contains("launched: web kernel modules/web/kernel ("), "\(genuine.stdoutText)")

        // The log rides unsigned in the quote file: rename domain "web" to "wex" in its module record.
        let forged = work.file("forged.json")
        try Self.editWebKernelRecord(quote: work.file("quote.json"), to: forged) { log, record, _ in
            let domain = try #require(log[record].firstRange(of: Array("web".utf8)))
            log[domain.lowerBound + 2] = UInt8(ascii: "x")
        }
        // The edit is in data no digest covers: the quote, the signature and the replay still hold.
        let result = try verify(forged)
        #expect(result.status == 1, "\(result.stdoutText)")
        #expect(result.stdoutText.contains("REFUSED"))
        #expect(result.stdoutText.contains("[golden-event]") && result.stdoutText.contains("is not the golden record of web kernel"), "\(result.stdoutText)")
        #expect(!result.stdoutText.contains("wex"), "the forged text is never printed as launched")
        #expect(!result.stdoutText.contains("[replay]"))
    }

    /// A bundle built for fewer banks than the TPM has: the launch extends every active
    /// bank and its module records list every bank's digest, so the records are not the
    /// bundle's byte for byte. The genuine launch verifies on the bundle's banks; a quote
    /// of only the banks the bundle lacks is refused; and a record that names, for a bank
    /// the bundle lacks, a digest other than the one extended is refused (the replay alone
    /// cannot see it).
    @Test func aBundleWithFewerBanksThanTheTPMVerifiesOnItsOwnBanks() throws {
        let work = try TemporaryDirectory(prefix: "domb-verdict-banks")
        _ = try GuestImages.directory()
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", work.file("signer.pub.pem")])
        let bundle = work.file("sha256.bundle")
        let build = try DombBinary.run(
            ["build", Repository.root + "/examples/demo/launch.dts", "--key", key, "--banks", "sha256", "-o", bundle, "--no-progress"])
        try #require(build.status == 0, "\(build.stderrText)")
        let nonce = "00112233445566778899aabbccddeeff00112233"
        try Swtpm.with { swtpm in
            let info = try DombBinary.run(["tpm", "info", "--tpm", swtpm.tcti], environment: Self.tss)
            try #require(info.stdoutText.contains("sha1") && info.stdoutText.contains("sha384"), "the swtpm must have more banks than the bundle: \(info.stdoutText)")
            let boot = try DombBinary.run(
                ["boot", bundle, "--pubkey", work.file("signer.pub.pem"), "--tpm", swtpm.tcti, "--backend", "plan",
                 "--eventlog", work.file("eventlog.bin"), "--lock-dir", work.file("locks"), "--json"], environment: Self.tss)
            try #require(boot.status == 0, "\(boot.stderrText)")
            // The log lists four banks, so it is not the predicted one; the PCRs are the predicted ones.
            let report = try #require(try JSONSerialization.jsonObject(with: Data(boot.stdout)) as? [String: Any])
            #expect(report["matchesPrediction"] as? Bool == false, "\(report)")
            #expect(report["matchesPredictedPCRs"] as? Bool == true, "\(report)")
            let predicted = try DombBinary.run(["predict", bundle, "--pubkey", work.file("signer.pub.pem"), "--pcrread"]).stdoutText
            let pcrread = try Tools.run("tpm2_pcrread", ["-T", swtpm.tcti, "sha256:12,13"], environment: Self.tss).stdoutText
            #expect(try PCRValues(parsingText: predicted) == PCRValues(parsingText: pcrread), "tpm2_pcrread:\n\(pcrread)\ndomb predict --pcrread:\n\(predicted)")
            #expect(try DombBinary.run(["ak", "create", "--tpm", swtpm.tcti, "-o", work.file("ak.pub.pem")], environment: Self.tss).status == 0)
            for (name, pcrs) in [("all", "sha1:12,13+sha256:12,13+sha384:12,13"), ("sha1", "sha1:12,13")] {
                let quote = try DombBinary.run(
                    ["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "--pcrs", pcrs, "--eventlog", work.file("eventlog.bin"),
                     "-o", work.file("\(name).json")], environment: Self.tss)
                try #require(quote.status == 0, "\(quote.stderrText)")
            }
        }
        let all = "sha1:12,13+sha256:12,13+sha384:12,13"
        func verify(_ quote: String, pcrs: String = all) throws -> ProcessResult {
            try DombBinary.run([
                "attest", "verify", work.file(quote), "--ak-pub", work.file("ak.pub.pem"), "--nonce", nonce,
                "--bundle", bundle, "--pubkey", work.file("signer.pub.pem"), "--pcrs", pcrs,
            ])
        }
        let genuine = try verify("all.json")
        #expect(genuine.status == 0, "\(genuine.stdoutText) \(genuine.stderrText)")
        #expect(genuine.stdoutText.contains("launched: web kernel modules/web/kernel ("), "\(genuine.stdoutText)")

        let unjudged = try verify("sha1.json", pcrs: "sha1:12,13")
        #expect(unjudged.status == 1, "\(unjudged.stdoutText)")
        #expect(unjudged.stdoutText.contains("[golden-event] the golden values are for sha256 and the quote covers none of those banks"), "\(unjudged.stdoutText)")

        // Flip the last byte of the sha384 digest inside the web kernel's record: the
        // event's digests (and so the replay) are untouched.
        try Self.editWebKernelRecord(quote: work.file("all.json"), to: work.file("forged.json")) { log, record, event in
            let sha384 = try #require(event.digests[.sha384])
            let inRecord = try #require(log[record].firstRange(of: sha384))
            log[inRecord.upperBound - 1] ^= 0xFF
        }
        let forged = try verify("forged.json")
        #expect(forged.status == 1, "\(forged.stdoutText)")
        #expect(forged.stdoutText.contains("is not the golden record of web kernel"), "\(forged.stdoutText)")
        #expect(!forged.stdoutText.contains("[replay]"), "\(forged.stdoutText)")
    }

    /// The other way round: a four-bank bundle launched on a TPM with only sha256 active
    /// (`tpm2_pcrallocate`, then a reset). The module records list the one active bank,
    /// the golden ones four; the launch verifies on sha256, the bank both have.
    @Test func aBundleWithMoreBanksThanTheTPMVerifiesOnTheBanksInCommon() throws {
        let work = try TemporaryDirectory(prefix: "domb-verdict-fewer")
        let (bundle, key) = try BootCLITests.demoBundle(in: work)
        let nonce = "00112233445566778899aabbccddeeff00112233"
        try Swtpm.with { swtpm in
            try Tools.run("tpm2_pcrallocate", ["-T", swtpm.tcti, "sha1:none+sha256:all+sha384:none+sha512:none"], environment: Self.tss)
            // An orderly reboot (TPM2_Shutdown first), or the quote's clock is not "safe".
            try Tools.run("tpm2_shutdown", ["-c", "-T", swtpm.tcti], environment: Self.tss)
            try swtpm.reboot()
            let info = try DombBinary.run(["tpm", "info", "--tpm", swtpm.tcti, "--json"], environment: Self.tss)
            let banks = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout)) as? [String: Any])["activeBanks"]
            try #require(banks as? [String] == ["sha256"], "tpm2_pcrallocate left \(String(describing: banks))")
            let boot = try DombBinary.run(
                ["boot", bundle, "--pubkey", key, "--tpm", swtpm.tcti, "--backend", "plan", "--eventlog", work.file("eventlog.bin"),
                 "--lock-dir", work.file("locks"), "--json"], environment: Self.tss)
            try #require(boot.status == 0, "\(boot.stderrText)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(boot.stdout)) as? [String: Any])
            #expect(report["matchesPredictedPCRs"] as? Bool == true, "\(report)")
            #expect(try DombBinary.run(["ak", "create", "--tpm", swtpm.tcti, "-o", work.file("ak.pub.pem")], environment: Self.tss).status == 0)
            let quote = try DombBinary.run(
                ["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "--pcrs", "sha256:12,13", "--eventlog", work.file("eventlog.bin"),
                 "-o", work.file("quote.json")], environment: Self.tss)
            try #require(quote.status == 0, "\(quote.stderrText)")
        }
        let verify = try DombBinary.run([
            "attest", "verify", work.file("quote.json"), "--ak-pub", work.file("ak.pub.pem"), "--nonce", nonce,
            "--bundle", bundle, "--pubkey", key,
        ])
        #expect(verify.status == 0, "\(verify.stdoutText) \(verify.stderrText)")
        #expect(verify.stdoutText.contains("launched: web kernel modules/web/kernel ("), "\(verify.stdoutText)")
    }
}
