//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// `domb build` / `domb bundle …` end to end, and the README's OpenSSL-only procedure.
@Suite struct BundleCLITests {
    /// A two-domain launch description (the JSON LaunchSpec `domb build` reads for now).
    static func makeLaunch(in directory: TemporaryDirectory) throws -> String {
        _ = try directory.write("vmlinuz", (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) })
        _ = try directory.write("initrd", (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 17) })
        _ = try directory.write("guest", (0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ 1) })
        let spec = LaunchSpec(domains: [
            DomainSpec(
                name: "dom0", type: .pvh, memoryKiB: 1 << 20, capabilities: [.control, .hardware],
                modules: [ModuleSpec(kind: .kernel, path: "vmlinuz", bootargs: "console=hvc0"), ModuleSpec(kind: .ramdisk, path: "initrd")]),
            DomainSpec(name: "guest1", type: .pv, memoryKiB: 1 << 18, modules: [ModuleSpec(kind: .kernel, path: "guest")]),
        ])
        let data = try JSONEncoder().encode(spec)
        return try directory.write("launch.json", Array(data))
    }

    /// The shell block between the README's `openssl-only-verify` markers, verbatim.
    static func readmeProcedure() throws -> String {
        let readme = try String(contentsOfFile: "\(Repository.root)/README.md", encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- openssl-only-verify:begin -->"), "README.md lost its marker")
        let end = try #require(readme.range(of: "<!-- openssl-only-verify:end -->"), "README.md lost its marker")
        return readme[begin.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("```") }.joined(separator: "\n")
    }

    /// Runs the README procedure on `bundle` in a fresh directory.
    static func runReadmeProcedure(bundle: String, ca: String) throws -> ProcessResult {
        let work = try TemporaryDirectory(prefix: "domb-readme")
        let script = try work.write("procedure.sh", "cd '\(work.path)'\nmkdir x && cd x\n" + readmeProcedure())
        return try Tools.run("bash", [script], environment: ["BUNDLE": bundle, "CA": ca], check: false)
    }

    @Test func buildVerifyShowExtractAndTheOpenSSLOnlyProcedure() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try Self.makeLaunch(in: directory)
        let bundle = directory.file("system.bundle")
        let build = try DombBinary.run(
            ["build", launch, "--key", pki.key("p256"), "--cert", pki.certificate("p256"), "-o", bundle, "--generation", "42",
             "--banks", "sha256,sha384"],
            environment: ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(build.status == 0, "\(build.stderrText)")
        #expect(build.stdoutText.contains("generation 42, 2 domains, 3 modules, banks sha256,sha384, CMS signature"))

        let verify = try DombBinary.run(["bundle", "verify", bundle, "--trust", pki.trustDirectory, "--min-generation", "42"])
        #expect(verify.status == 0, "\(verify.stderrText)")
        #expect(verify.stdoutText.contains("verified: signed by CN=domb test signer p256, generation 42"))
        let json = try DombBinary.run(["bundle", "verify", bundle, "--cert", pki.certificate("p256"), "--json"])
        #expect(json.status == 0)
        let parsed = try JSONValue(parsing: json.stdout.filter { $0 != 0x0A })
        #expect(parsed["verified"] == .bool(true))
        #expect(parsed["generation"] == .integer(42))

        let show = try DombBinary.run(["bundle", "show", bundle])
        #expect(show.status == 0)
        #expect(show.stdoutText.contains("UNVERIFIED"))
        #expect(show.stdoutText.contains("kernel: modules/dom0/kernel, 200000 bytes, sha256:"))

        let procedure = try Self.runReadmeProcedure(bundle: bundle, ca: pki.caCertificate)
        #expect(procedure.status == 0, "\(procedure.stdoutText)\n\(procedure.stderrText)")
        #expect(procedure.stdoutText.contains("modules/dom0/kernel: OK"))
        #expect(procedure.stdoutText.contains("\"generation\":42"))

        let extracted = directory.file("extracted")
        let extract = try DombBinary.run(["bundle", "extract", bundle, "--trust", pki.caCertificate, "-o", extracted])
        #expect(extract.status == 0, "\(extract.stderrText)")
        let kernel = try Data(contentsOf: URL(fileURLWithPath: "\(extracted)/modules/dom0/kernel"))
        #expect(kernel == (try Data(contentsOf: directory.url.appendingPathComponent("vmlinuz"))))
    }

    @Test func tamperedBundlesFailBothDombAndTheOpenSSLProcedure() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try Self.makeLaunch(in: directory)
        let bundle = directory.file("good.bundle")
        let build = try DombBinary.run(["build", launch, "--key", pki.key("p384"), "--cert", pki.certificate("p384"), "-o", bundle])
        #expect(build.status == 0, "\(build.stderrText)")
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: bundle)))
        // The guest kernel's data starts after two headers and two padded modules.
        let guestData = 512 + 200_192 + 512 + 50_176 + 512
        bytes[guestData + 100] ^= 0x80
        let tampered = try directory.write("tampered.bundle", bytes)
        let verify = try DombBinary.run(["bundle", "verify", tampered, "--trust", pki.trustDirectory])
        #expect(verify.status == 1)
        #expect(verify.stderrText.contains("digest mismatch: modules/guest1/kernel"), "\(verify.stderrText)")
        let procedure = try Self.runReadmeProcedure(bundle: tampered, ca: pki.caCertificate)
        #expect(procedure.status != 0)
        #expect(procedure.stdoutText.contains("modules/guest1/kernel: FAILED"), "\(procedure.stdoutText)")

        // Rollback, and an untrusted signer, refused by domb with a named reason.
        let rollback = try DombBinary.run(["bundle", "verify", bundle, "--trust", pki.trustDirectory, "--min-generation", "2", "--json"])
        #expect(rollback.status == 1)
        #expect(rollback.stdoutText.contains("\"kind\":\"generation\""))
        let untrusted = directory.file("untrusted.bundle")
        #expect(try DombBinary.run(["build", launch, "--key", pki.key("untrusted"), "--cert", pki.certificate("untrusted"), "-o", untrusted]).status == 0)
        let refused = try DombBinary.run(["bundle", "verify", untrusted, "--trust", pki.trustDirectory])
        #expect(refused.status == 1)
        #expect(refused.stderrText.contains("trust: manifest.sig: signer chain does not verify"), "\(refused.stderrText)")
        #expect(try Self.runReadmeProcedure(bundle: untrusted, ca: pki.caCertificate).status != 0)
        // A failed extraction leaves no directory.
        let extract = try DombBinary.run(["bundle", "extract", tampered, "--trust", pki.trustDirectory, "-o", directory.file("out")])
        #expect(extract.status == 1)
        #expect(!FileManager.default.fileExists(atPath: directory.file("out")))
    }

    @Test func rawBuildsAreByteIdenticalAndVerifyWithThePublicKey() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try Self.makeLaunch(in: directory)
        var outputs: [Data] = []
        for name in ["one.bundle", "two.bundle"] {
            let result = try DombBinary.run(
                ["build", launch, "--key", pki.key("ed25519"), "-o", directory.file(name), "--generation", "3"],
                environment: ["SOURCE_DATE_EPOCH": "1234567890"])
            #expect(result.status == 0, "\(result.stderrText)")
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: directory.file(name))))
        }
        #expect(outputs[0] == outputs[1])
        let verify = try DombBinary.run(["bundle", "verify", directory.file("one.bundle"), "--pubkey", pki.publicKey("ed25519")])
        #expect(verify.status == 0, "\(verify.stderrText)")
        let wrong = try DombBinary.run(["bundle", "verify", directory.file("one.bundle"), "--pubkey", pki.publicKey("p256")])
        #expect(wrong.status == 1)
        #expect(wrong.stderrText.contains("signature: manifest.rawsig"), "\(wrong.stderrText)")
        // OpenSSL checks the raw signature with the README's Ed25519 command.
        try Tools.run("tar", ["-xf", directory.file("one.bundle"), "-C", directory.path, "manifest.json", "manifest.rawsig"])
        try Tools.run("openssl", [
            "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", pki.publicKey("ed25519"), "-sigfile",
            directory.file("manifest.rawsig"), "-in", directory.file("manifest.json"),
        ])
    }

    @Test func badInvocationsAreClearErrors() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try Self.makeLaunch(in: directory)
        let twoTrusts = try DombBinary.run(["bundle", "verify", "x", "--trust", "a", "--pubkey", "b"])
        #expect(twoTrusts.status != 0)
        #expect(twoTrusts.stderrText.contains("exactly one of"))
        let weak = try DombBinary.run(["build", launch, "--key", pki.key("rsa2048"), "-o", directory.file("w.bundle")])
        #expect(weak.status != 0)
        #expect(weak.stderrText.contains("at least 3072"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("w.bundle")))
        let missing = try DombBinary.run(["bundle", "verify", directory.file("nothing"), "--trust", pki.caCertificate])
        #expect(missing.status == 1)
        #expect(missing.stderrText.contains("archive:"))
    }
}
