//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombTestSupport
import Foundation
import Testing

/// The JSON contract (issue 19): every command with `--json` has a JSON Schema in
/// docs/schemas/, and real outputs — verified and refused, on a real swtpm — validate
/// against it with an independent validator (python3-jsonschema, draft 2020-12, through
/// scripts/check-json-schema.py).
@Suite struct JSONSchemaCLITests {
    static let schemas = Repository.root + "/docs/schemas"
    static let demo = Repository.root + "/examples/demo/launch.dts"
    static let environment = ["TSS2_LOG": "all+none", "SOURCE_DATE_EPOCH": "1700000000"]

    /// The schema of each command's `--json` output (`bundle extract` prints what
    /// `bundle verify` prints).
    static let schemaOfCommand = [
        "attest verify": "attest-verify", "boot": "boot", "bundle verify": "bundle-verify", "bundle extract": "bundle-verify",
        "bundle show": "bundle-show", "config show": "config-show", "inspect": "inspect", "log show": "log-show",
        "predict": "predict", "tpm info": "tpm-info", "xenstore plan": "xenstore-plan",
    ]

    /// Runs the validator over `documents` (files); status 0 when all are valid.
    static func validate(_ schema: String, _ documents: [String]) throws -> ProcessResult {
        try Tools.run(
            Repository.root + "/scripts/check-json-schema.py", ["\(schemas)/\(schema).schema.json"] + documents, check: false)
    }

    /// The commands whose parser has a `--json` flag, from the parser's own dump.
    static func commandsWithJSON() throws -> Set<String> {
        let dump = try DombBinary.run(["--experimental-dump-help"])
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout)) as? [String: Any])
        var found: Set<String> = []
        func walk(_ command: [String: Any], _ path: [String]) {
            let name = path + [(command["commandName"] as? String) ?? "?"]
            for argument in command["arguments"] as? [[String: Any]] ?? [] {
                let names = argument["names"] as? [[String: Any]] ?? []
                if names.contains(where: { $0["kind"] as? String == "long" && $0["name"] as? String == "json" }) {
                    found.insert(name.dropFirst().joined(separator: " "))
                }
            }
            for subcommand in command["subcommands"] as? [[String: Any]] ?? [] { walk(subcommand, name) }
        }
        walk(try #require(root["command"] as? [String: Any]), [])
        return found
    }

    @Test func everyCommandWithJSONHasASchema() throws {
        let commands = try Self.commandsWithJSON()
        #expect(commands == Set(Self.schemaOfCommand.keys), "a --json command without a schema, or a schema without its command: \(commands.sorted())")
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.schemas).filter { $0.hasSuffix(".schema.json") }
        #expect(Set(files) == Set(Self.schemaOfCommand.values.map { "\($0).schema.json" }), "\(files.sorted())")
    }

    /// Every command's real output, a verified and a refused one where the command has both.
    @Test func realOutputsValidateAgainstTheirSchemas() throws {
        let work = try TemporaryDirectory(prefix: "domb-schema")
        var outputs: [String: [String]] = [:]
        /// Runs domb and keeps its standard output as a document of `schema`.
        func capture(_ schema: String, _ arguments: [String], status: Int32 = 0, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try DombBinary.run(arguments, environment: Self.environment)
            #expect(result.status == status, "\(arguments): \(result.stderrText)", sourceLocation: sourceLocation)
            let file = try work.write("\(schema)-\(outputs[schema, default: []].count).json", result.stdout)
            outputs[schema, default: []].append(file)
        }
        let images = try GuestImages.directory()
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", work.file("signer.pub")])
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", work.file("other.pem")])
        try Tools.run("openssl", ["pkey", "-in", work.file("other.pem"), "-pubout", "-out", work.file("other.pub")])
        let bundle = work.file("demo.bundle")
        let build = try DombBinary.run(
            ["build", Self.demo, "--key", key, "-o", bundle, "--banks", "sha1,sha256,sha384,sha512"], environment: Self.environment)
        try #require(build.status == 0, "\(build.stderrText)")
        let pubkey = ["--pubkey", work.file("signer.pub")]

        try capture("bundle-verify", ["bundle", "verify", bundle, "--json"] + pubkey)
        try capture("bundle-verify", ["bundle", "verify", bundle, "--json", "--pubkey", work.file("other.pub")], status: 1)
        try capture("bundle-verify", ["bundle", "extract", bundle, "-o", work.file("extracted"), "--json"] + pubkey)
        try capture("bundle-show", ["bundle", "show", bundle, "--json"])
        try capture("predict", ["predict", bundle, "--json"] + pubkey)
        try capture("config-show", ["config", "show", Self.demo, "--json"])
        try capture("xenstore-plan", ["xenstore", "plan", Self.demo, "--json"])
        let text = try work.write("notes.txt", "not an image\n")
        try capture("inspect", ["inspect", "\(images)/pv-kernel.elf", "\(images)/pvh-kernel.elf", "\(images)/ramdisk.cpio.gz", text, "--json"])
        try capture("inspect", ["inspect", "/usr/lib/xen-4.17/boot/hvmloader", "--json"])
        try capture("log-show", ["log", "show", work.file("extracted/eventlog.predicted"), "--json"])
        // Firmware logs of real machines: SHA-1 and crypto-agile, every quirk domb knows.
        let realWorld = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs/real-world"
        let logs = try FileManager.default.contentsOfDirectory(atPath: realWorld).filter { $0.hasSuffix(".bin") }.sorted()
        #expect(logs.count >= 20, "\(logs)")
        for log in logs { try capture("log-show", ["log", "show", "\(realWorld)/\(log)", "--json"]) }

        try Swtpm.with { swtpm in
            let tpm = ["--tpm", swtpm.tcti]
            try capture("tpm-info", ["tpm", "info", "--json"] + tpm)
            let boot = ["boot", bundle, "--backend", "plan", "--lock-dir", work.path, "--json"] + pubkey + tpm
            try capture("boot", boot + ["--eventlog", work.file("boot.log")])
            // The PCRs are no longer in their reset state: refused, with what ran.
            try capture("boot", boot + ["--eventlog", work.file("again.log")], status: 1)
            try #require(try DombBinary.run(["ak", "create", "-o", work.file("ak.pub.pem")] + tpm, environment: Self.environment).status == 0)
            let nonce = "00112233445566778899aabbccddeeff00112233"
            let quote = try DombBinary.run(
                ["quote", "--nonce", nonce, "--pcrs", "sha256:12,13", "--eventlog", work.file("boot.log"), "-o", work.file("quote.json")] + tpm,
                environment: Self.environment)
            try #require(quote.status == 0, "\(quote.stderrText)")
            let verify = ["attest", "verify", work.file("quote.json"), "--ak-pub", work.file("ak.pub.pem"), "--json"]
            try capture("attest-verify", verify + ["--nonce", nonce, "--bundle", bundle] + pubkey)
            try capture("attest-verify", verify + ["--nonce", "00" + nonce.dropFirst(2).dropLast(2) + "ff"], status: 1)
        }

        #expect(Set(outputs.keys) == Set(Self.schemaOfCommand.values), "schemas not exercised: \(Set(Self.schemaOfCommand.values).subtracting(outputs.keys))")
        for (schema, documents) in outputs.sorted(by: { $0.key < $1.key }) {
            let result = try Self.validate(schema, documents)
            #expect(result.status == 0, "\(schema): \(result.stdoutText)\(result.stderrText)")
        }
    }

    /// The validator and the schemas can fail: a real output with a field of the wrong
    /// shape, a required field missing or an unknown one added is refused, naming where.
    @Test func theSchemasRefuseWhatDrifts() throws {
        let work = try TemporaryDirectory(prefix: "domb-schema-drift")
        let valid = try work.write("tpm.json", #"{"activeBanks":["sha256"],"tcti":"device:/dev/tpmrm0"}"#)
        #expect(try Self.validate("tpm-info", [valid]).status == 0)
        for (name, document, says) in [
            ("bank", #"{"activeBanks":["md5"],"tcti":"x"}"#, "/activeBanks/0"),
            ("missing", #"{"activeBanks":["sha256"]}"#, "'tcti' is a required property"),
            ("extra", #"{"activeBanks":[],"tcti":"x","colour":1}"#, "colour"),
        ] {
            let result = try Self.validate("tpm-info", [try work.write("\(name).json", document)])
            #expect(result.status == 1, "\(name): \(result.stdoutText)\(result.stderrText)")
            #expect(result.stdoutText.contains(says), "\(name): \(result.stdoutText)")
        }
        let predict = try work.write("predict.json", #"{"sha256":{"12":"abc"}}"#)
        let odd = try Self.validate("predict", [predict])
        #expect(odd.status == 1 && odd.stdoutText.contains("/sha256/12"), "\(odd.stdoutText)")
        let refused = try work.write("verify.json", #"{"bundle":"b","failures":[],"verified":false}"#)
        #expect(try Self.validate("bundle-verify", [refused]).status == 1, "a refusal must give its reasons")
    }
}
