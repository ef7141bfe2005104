//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// Large systems (issue 20): no size a valid description reaches stops it from building and
/// booting, and configuration too large to be carried inline is measured as a module.
@Suite struct ScaleCLITests {
    static func run(_ arguments: [String]) throws -> ProcessResult {
        try DombBinary.run(arguments, environment: ["TSS2_LOG": "all+none", "SOURCE_DATE_EPOCH": "1700000000"])
    }

    /// 40 domains: the Xenstore plan (about 480 KiB) is past the 256 KiB inline cap that
    /// used to stop `build` from about 24 domains on. It is measured as a module record
    /// whose digest is the member's: `openssl dgst` of the extracted `xenstore-plan.json`
    /// is what the TPM was extended with, `tpm2_eventlog` reads the log without a warning,
    /// and the boot's log is the predicted one.
    @Test func configurationPastTheInlineCapIsMeasuredAsAModule() throws {
        let work = try TemporaryDirectory(prefix: "domb-scale")
        let dts = try ScaleSystem.write(40, in: work)
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", work.file("signer.pub.pem")])
        let check = try Self.run(["config", "check", "--images", dts])
        #expect(check.status == 0, "\(check.stdoutText) \(check.stderrText)")
        let build = try Self.run([
            "build", dts, "--key", key, "--banks", "sha1,sha256,sha384,sha512", "-o", work.file("big.bundle"), "--no-progress",
        ])
        try #require(build.status == 0, "\(build.stderrText)")
        let extract = try Self.run(["bundle", "extract", work.file("big.bundle"), "--pubkey", work.file("signer.pub.pem"), "-o", work.file("x")])
        try #require(extract.status == 0, "\(extract.stderrText)")
        let plan = work.file("x/xenstore-plan.json")
        let planSize = try #require(try FileManager.default.attributesOfItem(atPath: plan)[.size] as? Int)
        #expect(planSize > ConfigurationRecord.maximumContentSize, "the plan must be past the inline cap for this test to mean anything")
        let planSHA256 = try Tools.run("openssl", ["dgst", "-sha256", "-binary", plan]).stdout.hexString

        try Swtpm.with { swtpm in
            let boot = try Self.run([
                "boot", work.file("big.bundle"), "--pubkey", work.file("signer.pub.pem"), "--tpm", swtpm.tcti, "--backend", "plan",
                "--eventlog", work.file("eventlog.bin"), "--json",
            ])
            try #require(boot.status == 0, "\(boot.stderrText)")
            #expect(boot.stdoutText.contains("\"matchesPrediction\" : true"), "\(boot.stdoutText)")
            let verify = try Self.run(["log", "verify", work.file("eventlog.bin"), "--tpm", swtpm.tcti])
            #expect(verify.status == 0, "\(verify.stdoutText) \(verify.stderrText)")
        }
        let log = try Tools.run("tpm2_eventlog", [work.file("eventlog.bin")])
        #expect(log.stderrText.isEmpty, "tpm2_eventlog warns: \(log.stderrText.prefix(500))")
        // The second record (after the launch DTB) is the plan: EV_EVENT_TAG on PCR 12 with
        // the digest of the member bytes.
        let records = log.stdoutText.components(separatedBy: "- EventNum: ")
        let planRecord = try #require(records.first { $0.contains("EventType: EV_EVENT_TAG") && $0.contains("PCRIndex: 12") })
        #expect(planRecord.contains("Digest: \"\(planSHA256)\""), "\(planRecord.prefix(800))")

        let show = try Self.run(["log", "show", work.file("eventlog.bin"), "--json"])
        #expect(show.stdoutText.contains("xenstore-plan.json"), "the module record names the member")
    }

    /// 1024 domains (issue 20; far past the old 64-domain limit and the 24-domain inline
    /// cliff) pass every stage: `config check --images`, `build` in four banks, `bundle
    /// verify`, and `boot --backend plan` into swtpm, whose event log is the predicted one,
    /// replays to the TPM's PCRs (`log verify`), reads in `tpm2_eventlog` without a warning,
    /// and holds one kernel event per domain with `openssl dgst`'s digest of the kernel.
    /// Not timed: benchmarks/scale.sh measures the cost.
    @Test func aThousandAndTwentyFourDomainsCheckBuildVerifyAndBoot() throws {
        let count = 1024
        let work = try TemporaryDirectory(prefix: "domb-scale")
        let dts = try ScaleSystem.write(count, in: work)
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", work.file("signer.pub.pem")])
        let check = try Self.run(["config", "check", "--images", dts])
        #expect(check.status == 0, "\(check.stderrText.prefix(2000))")
        #expect(check.stdoutText.contains("ok (\(count) domains)"), "\(check.stdoutText)")
        let bundle = work.file("big.bundle")
        let build = try Self.run(["build", dts, "--key", key, "--banks", "sha1,sha256,sha384,sha512", "-o", bundle, "--no-progress"])
        try #require(build.status == 0, "\(build.stderrText.prefix(2000))")
        let verify = try Self.run(["bundle", "verify", bundle, "--pubkey", work.file("signer.pub.pem")])
        #expect(verify.status == 0, "\(verify.stderrText.prefix(2000))")

        let log = work.file("eventlog.bin")
        try Swtpm.with { swtpm in
            let boot = try Self.run([
                "boot", bundle, "--pubkey", work.file("signer.pub.pem"), "--tpm", swtpm.tcti, "--backend", "plan", "--eventlog", log, "--json",
            ])
            try #require(boot.status == 0, "\(boot.stderrText.prefix(2000))")
            #expect(boot.stdoutText.contains("\"matchesPrediction\" : true"), "\(boot.stdoutText.prefix(2000))")
            let replay = try Self.run(["log", "verify", log, "--tpm", swtpm.tcti])
            #expect(replay.status == 0, "\(replay.stdoutText.prefix(2000)) \(replay.stderrText.prefix(2000))")
        }
        let kernel = try GuestImages.directory() + "/pv-kernel.elf"
        let kernelSHA256 = try Tools.run("openssl", ["dgst", "-sha256", "-binary", kernel]).stdout.hexString
        let tools = try Tools.run("tpm2_eventlog", [log])
        #expect(tools.stderrText.isEmpty, "tpm2_eventlog warns: \(tools.stderrText.prefix(500))")
        let records = tools.stdoutText.components(separatedBy: "- EventNum: ").dropFirst()
        let kernels = records.filter { $0.contains("PCRIndex: 13") && $0.contains("Digest: \"\(kernelSHA256)\"") }
        #expect(kernels.count == count, "\(kernels.count) kernel events of \(records.count)")
    }
}
