//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// `domb ak create`, `domb quote` and `domb attest verify` on a real swtpm, cross-checked by
/// `tpm2_checkquote` on the written trio and by the README's OpenSSL-only recipe.
@Suite(.serialized) struct AttestCLITests {
    static let tss = ["TSS2_LOG": "all+none"]

    /// The README's recipe, taken from the fenced block after its marker, so the test runs
    /// exactly what a reader copies.
    static func readmeRecipe() throws -> String {
        let readme = try String(contentsOfFile: Repository.root + "/README.md", encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- openssl-quote-recipe -->"))
        let rest = readme[marker.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "```"))
        return String(rest[open.upperBound..<close.lowerBound])
    }

    static func runRecipe(in directory: TemporaryDirectory, nonce: String) throws -> ProcessResult {
        _ = try Tools.require("openssl")
        _ = try Tools.require("xxd")
        let script = "set -euo pipefail\ncd \"$1\"\n" + (try readmeRecipe())
        return try Tools.run("/bin/bash", ["-c", script, "recipe", directory.path], environment: ["NONCE": nonce], check: false)
    }

    static func checkquote(_ directory: TemporaryDirectory, base: String, nonce: String, pub: String = "ak.pub.pem", selection: String = "sha256:12,13") throws -> ProcessResult {
        try Tools.run(
            "tpm2_checkquote",
            [
                "-u", directory.file(pub), "-m", directory.file("\(base).msg"), "-s", directory.file("\(base).sig"),
                "-f", directory.file("\(base).pcrs"), "-l", selection, "-g", "sha256", "-q", nonce,
            ], environment: tss, check: false)
    }

    static func nonce() -> String { (0..<20).map { _ in UInt8.random(in: 0...255) }.hexString }

    @Test(arguments: ["--ecc", "--rsa"]) func quoteVerifiesWithDombTpm2ToolsAndTheOpenSSLRecipe(algorithm: String) throws {
        let directory = try TemporaryDirectory()
        try Swtpm.with { swtpm in
            let created = try DombBinary.run(["ak", "create", "--tpm", swtpm.tcti, algorithm, "-o", directory.file("ak.pub.pem")])
            #expect(created.status == 0, "\(created.stderrText)")
            let name = try String(contentsOfFile: directory.file("ak.pub.pem.name"), encoding: .utf8)
            #expect(name.hasPrefix("000b") && name.count == 69)
            // Something measured, so the PCRs are not all zero.
            try Tools.run("tpm2_pcrextend", ["-T", swtpm.tcti, "12:sha256=" + String(repeating: "ab", count: 32)], environment: Self.tss)
            try Tools.run("tpm2_pcrextend", ["-T", swtpm.tcti, "13:sha256=" + String(repeating: "cd", count: 32)], environment: Self.tss)

            let nonce = Self.nonce()
            let quoted = try DombBinary.run(["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "-o", directory.file("quote.json")])
            #expect(quoted.status == 0, "\(quoted.stderrText)")
            swtpm.stop()  // everything from here is offline

            let file = try QuoteFile(json: Array(try Data(contentsOf: directory.url.appendingPathComponent("quote.json"))))
            #expect(file.selection == "sha256:12,13")
            #expect(file.signature.scheme == (algorithm == "--ecc" ? .ecdsa : .rsassa))
            #expect(file.pcrs.map(\.pcr) == [12, 13])
            #expect(file.nonce == nonce)

            // domb
            let verified = try DombBinary.run([
                "attest", "verify", directory.file("quote.json"), "--ak-pub", directory.file("ak.pub.pem"), "--nonce", nonce,
                "--state", directory.file("state.json"),
            ])
            #expect(verified.status == 0, "\(verified.stdoutText)\(verified.stderrText)")
            #expect(verified.stdoutText.hasPrefix("VERIFIED"))
            #expect(FileManager.default.fileExists(atPath: directory.file("state.json")))

            // tpm2-tools
            let checked = try Self.checkquote(directory, base: "quote", nonce: nonce)
            #expect(checked.status == 0, "\(checked.stderrText)")

            // the README's OpenSSL recipe
            let recipe = try Self.runRecipe(in: directory, nonce: nonce)
            #expect(recipe.status == 0, "\(recipe.stdoutText)\(recipe.stderrText)")
            #expect(recipe.stdoutText.contains("Verified OK"))
            #expect(recipe.stdoutText.contains("PCR digest OK"))

            // All three refuse a wrong nonce.
            let otherNonce = Self.nonce()
            #expect(try Self.checkquote(directory, base: "quote", nonce: otherNonce).status != 0)
            #expect(try Self.runRecipe(in: directory, nonce: otherNonce).status != 0)
            let refused = try DombBinary.run([
                "attest", "verify", directory.file("quote.json"), "--ak-pub", directory.file("ak.pub.pem"), "--nonce", otherNonce, "--json",
            ])
            #expect(refused.status == 1)
            let verdict = try #require(try JSONSerialization.jsonObject(with: Data(refused.stdout)) as? [String: Any])
            #expect(verdict["verified"] as? Bool == false)
            let reasons = try #require(verdict["reasons"] as? [[String: String]])
            #expect(reasons.map { $0["code"] } == ["nonce"])

            // All three refuse tampered PCR values.
            var pcrs = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("quote.pcrs")))
            pcrs[40] ^= 1
            _ = try directory.write("quote.pcrs", pcrs)
            #expect(try Self.checkquote(directory, base: "quote", nonce: nonce).status != 0)
            #expect(try Self.runRecipe(in: directory, nonce: nonce).status != 0)

            // All three refuse a tampered attest.
            pcrs[40] ^= 1
            _ = try directory.write("quote.pcrs", pcrs)
            var message = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("quote.msg")))
            message[60] ^= 1
            _ = try directory.write("quote.msg", message)
            #expect(try Self.checkquote(directory, base: "quote", nonce: nonce).status != 0)
            #expect(try Self.runRecipe(in: directory, nonce: nonce).status != 0)

            // The same quote again against the stored state: a replay.
            let replayed = try DombBinary.run([
                "attest", "verify", directory.file("quote.json"), "--ak-pub", directory.file("ak.pub.pem"), "--nonce", nonce,
                "--state", directory.file("state.json"),
            ])
            #expect(replayed.status == 1)
            #expect(replayed.stdoutText.contains("clock-went-back"))
        }
    }

    @Test func expectedPCRsSelectionAndBadInput() throws {
        let directory = try TemporaryDirectory()
        try Swtpm.with { swtpm in
            #expect(try DombBinary.run(["ak", "create", "--tpm", swtpm.tcti, "-o", directory.file("ak.pub.pem")]).status == 0)
            let other = try DombBinary.run(["ak", "create", "--tpm", swtpm.tcti, "--storage", "--handle", "0x81000005", "-o", directory.file("other.pub.pem")])
            #expect(other.status == 0, "\(other.stderrText)")
            try Tools.run("tpm2_pcrextend", ["-T", swtpm.tcti, "13:sha256=" + String(repeating: "cd", count: 32)], environment: Self.tss)
            let nonce = Self.nonce()
            #expect(try DombBinary.run(["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "-o", directory.file("q.json")]).status == 0)
            let subset = try DombBinary.run(["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "--pcrs", "sha256:12", "-o", directory.file("subset.json")])
            #expect(subset.status == 0)
            let missingAK = try DombBinary.run(["quote", "--tpm", swtpm.tcti, "--ak", "0x81000009", "--nonce", nonce, "-o", directory.file("x.json")])
            #expect(missingAK.status != 0)
            #expect(missingAK.stderrText.contains("no key at persistent handle 0x81000009"))
            swtpm.stop()

            let file = try QuoteFile(json: Array(try Data(contentsOf: directory.url.appendingPathComponent("q.json"))))
            let pcr12 = try #require(file.pcrs.first { $0.pcr == 12 }?.digest)
            let pcr13 = try #require(file.pcrs.first { $0.pcr == 13 }?.digest)
            func verify(_ extra: [String], quote: String = "q.json", pub: String = "ak.pub.pem") throws -> ProcessResult {
                try DombBinary.run(["attest", "verify", directory.file(quote), "--ak-pub", directory.file(pub), "--nonce", nonce] + extra)
            }
            _ = try directory.write("golden.json", "{\"sha256\": {\"12\": \"\(pcr12)\", \"13\": \"\(pcr13)\"}}")
            let good = try verify(["--expected-pcrs", directory.file("golden.json")])
            #expect(good.status == 0, "\(good.stdoutText)\(good.stderrText)")
            _ = try directory.write("wrong.json", "{\"sha256\": {\"12\": \"\(pcr12)\", \"13\": \"\(pcr12)\"}}")
            let wrong = try verify(["--expected-pcrs", directory.file("wrong.json")])
            #expect(wrong.status == 1)
            #expect(wrong.stdoutText.contains("[golden-pcr] sha256:13"))

            // CVE-2022-0317 through the CLI: a quote over PCR 12 only.
            let partial = try verify([], quote: "subset.json")
            #expect(partial.status == 1)
            #expect(partial.stdoutText.contains("[selection]"))
            #expect(partial.stdoutText.contains("does not cover sha256:13"))
            // Another AK.
            let foreign = try verify([], pub: "other.pub.pem")
            #expect(foreign.status == 1)
            #expect(foreign.stdoutText.contains("[signature]"))

            // Unusable input: a clear error naming the file, never a crash.
            _ = try directory.write("garbage.json", "{\"format\": 1")
            let garbage = try verify([], quote: "garbage.json")
            #expect(garbage.status != 0 && garbage.status != 1)
            #expect(garbage.stderrText.contains("garbage.json"))
            _ = try directory.write("bad.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
            let badKey = try verify([], pub: "bad.pem")
            #expect(badKey.status != 0 && badKey.status != 1)
            #expect(badKey.stderrText.contains("bad.pem"))
            let badNonce = try DombBinary.run(["attest", "verify", directory.file("q.json"), "--ak-pub", directory.file("ak.pub.pem"), "--nonce", "xyz"])
            #expect(badNonce.status != 0)
            #expect(badNonce.stderrText.contains("bad nonce"))
        }
    }
}
