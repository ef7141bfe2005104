//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// AK enrolment end to end through the CLI on a manufactured swtpm (EK certificates from a
/// local CA): `ak enroll` → `attest enroll-challenge` → `ak activate` → `attest
/// enroll-complete` → `quote` → `attest verify --enrolled`, and every refusal the issue names.
@Suite(.serialized) struct EnrollCLITests {
    static let tss = ["TSS2_LOG": "all+none"]
    static let akHandle = "0x81000100"

    struct Flow {
        let swtpm: Swtpm
        let work: TemporaryDirectory
        let cas: String
        var enrolled: String { work.file("enrolled") }

        init() throws {
            swtpm = try ProvisionedSwtpm.start()
            work = try TemporaryDirectory(prefix: "domb-enrol")
            cas = try ProvisionedSwtpm.manufactured().caDirectory
        }

        func domb(_ arguments: [String]) throws -> ProcessResult { try DombBinary.run(arguments) }

        @discardableResult
        func ok(_ arguments: [String]) throws -> ProcessResult {
            let result = try domb(arguments)
            #expect(result.status == 0, "domb \(arguments.joined(separator: " ")): \(result.stdoutText)\(result.stderrText)")
            return result
        }
    }

    @Test(arguments: ["rsa2048", "ecc-p384", "ecc-p256"]) func enrolThenVerifyAQuoteWithTheEnrolledAK(ek: String) throws {
        let flow = try Flow()
        defer { flow.swtpm.stop() }
        let tcti = flow.swtpm.tcti
        try flow.ok(["ak", "create", "--tpm", tcti, "--handle", Self.akHandle, "-o", flow.work.file("ak.pub.pem")])
        try flow.ok(["ak", "enroll", "--tpm", tcti, "--ek", ek, "--handle", Self.akHandle, "-o", flow.work.file("request.json")])
        let request = try EnrollmentRequest(json: Array(try Data(contentsOf: flow.work.url.appendingPathComponent("request.json"))))
        #expect(request.ekType == ek)
        if ek == "ecc-p256" {
            // swtpm provisions no P-256 EK certificate: the verifier has nothing to trust.
            #expect(request.ekCertificate == nil)
            let refused = try flow.domb([
                "attest", "enroll-challenge", flow.work.file("request.json"), "--ca", flow.cas, "--enrolled", flow.enrolled,
                "-o", flow.work.file("challenge.json"),
            ])
            #expect(refused.status == 1)
            #expect(refused.stdoutText.contains("no EK certificate"))
            return
        }
        try flow.ok([
            "attest", "enroll-challenge", flow.work.file("request.json"), "--ca", flow.cas, "--enrolled", flow.enrolled,
            "-o", flow.work.file("challenge.json"),
        ])
        try flow.ok(["ak", "activate", "--tpm", tcti, "--handle", Self.akHandle, flow.work.file("challenge.json"), "-o", flow.work.file("response.json")])
        let done = try flow.ok(["attest", "enroll-complete", flow.work.file("response.json"), "--enrolled", flow.enrolled])
        #expect(done.stdoutText.hasPrefix("ENROLLED: AK \(request.akName)"))
        #expect(FileManager.default.fileExists(atPath: "\(flow.enrolled)/\(request.akName).json"))
        #expect(!FileManager.default.fileExists(atPath: "\(flow.enrolled)/pending/\(request.akName).json"))

        try Tools.run("tpm2_pcrextend", ["-T", tcti, "12:sha256=" + String(repeating: "ab", count: 32)], environment: Self.tss)
        let nonce = (0..<20).map { _ in UInt8.random(in: 0...255) }.hexString
        try flow.ok(["quote", "--tpm", tcti, "--ak", Self.akHandle, "--nonce", nonce, "-o", flow.work.file("quote.json")])
        let verified = try flow.ok(["attest", "verify", flow.work.file("quote.json"), "--enrolled", flow.enrolled, "--nonce", nonce])
        #expect(verified.stdoutText.hasPrefix("VERIFIED"))

        // A quote from an AK that was never enrolled (same TPM, another key: RSA, since a
        // second P-256 primary from the same template would be the same key) is refused.
        try flow.ok(["ak", "create", "--tpm", tcti, "--rsa", "--handle", "0x81000101", "-o", flow.work.file("ak2.pub.pem")])
        try flow.ok(["quote", "--tpm", tcti, "--ak", "0x81000101", "--nonce", nonce, "-o", flow.work.file("quote2.json")])
        let stranger = try flow.domb(["attest", "verify", flow.work.file("quote2.json"), "--enrolled", flow.enrolled, "--nonce", nonce])
        #expect(stranger.status != 0)
        #expect(stranger.stderrText.contains("is not enrolled"))
        // Swapping in the enrolled AK's name does not help: the record's key does not verify it.
        var forged = try QuoteFile(json: Array(try Data(contentsOf: flow.work.url.appendingPathComponent("quote2.json"))))
        forged.akName = request.akName
        _ = try flow.work.write("forged.json", try forged.jsonBytes())
        let swapped = try flow.domb(["attest", "verify", flow.work.file("forged.json"), "--enrolled", flow.enrolled, "--nonce", nonce])
        #expect(swapped.status == 1)
        #expect(swapped.stdoutText.contains("does not verify with the attestation key"))
    }

    @Test func refusesAForeignCAANonRestrictedAKAWrongSecretAndAnotherAKsCredential() throws {
        let flow = try Flow()
        defer { flow.swtpm.stop() }
        let tcti = flow.swtpm.tcti
        try flow.ok(["ak", "create", "--tpm", tcti, "--handle", Self.akHandle, "-o", flow.work.file("ak.pub.pem")])
        try flow.ok(["ak", "enroll", "--tpm", tcti, "--handle", Self.akHandle, "-o", flow.work.file("request.json")])

        // 1. An EK certificate from a CA the verifier does not trust.
        let foreign = try TestPKI.shared().caCertificate
        let untrusted = try flow.domb([
            "attest", "enroll-challenge", flow.work.file("request.json"), "--ca", foreign, "--enrolled", flow.enrolled,
            "-o", flow.work.file("challenge.json"),
        ])
        #expect(untrusted.status == 1)
        #expect(untrusted.stdoutText.contains("does not verify against the trusted manufacturer CAs"))
        #expect(!FileManager.default.fileExists(atPath: flow.work.file("challenge.json")))

        // 2. A signing key that is not restricted (it could sign a forged TPMS_ATTEST).
        try Tools.run(
            "tpm2_createprimary",
            ["-T", tcti, "-C", "e", "-G", "ecc256:ecdsa-sha256", "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign", "-c", flow.work.file("plain.ctx")],
            environment: Self.tss)
        try Tools.run("tpm2_evictcontrol", ["-T", tcti, "-C", "o", "-c", flow.work.file("plain.ctx"), "0x81000102"], environment: Self.tss)
        try Tools.run("tpm2_flushcontext", ["-T", tcti, "-t"], environment: Self.tss)  // swtpm has no resource manager
        try flow.ok(["ak", "enroll", "--tpm", tcti, "--handle", "0x81000102", "-o", flow.work.file("plain.json")])
        let plain = try flow.domb([
            "attest", "enroll-challenge", flow.work.file("plain.json"), "--ca", flow.cas, "--enrolled", flow.enrolled,
            "-o", flow.work.file("challenge.json"),
        ])
        #expect(plain.status == 1)
        #expect(plain.stdoutText.contains("the AK is not an attestation key: the key lacks restricted"))

        // 3. A wrong secret: the challenge is consumed, the AK not enrolled.
        try flow.ok([
            "attest", "enroll-challenge", flow.work.file("request.json"), "--ca", flow.cas, "--enrolled", flow.enrolled,
            "-o", flow.work.file("challenge.json"),
        ])
        try flow.ok(["ak", "activate", "--tpm", tcti, "--handle", Self.akHandle, flow.work.file("challenge.json"), "-o", flow.work.file("response.json")])
        var response = try EnrollmentResponse(json: Array(try Data(contentsOf: flow.work.url.appendingPathComponent("response.json"))))
        let genuine = response
        response.secret = String(repeating: "00", count: 32)
        _ = try flow.work.write("wrong.json", try response.jsonBytes())
        let wrong = try flow.domb(["attest", "enroll-complete", flow.work.file("wrong.json"), "--enrolled", flow.enrolled])
        #expect(wrong.status == 1)
        #expect(wrong.stdoutText.contains("the returned secret is wrong"))
        #expect(!FileManager.default.fileExists(atPath: "\(flow.enrolled)/\(genuine.akName).json"))
        // ... and the genuine answer cannot be replayed after a failed try.
        _ = try flow.work.write("genuine.json", try genuine.jsonBytes())
        let late = try flow.domb(["attest", "enroll-complete", flow.work.file("genuine.json"), "--enrolled", flow.enrolled])
        #expect(late.status == 2)
        #expect(late.stderrText.contains("no outstanding challenge"))

        // 4. A credential made for another AK's name: the TPM will not release it to this AK.
        try flow.ok(["ak", "create", "--tpm", tcti, "--rsa", "--handle", "0x81000101", "-o", flow.work.file("ak2.pub.pem")])
        try flow.ok([
            "attest", "enroll-challenge", flow.work.file("request.json"), "--ca", flow.cas, "--enrolled", flow.enrolled,
            "-o", flow.work.file("challenge.json"),
        ])
        let other = try flow.domb(["ak", "activate", "--tpm", tcti, "--handle", "0x81000101", flow.work.file("challenge.json"), "-o", flow.work.file("r2.json")])
        #expect(other.status != 0)
        #expect(other.stderrText.contains("TPM_RC_INTEGRITY"))
    }
}
