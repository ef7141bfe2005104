//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// Release and PCR-policy keys that never leave their token: a SoftHSM2 token through
/// PKCS#11 and a TPM key through tpm2-openssl. The bundles they sign verify with the
/// README's OpenSSL-only procedure and docs/secrets.md's PCR-policy block; the keys stay
/// non-extractable.
@Suite struct TokenKeyCLITests {
    func run(_ arguments: [String], _ environment: [String: String]) throws -> ProcessResult {
        try DombBinary.run(arguments, environment: environment.merging(["TSS2_LOG": "all+none"]) { $1 })
    }

    /// A SoftHSM2 token in a private directory, its keys made inside it by `p11tool`.
    struct SoftHSMToken {
        static let pin = "1234"
        let directory: TemporaryDirectory
        let label: String
        var environment: [String: String] {
            ["SOFTHSM2_CONF": directory.file("softhsm2.conf"), "GNUTLS_PIN": Self.pin]
        }

        /// SoftHSM2's PKCS#11 module, for pkcs11-tool (domb and p11tool find it through p11-kit).
        static let module = "/usr/lib/softhsm/libsofthsm2.so"

        init(label: String) throws {
            _ = try Tools.require("softhsm2-util")
            _ = try Tools.require("p11tool")
            _ = try Tools.require("pkcs11-tool")
            _ = try Tools.requireOpenSSLModule("pkcs11", provider: false, package: "libengine-pkcs11-openssl")
            try Tools.requireFile(Self.module, package: "softhsm2")
            directory = try TemporaryDirectory(prefix: "domb-softhsm")
            self.label = label
            try FileManager.default.createDirectory(atPath: directory.file("tokens"), withIntermediateDirectories: true)
            _ = try directory.write(
                "softhsm2.conf", "directories.tokendir = \(directory.file("tokens"))\nobjectstore.backend = file\nlog.level = ERROR\n")
            try Tools.run(
                "softhsm2-util", ["--init-token", "--free", "--label", label, "--pin", Self.pin, "--so-pin", "56785678"],
                environment: environment)
        }

        func generateKey(_ object: String) throws {
            try Tools.run(
                "p11tool", ["--login", "--generate-privkey=ecdsa", "--curve=secp256r1", "--label=\(object)", "pkcs11:token=\(label)"],
                environment: environment)
        }

        /// A key made with CKA_EXTRACTABLE true (pkcs11-tool `--extractable`): the control that
        /// shows both readers below report the attribute when it is set.
        func generateExtractableKey(_ object: String) throws {
            try Tools.run(
                "pkcs11-tool",
                [
                    "--module", Self.module, "--token-label", label, "--login", "--pin", Self.pin, "--keypairgen", "--key-type",
                    "EC:prime256v1", "--label", object, "--id", "0f", "--extractable",
                ], environment: environment)
        }

        func uri(_ object: String, pin: String = SoftHSMToken.pin) -> String {
            "pkcs11:token=\(label);object=\(object);type=private;pin-value=\(pin)"
        }

        /// p11tool's `Flags:` line for the private key `object`.
        func flags(_ object: String) throws -> String {
            let listing = try Tools.run(
                "p11tool", ["--login", "--list-all-privkeys", "pkcs11:token=\(label);object=\(object)"], environment: environment)
            return listing.stdoutText.split(separator: "\n").first { $0.contains("Flags:") }.map(String.init) ?? ""
        }

        /// OpenSC pkcs11-tool's `Access:` items for the private key `object` (a second reader,
        /// another PKCS#11 stack than GnuTLS's): e.g. `sensitive`, `never extractable`.
        func access(_ object: String) throws -> Set<String> {
            let listing = try Tools.run(
                "pkcs11-tool",
                [
                    "--module", Self.module, "--token-label", label, "--login", "--pin", Self.pin, "--list-objects", "--type",
                    "privkey",
                ], environment: environment)
            // One block per key (`Private Key Object; EC`, then indented `name: value` lines);
            // `--label` does not filter a listing.
            var fields: [String: String] = [:]
            for line in listing.stdoutText.split(separator: "\n").map(String.init) + ["end"] {
                guard line.hasPrefix(" ") else {
                    if fields["label"] == object, let access = fields["Access"] {
                        return Set(access.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                    }
                    fields = [:]
                    continue
                }
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { fields[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return []
        }

        /// Whether both readers say `object` is sensitive and was never extractable, and
        /// neither says it is extractable now.
        func expectNonExtractable(_ object: String, _ when: String) throws {
            let flags = try flags(object)
            #expect(flags.contains("CKA_SENSITIVE") && flags.contains("CKA_NEVER_EXTRACTABLE"), "\(when): \(object): \(flags)")
            #expect(!flags.contains("CKA_EXTRACTABLE"), "\(when): \(object): \(flags)")
            let access = try access(object)
            #expect(access.isSuperset(of: ["sensitive", "always sensitive", "never extractable"]), "\(when): \(object): \(access)")
            #expect(!access.contains("extractable"), "\(when): \(object): \(access)")
        }
    }

    /// A CSR made with `key` (an engine or provider key) signed by the test CA with codeSigning.
    static func certificate(csrArguments: [String], pki: TestPKI, work: TemporaryDirectory, environment: [String: String]) throws -> String {
        let csr = work.file("signer.csr")
        try Tools.run("openssl", ["req", "-new", "-subj", "/CN=domb token signer", "-out", csr] + csrArguments, environment: environment)
        let certificate = work.file("signer.pem")
        try Tools.run(
            "openssl",
            [
                "x509", "-req", "-in", csr, "-CA", pki.caCertificate, "-CAkey", pki.key("ca"), "-CAcreateserial", "-days", "30",
                "-extfile", pki.directory.file("codesign.ext"), "-out", certificate,
            ])
        return certificate
    }

    @Test func pkcs11KeysSignAndStayInTheToken() throws {
        _ = try GuestImages.directory()
        let pki = try TestPKI.shared()
        let work = try TemporaryDirectory(prefix: "domb-pkcs11")
        let token = try SoftHSMToken(label: "domb-release")
        try token.generateKey("release")
        try token.generateKey("pcr-policy")
        // The control: an extractable key is reported as such by both readers.
        try token.generateExtractableKey("control")
        #expect(try token.flags("control").contains("CKA_EXTRACTABLE"))
        #expect(try token.access("control").contains("extractable"))
        for object in ["release", "pcr-policy"] { try token.expectNonExtractable(object, "before signing") }
        let env = token.environment
        let certificate = try Self.certificate(
            csrArguments: ["-engine", "pkcs11", "-keyform", "engine", "-key", token.uri("release")], pki: pki, work: work,
            environment: env)
        let demo = Repository.root + "/examples/demo/launch.dts"

        // CMS with the HSM key, PCR policy with the other HSM key: OpenSSL alone verifies both.
        let bundle = work.file("hsm.bundle")
        let build = try run(
            ["build", demo, "--key", token.uri("release"), "--cert", certificate, "--pcr-key", token.uri("pcr-policy"), "-o", bundle, "--no-progress"],
            env)
        #expect(build.status == 0, "\(build.stderrText)")
        #expect(!build.stdoutText.contains(SoftHSMToken.pin) && !build.stderrText.contains("pin-value=\(SoftHSMToken.pin)"))
        let readme = try BundleCLITests.runReadmeProcedure(bundle: bundle, ca: pki.caCertificate)
        #expect(readme.status == 0, "\(readme.stdoutText)\n\(readme.stderrText)")
        let (policy, _) = try SecretsCLITests.runDocsBlock("openssl-pcr-policy", ["BUNDLE": bundle])
        #expect(policy.status == 0, "\(policy.stdoutText)\n\(policy.stderrText)")

        // Raw mode: openssl dgst -verify with the public key exported from the token.
        let raw = work.file("raw.bundle")
        #expect(try run(["build", demo, "--key", token.uri("release"), "-o", raw, "--no-progress"], env).status == 0)
        let publicKey = work.file("release.pub.pem")
        try Tools.run(
            "openssl",
            ["pkey", "-engine", "pkcs11", "-inform", "engine", "-pubin", "-in", "pkcs11:token=\(token.label);object=release;type=public", "-pubout", "-out", publicKey],
            environment: env)
        let extracted = work.file("raw")
        try FileManager.default.createDirectory(atPath: extracted, withIntermediateDirectories: true)
        try Tools.run("tar", ["-xf", raw, "-C", extracted])
        let verified = try Tools.run(
            "openssl",
            ["dgst", "-sha256", "-verify", publicKey, "-signature", "\(extracted)/manifest.rawsig", "\(extracted)/manifest.json"],
            check: false)
        #expect(verified.stdoutText.contains("Verified OK"), "\(verified.stderrText)")

        // The keys are as non-extractable after signing as before.
        for object in ["release", "pcr-policy"] { try token.expectNonExtractable(object, "after signing") }

        // A wrong PIN: a clear refusal, no bundle, and the URI's PIN is not echoed.
        let refused = work.file("refused.bundle")
        let wrong = try run(["build", demo, "--key", token.uri("release", pin: "9999"), "-o", refused, "--no-progress"], env)
        #expect(wrong.status != 0)
        #expect(wrong.stderrText.contains("pin-value=***"), "\(wrong.stderrText)")
        #expect(!wrong.stderrText.contains("9999"))
        #expect(!FileManager.default.fileExists(atPath: refused))

        // A PIN file written with echo (a trailing newline, which libp11 would send as part
        // of the PIN): refused before the token is asked, naming the file.
        let echoed = try work.write("pin-echoed", SoftHSMToken.pin + "\n")
        let newline = try run(
            ["build", demo, "--key", "pkcs11:token=\(token.label);object=release;type=private;pin-source=file:\(echoed)", "-o", refused, "--no-progress"],
            env)
        #expect(newline.status != 0)
        #expect(newline.stderrText.contains("the PIN file \(echoed) ends with a line break"), "\(newline.stderrText)")
        #expect(!newline.stderrText.contains("PIN incorrect"), "\(newline.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: refused))
    }

    /// docs/secrets.md step 1 for an HSM, run as written, then step 2's build with the URIs
    /// it documents: the token's keys sign, the public halves the block exported are the
    /// ones in the bundle, the CSR was signed inside the token.
    @Test func theDocumentedHSMSetupMakesTheKeysABuildSignsWith() throws {
        _ = try GuestImages.directory()
        let token = try SoftHSMToken(label: "unused")  // checks the tools, makes a private token directory
        let pinFile = token.directory.file("pin")
        let (block, work) = try SecretsCLITests.runDocsBlock(
            "hsm-keys",
            token.environment.merging(["PIN": SoftHSMToken.pin, "SO_PIN": "56785678", "PIN_FILE": pinFile]) { $1 },
            tools: ["softhsm2-util", "p11tool", "openssl"])
        #expect(block.status == 0, "\(block.stdoutText)\n\(block.stderrText)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: pinFile)) == Data(SoftHSMToken.pin.utf8))
        #expect(try FileManager.default.attributesOfItem(atPath: pinFile)[.posixPermissions] as? Int == 0o600)
        let csr = try Tools.run("openssl", ["req", "-in", work.file("release.csr"), "-verify", "-noout"], check: false)
        #expect(csr.status == 0 && (csr.stdoutText + csr.stderrText).contains("verify OK"), "\(csr.stderrText)")
        let csrKey = try Tools.run("openssl", ["req", "-in", work.file("release.csr"), "-pubkey", "-noout"]).stdout
        #expect(csrKey == Array(try Data(contentsOf: URL(fileURLWithPath: work.file("release.pub.pem")))))

        let uri = { (object: String) in "pkcs11:token=release;object=\(object);type=private;pin-source=file:\(pinFile)" }
        let bundle = work.file("system-1.bundle")
        let build = try run(
            [
                "build", Repository.root + "/examples/demo/launch.dts", "-o", bundle, "--generation", "1", "--key", uri("release-key"),
                "--pcr-key", uri("pcr-policy"), "--no-progress",
            ], token.environment)
        #expect(build.status == 0, "\(build.stderrText)")
        let verify = try run(["bundle", "verify", bundle, "--pubkey", work.file("release.pub.pem")], [:])
        #expect(verify.status == 0, "\(verify.stderrText)")
        try Tools.run("tar", ["-xf", bundle, "-C", work.path, "pcr-policy.json"])
        let policy = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: work.file("pcr-policy.json")))))
        let exported = try String(contentsOfFile: work.file("pcr-policy.pub.pem"), encoding: .utf8)
        #expect(policy["publicKey"] == .string(exported), "the bundle's PCR-policy key is the one step 1 exported for the hosts")
    }

    @Test func tpmResidentKeySignsThroughTheProvider() throws {
        _ = try GuestImages.directory()
        let pki = try TestPKI.shared()
        let work = try TemporaryDirectory(prefix: "domb-tpmkey")
        _ = try Tools.requireOpenSSLModule("tpm2", provider: true, package: "tpm2-openssl")
        try Swtpm.with { swtpm in
            let env = ["TPM2TOOLS_TCTI": swtpm.tcti, "TPM2OPENSSL_TCTI": swtpm.tcti, "TSS2_LOG": "all+none"]
            func tool(_ name: String, _ arguments: [String]) throws { try Tools.run(name, arguments, environment: env) }
            try tool("tpm2_createprimary", ["-Q", "-C", "o", "-G", "ecc256:aes128cfb", "-c", work.file("primary.ctx")])
            try tool(
                "tpm2_create",
                [
                    "-Q", "-C", work.file("primary.ctx"), "-G", "ecc256:ecdsa-sha256", "-u", work.file("key.pub"), "-r",
                    work.file("key.priv"), "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
                ])
            try tool("tpm2_flushcontext", ["-t"])
            try tool("tpm2_load", ["-Q", "-C", work.file("primary.ctx"), "-u", work.file("key.pub"), "-r", work.file("key.priv"), "-c", work.file("key.ctx")])
            try tool("tpm2_evictcontrol", ["-Q", "-C", "o", "-c", work.file("key.ctx"), "0x81000010"])
            try tool("tpm2_flushcontext", ["-t"])
            func attributes() throws -> String {
                let listing = try Tools.run("tpm2_readpublic", ["-c", "0x81000010"], environment: env).stdoutText
                return listing.split(separator: "\n").drop { !$0.hasPrefix("attributes:") }.dropFirst().first.map(String.init) ?? ""
            }
            #expect(try attributes().contains("fixedtpm|fixedparent|sensitivedataorigin"))

            let certificate = try Self.certificate(
                csrArguments: ["-provider", "tpm2", "-provider", "default", "-propquery", "?provider=tpm2", "-key", "handle:0x81000010"],
                pki: pki, work: work, environment: env)
            let bundle = work.file("tpm.bundle")
            let build = try run(
                [
                    "build", Repository.root + "/examples/demo/launch.dts", "--key", "handle:0x81000010", "--cert", certificate,
                    "--pcr-key", "handle:0x81000010", "--pcr-bank", "sha256", "-o", bundle, "--no-progress",
                ], env)
            #expect(build.status == 0, "\(build.stderrText)")
            let readme = try BundleCLITests.runReadmeProcedure(bundle: bundle, ca: pki.caCertificate)
            #expect(readme.status == 0, "\(readme.stdoutText)\n\(readme.stderrText)")
            let (policy, _) = try SecretsCLITests.runDocsBlock("openssl-pcr-policy", ["BUNDLE": bundle])
            #expect(policy.status == 0, "\(policy.stdoutText)\n\(policy.stderrText)")
            let show = try run(["bundle", "show", bundle], env)
            #expect(show.stdoutText.contains("sha256 PCRs 12,13"))
            #expect(!show.stdoutText.contains("sha1 PCRs"), "--pcr-bank sha256 signs that bank only")
            #expect(try attributes().contains("fixedtpm|fixedparent|sensitivedataorigin"))

            let missing = try run(
                ["build", Repository.root + "/examples/demo/launch.dts", "--key", "handle:0x81000011", "-o", work.file("none.bundle"), "--no-progress"],
                env)
            #expect(missing.status != 0)
            #expect(missing.stderrText.contains("handle:0x81000011"), "\(missing.stderrText)")
        }
    }
}
