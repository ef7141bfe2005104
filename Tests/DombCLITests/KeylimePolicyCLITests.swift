//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// `domb keylime policy`: both policies against tpm2_eventlog (the parser Keylime's verifier
/// runs) on the bundle's predicted log. The Keylime verifier loading the measured-boot policy
/// is `make keylime`.
@Suite struct KeylimePolicyCLITests {
    @Test func measuredBootRefstateIsWhatTpm2EventlogShowsOfThePredictedLog() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try BundleCLITests.makeLaunch(in: directory)
        let bundle = directory.file("system.bundle")
        let build = try DombBinary.run(
            ["build", launch, "--key", pki.key("p256"), "--cert", pki.certificate("p256"), "-o", bundle, "--banks", "sha256,sha384"],
            environment: ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(build.status == 0, "\(build.stderrText)")

        let policy = try DombBinary.run(["keylime", "policy", bundle, "--trust", pki.trustDirectory, "--measured-boot"])
        #expect(policy.status == 0, "\(policy.stderrText)")
        let refstate = try JSONValue(parsing: policy.stdout.filter { $0 != 0x0A })
        #expect(refstate["domb_launch"]?["version"] == .integer(1))

        let extracted = directory.file("extracted")
        #expect(try DombBinary.run(["bundle", "extract", bundle, "--trust", pki.caCertificate, "-o", extracted]).status == 0)
        let log = try Tools.run("tpm2_eventlog", ["\(extracted)/eventlog.predicted"]).stdoutText
        // tpm2_eventlog's records, split at "- EventNum:", without the Spec ID header.
        let records = log.components(separatedBy: "\n- EventNum: ").dropFirst().filter { !$0.contains("EV_NO_ACTION") }
        var expected = 0
        for pcr in ["12", "13"] {
            guard case .array(let events)? = refstate["domb_launch"]?["pcrs"]?[pcr] else {
                Issue.record("no PCR \(pcr) in \(policy.stdoutText)")
                return
            }
            let logged = records.filter { $0.contains("\n  PCRIndex: \(pcr)\n") }
            #expect(events.count == logged.count, "PCR \(pcr)")
            expected += events.count
            for (event, record) in zip(events, logged) {
                let type = try #require(event["event_type"]?.stringValue)
                #expect(record.contains("EventType: \(type)\n"), "\(record.prefix(200))")
                for bank in ["sha256", "sha384"] {
                    let digest = try #require(event["digests"]?[bank]?.stringValue)
                    #expect(record.contains("AlgorithmId: \(bank)\n    Digest: \"\(digest)\""), "\(record.prefix(300))")
                }
                switch type {
                case "EV_EVENT_TAG": #expect(record.contains("Event: \"\(try #require(event["event"]?.stringValue))\""))
                case "EV_IPL": #expect(record.contains("String: |-\n      \"\(try #require(event["header"]?.stringValue))\\0"))
                default: #expect(record.contains("Event: \"00000000\""))
                }
            }
        }
        #expect(expected == records.count, "every extended event is on PCR 12 or 13")
        // The module's command line is repeated for reasons.
        #expect(policy.stdoutText.contains("\"header\":\"domb:cmdline:dom0\""))
        #expect(policy.stdoutText.contains("\"text\":\"console=hvc0\""))

        // Keylime's own firmware refstate rides along under "firmware"; it must be an object.
        let firmware = try directory.write("firmware.json", #"{"scrtm_and_bios": [{"s_crtms": []}], "mokdig": []}"#)
        let withFirmware = try DombBinary.run([
            "keylime", "policy", bundle, "--trust", pki.trustDirectory, "--measured-boot", "--firmware-refstate", firmware,
        ])
        #expect(withFirmware.status == 0, "\(withFirmware.stderrText)")
        let combined = try JSONValue(parsing: withFirmware.stdout.filter { $0 != 0x0A })
        #expect(combined["firmware"] == (try JSONValue(parsing: Array(#"{"mokdig":[],"scrtm_and_bios":[{"s_crtms":[]}]}"#.utf8))))
        #expect(combined["domb_launch"] == refstate["domb_launch"])
        let notObject = try directory.write("list.json", "[]")
        let refusedList = try DombBinary.run([
            "keylime", "policy", bundle, "--trust", pki.trustDirectory, "--measured-boot", "--firmware-refstate", notObject,
        ])
        #expect(refusedList.status != 0)
        #expect(refusedList.stderrText.contains("not a JSON object"), "\(refusedList.stderrText)")
        // The output never replaces an input; the firmware refstate belongs to --measured-boot.
        let before = try Data(contentsOf: URL(fileURLWithPath: firmware))
        let overwrite = try DombBinary.run([
            "keylime", "policy", bundle, "--trust", pki.trustDirectory, "--measured-boot", "--firmware-refstate", firmware,
            "-o", firmware,
        ])
        #expect(overwrite.status != 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: firmware)) == before)
        let misplaced = try DombBinary.run(["keylime", "policy", bundle, "--trust", pki.trustDirectory, "--firmware-refstate", firmware])
        #expect(misplaced.status == 64)
        #expect(misplaced.stderrText.contains("--firmware-refstate needs --measured-boot"))

        // The tpm_policy is unchanged, and a bundle that does not verify gets neither.
        let tpmPolicy = try DombBinary.run(["keylime", "policy", bundle, "--trust", pki.trustDirectory])
        #expect(tpmPolicy.status == 0)
        #expect(tpmPolicy.stdoutText.hasPrefix("{\"12\": [\""))
        let untrusted = try TemporaryDirectory()
        let otherCA = untrusted.file("other.pem")
        _ = try Tools.run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", untrusted.file("k.pem"),
            "-out", otherCA, "-subj", "/CN=other", "-days", "1",
        ])
        let refused = try DombBinary.run(["keylime", "policy", bundle, "--trust", otherCA, "--measured-boot"])
        #expect(refused.status != 0)
        #expect(refused.stdout.isEmpty)
    }
}
