//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// Issue 18's acceptance through the CLI on a real swtpm: seal once against a PCR-policy
/// key; releases signed by it unseal; another key, a replaced module, a PCR extended after
/// the launch do not; tpm2-tools and OpenSSL alone agree (docs/secrets.md, run verbatim).
@Suite struct SecretsCLITests {
    static let secret = Array("the storage domain's disk key\n".utf8)

    func run(_ arguments: [String], _ environment: [String: String] = [:], input: [UInt8]? = nil) throws -> ProcessResult {
        try DombBinary.run(arguments, input: input, environment: environment.merging(["TSS2_LOG": "all+none"]) { $1 })
    }

    /// The shell block between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in docs/secrets.md.
    static func docsBlock(_ name: String) throws -> String {
        let text = try String(contentsOfFile: "\(Repository.root)/docs/secrets.md", encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- \(name):begin -->"), "docs/secrets.md lost its \(name) marker")
        let end = try #require(text.range(of: "<!-- \(name):end -->"), "docs/secrets.md lost its \(name) marker")
        return text[begin.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("```") }.joined(separator: "\n")
    }

    /// Runs a docs block in a fresh directory with `environment`; every tool it uses must be
    /// installed (a missing one fails the test with its package).
    /// - Returns: the result and the directory it ran in (to read what it wrote).
    static func runDocsBlock(
        _ name: String, _ environment: [String: String],
        tools: [String] = ["jq", "xxd", "tar", "openssl", "tpm2_createprimary", "tpm2_unseal"]
    ) throws -> (ProcessResult, TemporaryDirectory) {
        for tool in tools { _ = try Tools.require(tool) }
        let work = try TemporaryDirectory(prefix: "domb-docs-\(name)")
        let script = try work.write("block.sh", "cd '\(work.path)'\n" + docsBlock(name))
        let result = try Tools.run("bash", [script], environment: environment.merging(["TSS2_LOG": "all+none"]) { $1 }, check: false)
        return (result, work)
    }

    struct Release {
        let work: TemporaryDirectory
        func key(_ name: String) -> String { work.file("\(name).pem") }
        func pub(_ name: String) -> String { work.file("\(name).pub.pem") }
    }

    /// Keys: the release key, the PCR-policy key, another PCR-policy key.
    static func makeKeys(_ work: TemporaryDirectory) throws -> Release {
        for name in ["release", "pcr", "otherpcr"] {
            try Tools.run("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", work.file("\(name).pem")])
            try Tools.run("openssl", ["pkey", "-in", work.file("\(name).pem"), "-pubout", "-out", work.file("\(name).pub.pem")])
        }
        return Release(work: work)
    }

    /// The demo system with one command line changed (a later release), images by absolute path.
    static func laterRelease(_ work: TemporaryDirectory) throws -> String {
        let demo = Repository.root + "/examples/demo/launch.dts"
        let text = try String(contentsOfFile: demo, encoding: .utf8)
            .replacingOccurrences(of: "console=hvc0 web", with: "console=hvc0 web quiet")
            .replacingOccurrences(of: "../../images/", with: Repository.root + "/images/")
        return try work.write("release-2.dts", text)
    }

    /// Bundle `a` with one module's bytes replaced and the manifest re-signed with the
    /// release key, keeping `a`'s signed PCR policy: what someone holding the release key but
    /// not the PCR-policy key can make.
    static func tamperedCopy(of bundle: String, module: String, releaseKey: String, work: TemporaryDirectory) throws -> String {
        let directory = work.file("tampered")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Tools.run("tar", ["-xf", bundle, "-C", directory])
        let members = try Tools.run("tar", ["-tf", bundle]).stdoutText.split(separator: "\n").map(String.init)
        let modulePath = "\(directory)/\(module)"
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: modulePath)))
        bytes += Array("tampered".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: modulePath))
        func digest(_ algorithm: String) throws -> String {
            String(try Tools.run("openssl", ["dgst", "-\(algorithm)", "-r", modulePath]).stdoutText.prefix { $0 != " " })
        }
        let replacement: [String: JSONValue] = [
            "digests": .object(["sha1": .string(try digest("sha1")), "sha256": .string(try digest("sha256"))]),
            "path": .string(module), "size": .integer(Int64(bytes.count)),
        ]
        func replace(_ value: JSONValue) -> JSONValue {
            switch value {
            case .object(var members):
                if members["path"] == .string(module) {
                    for (key, item) in replacement { members[key] = item }
                    return .object(members)
                }
                return .object(members.mapValues(replace))
            case .array(let items): return .array(items.map(replace))
            default: return value
            }
        }
        let manifestPath = "\(directory)/manifest.json"
        let manifest = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: manifestPath))))
        try Data(replace(manifest).canonicalBytes).write(to: URL(fileURLWithPath: manifestPath))
        try Tools.run("openssl", ["dgst", "-sha256", "-sign", releaseKey, "-out", "\(directory)/manifest.rawsig", manifestPath])
        let output = work.file("tampered.bundle")
        try Tools.run("tar", ["--format=ustar", "-cf", output, "-C", directory] + members)
        return output
    }

    @Test func sealOnceAndOnlyGenuineLaunchesOfSignedReleasesUnseal() throws {
        _ = try GuestImages.directory()
        let work = try TemporaryDirectory(prefix: "domb-secrets")
        let keys = try Self.makeKeys(work)
        let secretFile = try work.write("disk.key", Self.secret)
        let demo = Repository.root + "/examples/demo/launch.dts"
        func build(_ description: String, pcrKey: String, _ name: String) throws -> String {
            let output = work.file(name)
            let result = try run([
                "build", description, "--key", keys.key("release"), "--pcr-key", pcrKey, "-o", output, "--no-progress",
            ])
            #expect(result.status == 0, "\(result.stderrText)")
            #expect(result.stdoutText.contains("signed PCR policy"))
            return output
        }
        let bundleA = try build(demo, pcrKey: keys.key("pcr"), "a.bundle")
        let bundleB = try build(try Self.laterRelease(work), pcrKey: keys.key("pcr"), "b.bundle")
        let bundleOtherKey = try build(demo, pcrKey: keys.key("otherpcr"), "other-key.bundle")
        let tampered = try Self.tamperedCopy(of: bundleA, module: "modules/web/kernel", releaseKey: keys.key("release"), work: work)
        #expect(try run(["bundle", "verify", tampered, "--pubkey", keys.pub("release")]).status == 0, "the release key signs the tampered bundle")

        let show = try run(["bundle", "show", bundleA])
        #expect(show.stdoutText.contains("signed PCR policy: key fingerprint "), "\(show.stdoutText)")
        #expect(show.stdoutText.contains("  sha256 PCRs 12,13, policyRef (empty): approved policy "))

        try Swtpm.with { swtpm in
            let sealed = work.file("disk.sealed")
            let seal = try run(["seal", "--pcr-pubkey", keys.pub("pcr"), secretFile, "-o", sealed, "--tpm", swtpm.tcti])
            #expect(seal.status == 0, "\(seal.stderrText)")
            #expect(seal.stdoutText.contains("sealed \(Self.secret.count) bytes"))
            let mode = try FileManager.default.attributesOfItem(atPath: sealed)[.posixPermissions] as? Int
            #expect(mode == 0o600)

            /// `domb boot --secret storage=SEALED` with the plan backend; the secret goes to a
            /// private directory of this boot.
            func boot(_ bundle: String) throws -> (ProcessResult, String) {
                let name = URL(fileURLWithPath: bundle).lastPathComponent
                let directory = work.file("run-\(name)")
                let result = try run([
                    "boot", bundle, "--pubkey", keys.pub("release"), "--tpm", swtpm.tcti, "--backend", "plan", "--eventlog",
                    work.file("eventlog-\(name).bin"), "--lock-dir", work.path, "--secrets-dir", directory,
                    "--secret", "storage=\(sealed)",
                ])
                return (result, "\(directory)/storage/disk")
            }
            func launched(_ bundle: String) throws {
                let (result, file) = try boot(bundle)
                #expect(result.status == 0, "\(result.stderrText)")
                #expect(result.stdoutText.contains("unsealed 1 secret(s) with the bundle's signed PCR policy: disk → storage (file "))
                #expect(result.stdoutText.contains("plan: unpause storage"))
                #expect((try? Data(contentsOf: URL(fileURLWithPath: file))).map(Array.init) == Self.secret)
            }
            func refused(_ bundle: String, because reason: String) throws {
                let (result, file) = try boot(bundle)
                #expect(result.status != 0)
                #expect(result.stderrText.contains("launch refused while releasing secrets"), "\(result.stderrText)")
                #expect(result.stderrText.contains(reason), "\(result.stderrText)")
                #expect(result.stderrText.contains("no domain was unpaused"))
                #expect(!result.stdoutText.contains("plan: unpause"), "\(result.stdoutText)")
                #expect(!FileManager.default.fileExists(atPath: file))
            }
            func unseal(_ bundle: String) throws -> ProcessResult {
                try run(["unseal", sealed, "--bundle", bundle, "-o", "-", "--tpm", swtpm.tcti])
            }

            // Before any launch the PCRs are in their reset state: nothing unseals.
            #expect(try unseal(bundleA).status != 0)

            // Release A: released by the launch; unsealed by hand, and by tpm2-tools alone.
            try launched(bundleA)
            let unsealedA = try unseal(bundleA)
            #expect(unsealedA.status == 0, "\(unsealedA.stderrText)")
            #expect(unsealedA.stdout == Self.secret)
            let (tools, toolsDirectory) = try Self.runDocsBlock(
                "tpm2-tools-unseal", ["BUNDLE": bundleA, "SEALED": sealed, "TPM2TOOLS_TCTI": swtpm.tcti])
            #expect(tools.status == 0, "\(tools.stdoutText)\n\(tools.stderrText)")
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: toolsDirectory.file("secret.out")))) == Self.secret)
            // OpenSSL alone: the policy is the key's signature over the predicted PCRs.
            let (openssl, _) = try Self.runDocsBlock("openssl-pcr-policy", ["BUNDLE": bundleA])
            #expect(openssl.status == 0, "\(openssl.stdoutText)\n\(openssl.stderrText)")
            #expect(openssl.stdoutText.contains("Verified OK"))

            // Release B's policy does not fit release A's PCRs.
            let early = try unseal(bundleB)
            #expect(early.status != 0)
            #expect(early.stderrText.contains("TPM2_PolicyPCR"), "\(early.stderrText)")

            // A PCR extended after the launch: domb and tpm2-tools both refuse.
            try Tools.run(
                "tpm2_pcrextend", ["-T", swtpm.tcti, "13:sha256=" + String(repeating: "ab", count: 32)],
                environment: ["TSS2_LOG": "all+none"])
            let extended = try unseal(bundleA)
            #expect(extended.status != 0)
            #expect(extended.stdout.isEmpty)
            #expect(extended.stderrText.contains("do not hold the values the signed policy approves"), "\(extended.stderrText)")
            let (toolsAfter, afterDirectory) = try Self.runDocsBlock(
                "tpm2-tools-unseal", ["BUNDLE": bundleA, "SEALED": sealed, "TPM2TOOLS_TCTI": swtpm.tcti])
            #expect(toolsAfter.status != 0)
            // tpm2_policypcr hashes whatever the PCRs hold; the approved policy then differs.
            #expect(toolsAfter.stderrText.contains("Esys_PolicyAuthorize"), "\(toolsAfter.stderrText)")
            #expect((try? Data(contentsOf: URL(fileURLWithPath: afterDirectory.file("secret.out"))))?.isEmpty ?? true)
            // The failed tpm2-tools run leaves its session and objects loaded (swtpm has no
            // resource manager): flush them so the next launch has the slots.
            try Tools.run("tpm2_flushcontext", ["-T", swtpm.tcti, "-t"], environment: ["TSS2_LOG": "all+none"])
            try Tools.run("tpm2_flushcontext", ["-T", swtpm.tcti, "-s"], environment: ["TSS2_LOG": "all+none"])

            // Reboot; release B, built later with the same key: unsealed, nothing re-sealed.
            try swtpm.reboot()
            try launched(bundleB)
            let unsealedB = try unseal(bundleB)
            #expect(unsealedB.status == 0, "\(unsealedB.stderrText)")
            #expect(unsealedB.stdout == Self.secret)
            #expect(try unseal(bundleA).status != 0, "A's policy does not open B's launch")

            // Reboot; a bundle whose policy another PCR-policy key signed: refused, naming both keys.
            try swtpm.reboot()
            try refused(bundleOtherKey, because: "sealed to the PCR-policy key with fingerprint")

            // Reboot; A's signed policy, a replaced module, a manifest re-signed with the
            // release key: the launch measures what it loads, PCR 13 differs, refused.
            try swtpm.reboot()
            try refused(tampered, because: "TPM2_PolicyPCR (sha256:12,13) failed: PCRs sha256:12,13 do not hold the values the signed policy approves")
        }
    }

    /// The launch description binds a secret itself (`domb,secrets`, measured with it in the
    /// launch DTB): `domb boot` without `--secret` releases it; a relative path, a duplicate
    /// name or a build without `--pcr-key` is refused at build time.
    @Test func theLaunchDescriptionsOwnBindingIsReleased() throws {
        _ = try GuestImages.directory()
        let work = try TemporaryDirectory(prefix: "domb-secrets-desc")
        let keys = try Self.makeKeys(work)
        let secretFile = try work.write("disk.key", Self.secret)
        let sealed = work.file("disk.sealed")
        func description(_ secrets: String) throws -> String {
            let text = try String(contentsOfFile: Repository.root + "/examples/demo/launch.dts", encoding: .utf8)
                .replacingOccurrences(of: "../../images/", with: Repository.root + "/images/")
                .replacingOccurrences(of: "storage: storage {\n", with: "storage: storage {\n\t\t\t\tdomb,secrets = \(secrets);\n")
            return try work.write("launch-\(abs(secrets.hashValue)).dts", text)
        }
        func build(_ description: String, pcrKey: Bool = true) throws -> ProcessResult {
            try run(
                ["build", description, "--key", keys.key("release"), "-o", work.file("system.bundle"), "--no-progress"]
                    + (pcrKey ? ["--pcr-key", keys.key("pcr")] : []))
        }
        for (secrets, reason) in [
            ("\"disk.sealed\"", "must be an absolute path on the host"),
            ("\"\(sealed),name=disk\", \"\(sealed),to=xenstore,name=disk\"", "two secrets named \"disk\""),
            ("\"\(sealed),mode=0400\"", "unknown option \"mode=0400\""),
        ] {
            let refused = try build(try description(secrets))
            #expect(refused.status != 0, "\(secrets)")
            #expect(refused.stderrText.contains(reason), "\(secrets): \(refused.stderrText)")
        }
        let bound = try description("\"\(sealed),name=disk\"")
        let unsigned = try build(bound, pcrKey: false)
        #expect(unsigned.status != 0)
        #expect(unsigned.stderrText.contains("domain storage receives secrets (domb,secrets)"), "\(unsigned.stderrText)")
        let built = try build(bound)
        #expect(built.status == 0, "\(built.stderrText)")

        try Swtpm.with { swtpm in
            let seal = try run(["seal", "--pcr-pubkey", keys.pub("pcr"), secretFile, "-o", sealed, "--tpm", swtpm.tcti])
            #expect(seal.status == 0, "\(seal.stderrText)")
            let directory = work.file("run")
            let boot = try run([
                "boot", work.file("system.bundle"), "--pubkey", keys.pub("release"), "--tpm", swtpm.tcti, "--backend", "plan",
                "--eventlog", work.file("eventlog.bin"), "--lock-dir", work.path, "--secrets-dir", directory,
            ])
            #expect(boot.status == 0, "\(boot.stderrText)")
            #expect(boot.stdoutText.contains("unsealed 1 secret(s) with the bundle's signed PCR policy: disk → storage (file "), "\(boot.stdoutText)")
            #expect((try? Data(contentsOf: URL(fileURLWithPath: "\(directory)/storage/disk"))).map(Array.init) == Self.secret)
        }
    }
}
