//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

/// `domb build` / `domb bundle …` end to end, and the README's OpenSSL-only procedure.
@Suite struct BundleCLITests {
    /// The project's test guests (images/), built into a private directory so that
    /// concurrent tests never share make's intermediate files.
    static func testImages(in directory: TemporaryDirectory) throws -> String {
        let out = directory.file("images")
        try Tools.run("make", ["-s", "-C", Repository.root + "/images", "OUT=\(out)"])
        return out
    }

    /// A two-domain launch description as the LaunchSpec JSON model: a PVH control domain
    /// with a ramdisk and a PV guest, on the real test kernels.
    static func makeLaunch(in directory: TemporaryDirectory) throws -> String {
        let images = try testImages(in: directory)
        let spec = LaunchSpec(domains: [
            DomainSpec(
                name: "dom0", type: .pvh, memoryKiB: 1 << 20,
                capabilities: [.control, .hardware, .xenstore, .console],
                modules: [
                    ModuleSpec(kind: .kernel, path: "\(images)/pvh-kernel.elf", bootargs: "console=hvc0"),
                    ModuleSpec(kind: .ramdisk, path: "\(images)/ramdisk.cpio.gz"),
                ]),
            DomainSpec(
                name: "guest1", type: .pv, memoryKiB: 1 << 18,
                modules: [ModuleSpec(kind: .kernel, path: "\(images)/pv-kernel.elf")]),
        ])
        return try directory.write("launch.json", Array(try JSONEncoder().encode(spec)))
    }

    /// Offset of a member's data in a ustar archive (headers: name at 0, octal size at 124).
    static func dataOffset(of member: String, in bytes: [UInt8]) -> Int? {
        var offset = 0
        while offset + 512 <= bytes.count {
            let name = String(decoding: bytes[offset..<offset + 100].prefix { $0 != 0 }, as: UTF8.self)
            if name.isEmpty { return nil }
            let sizeText = String(decoding: bytes[offset + 124..<offset + 136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
            let size = Int(sizeText, radix: 8) ?? 0
            if name == member { return offset + 512 }
            offset += 512 + (size + 511) / 512 * 512
        }
        return nil
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
        let modules = try TableCLITests.alignedTable(
            in: show.stdoutText, headers: ["DOMAIN", "ROLE", "MEMBER", "SIZE", "SHA256"], rightAligned: ["SIZE"])
        #expect(modules.rows.contains { $0[0] == "dom0" && $0[1] == "kernel" && $0[2] == "modules/dom0/kernel" }, "\(show.stdoutText)")
        let members = try TableCLITests.alignedTable(in: show.stdoutText, headers: ["MEMBER", "SIZE", "SHA256"], rightAligned: ["SIZE"])
        #expect(Set(members.rows.map { $0[0] }).isSuperset(of: ["xenstore-plan.json", "launch.dtb"]), "\(show.stdoutText)")
        #expect(show.stdoutText.contains("predicted PCR values:\nPCR  BANK    VALUE\n"), "\(show.stdoutText)")

        let procedure = try Self.runReadmeProcedure(bundle: bundle, ca: pki.caCertificate)
        #expect(procedure.status == 0, "\(procedure.stdoutText)\n\(procedure.stderrText)")
        #expect(procedure.stdoutText.contains("modules/dom0/kernel: OK"))
        #expect(procedure.stdoutText.contains("\"generation\":42"))

        let extracted = directory.file("extracted")
        let extract = try DombBinary.run(["bundle", "extract", bundle, "--trust", pki.caCertificate, "-o", extracted])
        #expect(extract.status == 0, "\(extract.stderrText)")
        let kernel = try Data(contentsOf: URL(fileURLWithPath: "\(extracted)/modules/dom0/kernel"))
        #expect(kernel == (try Data(contentsOf: URL(fileURLWithPath: directory.file("images/pvh-kernel.elf")))))
        // The predicted event log is a TCG log tpm2_eventlog reads, and the launch DTB names
        // the modules by their bundle paths.
        let log = try Tools.run("tpm2_eventlog", ["\(extracted)/eventlog.predicted"], check: false)
        #expect(log.status == 0, "\(log.stderrText)")
        #expect(log.stdoutText.contains("PCRIndex: 13"))
        // domb predict gives the PCR values tpm2_eventlog replays from the predicted log.
        let predict = try DombBinary.run(["predict", bundle, "--trust", pki.trustDirectory, "--json"])
        #expect(predict.status == 0, "\(predict.stderrText)")
        let predicted = try JSONValue(parsing: predict.stdout.filter { $0 != 0x0A })
        #expect(predicted["format"] == .string("domb-pcr-prediction"))
        let pcr13 = try #require(predicted["pcrs"]?["sha256"]?["13"]?.stringValue)
        #expect(log.stdoutText.contains("13 : 0x\(pcr13)"), "\(log.stdoutText.suffix(600))")
        let unverified = try DombBinary.run(["predict", bundle])
        #expect(unverified.stderrText.contains("UNVERIFIED"))
        #expect(unverified.stdoutText.contains(" 13  sha256  \(pcr13)\n"), "\(unverified.stdoutText)")
        let pcrread = try DombBinary.run(["predict", bundle, "--pcrread"])
        #expect(pcrread.stdoutText.contains("13: 0x\(pcr13.uppercased())"))
        let paths = try Tools.run("fdtget", ["\(extracted)/launch.dtb", "/chosen/hypervisor/dom0/kernel", "domb,path"], check: false)
        #expect(paths.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "modules/dom0/kernel", "\(paths.stderrText)")
    }

    @Test func tamperedBundlesFailBothDombAndTheOpenSSLProcedure() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try Self.makeLaunch(in: directory)
        let bundle = directory.file("good.bundle")
        let build = try DombBinary.run(["build", launch, "--key", pki.key("p384"), "--cert", pki.certificate("p384"), "-o", bundle])
        #expect(build.status == 0, "\(build.stderrText)")
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: bundle)))
        let guestData = try #require(Self.dataOffset(of: "modules/guest1/kernel", in: bytes))
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

    /// The project's example system (examples/system.dts, six domains), with the test
    /// guests standing in for the Debian kernel and stub domain it names.
    @Test func exampleSystemBuildsAndVerifiesWithDombAndOpenSSL() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let images = try Self.testImages(in: directory)
        var dts = try String(contentsOfFile: "\(Repository.root)/examples/system.dts", encoding: .utf8)
        // The storage domain (the second user of the Debian kernel) is PVH; the others are PV.
        var parts = dts.components(separatedBy: "images/vmlinuz-6.1.0-amd64")
        #expect(parts.count == 5)
        dts = parts.removeFirst()
        for (index, part) in parts.enumerated() { dts += (index == 1 ? "images/pvh-kernel.elf" : "images/pv-kernel.elf") + part }
        dts = dts.replacingOccurrences(of: "images/netback-initrd.cpio.gz", with: "images/ramdisk.cpio.gz")
            .replacingOccurrences(of: "images/initrd.img-6.1.0-amd64", with: "images/ramdisk.cpio.gz")
        let system = try directory.write("system.dts", dts)
        try Tools.run("gzip", ["-n", "-k", "\(images)/pvh-kernel.elf"])
        try FileManager.default.moveItem(atPath: "\(images)/pvh-kernel.elf.gz", toPath: "\(images)/xenstore-stubdom.gz")

        let bundle = directory.file("system.bundle")
        let build = try DombBinary.run(
            ["build", system, "--key", pki.key("rsa3072"), "--cert", pki.certificate("rsa3072"), "-o", bundle, "--generation", "7"],
            environment: ["SOURCE_DATE_EPOCH": "1700000000"])
        #expect(build.status == 0, "\(build.stderrText)")
        #expect(build.stdoutText.contains("6 domains"), "\(build.stdoutText)")
        let verify = try DombBinary.run(["bundle", "verify", bundle, "--trust", pki.trustDirectory, "--min-generation", "7"])
        #expect(verify.status == 0, "\(verify.stderrText)")
        let procedure = try Self.runReadmeProcedure(bundle: bundle, ca: pki.caCertificate)
        #expect(procedure.status == 0, "\(procedure.stdoutText)\n\(procedure.stderrText)")
        // An image that cannot boot in its domain's mode stops the build, naming it.
        let wrong = try directory.write("wrong.dts", dts.replacingOccurrences(of: "images/pvh-kernel.elf", with: "images/pv-kernel.elf"))
        let refused = try DombBinary.run(["build", wrong, "--key", pki.key("p256"), "-o", directory.file("wrong.bundle")])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("domain \"storage\" module kernel"), "\(refused.stderrText)")
        #expect(refused.stderrText.contains("[image]"), "\(refused.stderrText)")
        #expect(refused.stderrText.contains("cannot boot as pvh"), "\(refused.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("wrong.bundle")))
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
        // A bundle that is not there is not a bundle that fails to verify: "could not run" (2).
        #expect(missing.status == 2)
        #expect(missing.stderrText.contains("nothing: open: no such file"), "\(missing.stderrText)")
    }
}
