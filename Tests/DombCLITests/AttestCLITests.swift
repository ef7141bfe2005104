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
            // The same values as `domb predict --json` prints them; another format refused.
            let predicted = "{\"format\":\"domb-pcr-prediction\",\"formatVersion\":1,\"pcrs\":{\"sha256\":{\"12\":\"\(pcr12)\",\"13\":\"\(pcr13)\"}}}"
            _ = try directory.write("predicted.json", predicted)
            let fromPredict = try verify(["--expected-pcrs", directory.file("predicted.json")])
            #expect(fromPredict.status == 0, "\(fromPredict.stdoutText)\(fromPredict.stderrText)")
            _ = try directory.write("plan.json", predicted.replacingOccurrences(of: "domb-pcr-prediction", with: "domb-xenstore-plan"))
            let notPredicted = try verify(["--expected-pcrs", directory.file("plan.json")])
            #expect(notPredicted.status != 0 && notPredicted.status != 1, "\(notPredicted.stdoutText)")
            #expect(
                notPredicted.stderrText.contains("\(directory.file("plan.json")): expected PCRs: format \"domb-xenstore-plan\" is not \"domb-pcr-prediction\""),
                "\(notPredicted.stderrText)")
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

    /// A launch measured by `domb measure` into swtpm, quoted with its event log: the log is
    /// replayed by `domb attest verify` (and by `tpm2_checkquote -e`); every way of bending
    /// the log is refused with its own reason.
    @Test func eventLogIsReplayedAndItsAttacksRefused() throws {
        let directory = try TemporaryDirectory()
        try Swtpm.with { swtpm in
            #expect(try DombBinary.run(["ak", "create", "--tpm", swtpm.tcti, "-o", directory.file("ak.pub.pem")]).status == 0)
            _ = try directory.write("vmlinuz", (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            _ = try directory.write("initrd", (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            let log = directory.file("launch.log")
            for arguments in [
                ["--domain", "dom1", "--role", "kernel", directory.file("vmlinuz")],
                ["--domain", "dom1", "--role", "ramdisk", directory.file("initrd")],
                ["--string", "console=hvc0"], ["--close"],
            ] {
                let measured = try DombBinary.run(["measure", "--tpm", swtpm.tcti, "--log", log] + arguments)
                #expect(measured.status == 0, "\(measured.stderrText)")
            }
            let nonce = Self.nonce()
            let quoted = try DombBinary.run(["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "--eventlog", log, "-o", directory.file("q.json")])
            #expect(quoted.status == 0, "\(quoted.stderrText)")
            // Something extends PCR 13 after the launch; the next quote shows it.
            try Tools.run("tpm2_pcrextend", ["-T", swtpm.tcti, "13:sha256=" + String(repeating: "ee", count: 32)], environment: Self.tss)
            #expect(try DombBinary.run(["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "--eventlog", log, "-o", directory.file("late.json")]).status == 0)
            #expect(try DombBinary.run(["quote", "--tpm", swtpm.tcti, "--nonce", nonce, "-o", directory.file("nolog.json")]).status == 0)
            swtpm.stop()

            func verify(_ quote: String, _ extra: [String] = []) throws -> (status: Int32, codes: [String], output: [String: Any]) {
                let result = try DombBinary.run(
                    ["attest", "verify", directory.file(quote), "--ak-pub", directory.file("ak.pub.pem"), "--nonce", nonce, "--json"] + extra)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any], "\(result.stderrText)")
                let reasons = object["reasons"] as? [[String: String]] ?? []
                return (result.status, reasons.compactMap { $0["code"] }, object)
            }
            let good = try verify("q.json")
            #expect(good.status == 0, "\(good.output)")
            // Everything extended is listed; without a bundle only the digests (and inline
            // content) are verified, and a module record's text is marked as a claim.
            let launched = try #require(good.output["launched"] as? [String])
            #expect(launched.count == 5)
            let kernelDigest = String(try Tools.run("openssl", ["dgst", "-sha256", "-r", directory.file("vmlinuz")]).stdoutText.prefix(64))
            #expect(launched.first == "PCR 13 EV_EVENT_TAG sha256:\(kernelDigest) [UNVERIFIED record, claims: dom1 kernel vmlinuz (5000 bytes)]")
            #expect(launched.contains("string  \"console=hvc0\" [content verified by its digest]"), "\(launched)")
            let evidence = try #require(good.output["events"] as? [[String: Any]]).compactMap { $0["verified"] as? String }
            #expect(evidence == ["digest-only", "digest-only", "content", "content", "content"])
            // tpm2-tools replays the same log against the same PCR values.
            let checked = try Tools.run(
                "tpm2_checkquote",
                ["-u", directory.file("ak.pub.pem"), "-m", directory.file("q.msg"), "-s", directory.file("q.sig"), "-f", directory.file("q.pcrs"),
                 "-l", "sha256:12,13", "-g", "sha256", "-q", nonce, "-e", log], environment: Self.tss, check: false)
            #expect(checked.status == 0, "\(checked.stderrText)")

            // The log rides unsigned beside the quote: an attacker edits it in the quote file.
            let original = try QuoteFile(json: Array(try Data(contentsOf: directory.url.appendingPathComponent("q.json"))))
            let logBytes = try #require(try original.evidence().eventLog)
            let events = try EventLog(parsing: logBytes).events
            func withLog(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
                var bytes = logBytes
                edit(&bytes)
                var file = original
                file.eventLog = Data(bytes).base64EncodedString()
                _ = try directory.write(name, try file.jsonBytes())
                return name
            }
            func setType(_ bytes: inout [UInt8], event: Int, _ type: UInt32) {
                let offset = events[event].offset + 4  // TCG_PCR_EVENT2: pcrIndex u32, eventType u32 (LE)
                for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: type >> (8 * i)) }
            }
            // A genuine module event retyped to EV_UNUSED: the replay still matches.
            let unused = try verify(try withLog("unused.json") { setType(&$0, event: 1, 0x2) })
            #expect(unused.status == 1 && unused.codes == ["unknown-event-type"], "\(unused.output)")
            // Retyped to EV_NO_ACTION: no longer replayed, and an EV_NO_ACTION with a digest
            // breaks the record rules (`log verify` applies the same ones).
            let noAction = try verify(try withLog("noaction.json") { setType(&$0, event: 1, 0x3) })
            #expect(noAction.status == 1 && Set(noAction.codes) == ["replay", "unknown-event-type", "event-data"], "\(noAction.output)")
            // Truncated: the last event (PCR 13's separator) cut off.
            let truncated = try verify(try withLog("truncated.json") { $0.removeLast($0.count - events[events.count - 1].offset) })
            #expect(truncated.status == 1 && truncated.codes == ["replay"], "\(truncated.output)")
            // The inline configuration edited: its digest no longer matches, the replay still does.
            let edited = try verify(try withLog("edited.json") { bytes in
                let needle = Array("hvc0".utf8)
                if let index = (0...(bytes.count - needle.count)).first(where: { Array(bytes[$0..<($0 + needle.count)]) == needle }) {
                    bytes[index + 3] = UInt8(ascii: "1")
                }
            })
            #expect(edited.status == 1 && edited.codes == ["event-data"], "\(edited.output)")
            // Garbage instead of a log.
            let garbage = try verify(try withLog("garbage.json") { $0 = Array("not a log".utf8) })
            #expect(garbage.status == 1 && garbage.codes == ["event-log-malformed"])
            // PCR 13 extended by something else after the launch.
            let late = try verify("late.json")
            #expect(late.status == 1 && late.codes == ["replay"], "\(late.output)")
            // No log, when one is required.
            #expect(try verify("nolog.json").status == 0)
            let required = try verify("nolog.json", ["--require-eventlog"])
            #expect(required.status == 1 && required.codes == ["event-log-missing"])
        }
    }
}
