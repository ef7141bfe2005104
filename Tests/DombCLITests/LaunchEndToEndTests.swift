//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// The whole chain through the CLI, as an operator runs it: build and sign the demo
/// system, boot it into swtpm with the plan backend, verify the log, quote, attest against
/// the bundle — and refuse the quote when checked against a different bundle.
@Suite struct LaunchEndToEndTests {
    func run(_ arguments: [String], _ environment: [String: String] = [:]) throws -> ProcessResult {
        try DombBinary.run(arguments, environment: environment.merging(["TSS2_LOG": "all+none"]) { $1 })
    }

    @Test func buildBootQuoteAttest() throws {
        _ = try GuestImages.directory()
        let work = try TemporaryDirectory(prefix: "domb-e2e-cli")
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", work.file("signer.pub.pem")])
        let demo = Repository.root + "/examples/demo/launch.dts"
        let banks = "sha1,sha256,sha384,sha512"
        let build = try run(
            ["build", demo, "--key", key, "--generation", "3", "--banks", banks, "-o", work.file("a.bundle"), "--no-progress"],
            ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(build.status == 0, "\(build.stderrText)")

        // A second bundle of the same system that differs in one command line.
        let text = try String(contentsOfFile: demo, encoding: .utf8).replacingOccurrences(of: "console=hvc0 web", with: "console=hvc0 web debug")
        let otherDTS = work.file("other.dts")
        try text.replacingOccurrences(of: "../../images/", with: Repository.root + "/images/")
            .write(toFile: otherDTS, atomically: true, encoding: .utf8)
        let buildOther = try run(
            ["build", otherDTS, "--key", key, "--generation", "3", "--banks", banks, "-o", work.file("b.bundle"), "--no-progress"])
        #expect(buildOther.status == 0, "\(buildOther.stderrText)")

        try Swtpm.with { swtpm in
            let boot = try run([
                "boot", work.file("a.bundle"), "--pubkey", work.file("signer.pub.pem"), "--tpm", swtpm.tcti,
                "--backend", "plan", "--eventlog", work.file("eventlog.bin"), "--json",
            ])
            #expect(boot.status == 0, "\(boot.stderrText)")
            #expect(boot.stdoutText.contains("\"matchesPrediction\" : true"), "\(boot.stdoutText)")
            #expect(boot.stdoutText.contains("\"matchesPredictedPCRs\" : true"), "\(boot.stdoutText)")

            let verify = try run(["log", "verify", work.file("eventlog.bin"), "--tpm", swtpm.tcti])
            #expect(verify.status == 0, "\(verify.stdoutText) \(verify.stderrText)")

            #expect(try run(["ak", "create", "--tpm", swtpm.tcti, "-o", work.file("ak.pub.pem")]).status == 0)
            let nonce = "00112233445566778899aabbccddeeff00112233"
            let quote = try run([
                "quote", "--tpm", swtpm.tcti, "--nonce", nonce, "--pcrs", "sha256:12,13", "--eventlog",
                work.file("eventlog.bin"), "-o", work.file("quote.json"),
            ])
            #expect(quote.status == 0, "\(quote.stderrText)")

            let attest = try run([
                "attest", "verify", work.file("quote.json"), "--ak-pub", work.file("ak.pub.pem"), "--nonce", nonce,
                "--bundle", work.file("a.bundle"), "--pubkey", work.file("signer.pub.pem"),
            ])
            #expect(attest.status == 0, "\(attest.stdoutText) \(attest.stderrText)")
            #expect(attest.stdoutText.contains("VERIFIED"))
            #expect(attest.stdoutText.contains("web kernel modules/web/kernel"))

            // The same genuine quote, judged against the other bundle: refused.
            let wrong = try run([
                "attest", "verify", work.file("quote.json"), "--ak-pub", work.file("ak.pub.pem"), "--nonce", nonce,
                "--bundle", work.file("b.bundle"), "--pubkey", work.file("signer.pub.pem"),
            ])
            #expect(wrong.status == 1, "\(wrong.stdoutText) \(wrong.stderrText)")
            #expect(wrong.stdoutText.contains("REFUSED"))

            // Booting again into the same TPM is refused: the launch PCRs are no longer fresh.
            let again = try run([
                "boot", work.file("a.bundle"), "--pubkey", work.file("signer.pub.pem"), "--tpm", swtpm.tcti,
                "--backend", "plan", "--eventlog", work.file("again.bin"),
            ])
            #expect(again.status != 0)
            #expect(again.stderrText.contains("not in its reset state"), "\(again.stderrText)")
        }
    }
}
