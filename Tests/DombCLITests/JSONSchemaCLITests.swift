//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// The JSON contract (issue 19, docs/json.md): every command with `--json` prints an object
/// whose `format` and `formatVersion` are the code's table (``JSONFormat``) and its
/// schema's consts, has a JSON Schema in docs/schemas/, and real outputs — verified and
/// refused, on a real swtpm — validate against it with an independent validator
/// (python3-jsonschema, draft 2020-12, through scripts/check-json-schema.py).
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
        #expect(commands == Set(JSONFormat.ofCommand.keys), "a --json command without a format in JSONFormat.ofCommand: \(commands.sorted())")
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.schemas).filter { $0.hasSuffix(".schema.json") }
        #expect(Set(files) == Set(Self.schemaOfCommand.values.map { "\($0).schema.json" }), "\(files.sorted())")
    }

    /// Every command's real output, a verified and a refused one where the command has both.
    @Test func realOutputsValidateAgainstTheirSchemas() throws {
        let work = try TemporaryDirectory(prefix: "domb-schema")
        var outputs: [String: [String]] = [:]
        /// Runs domb and keeps its standard output as a document of `command`'s schema; it
        /// is an object whose `format` and `formatVersion` are the table's.
        func capture(_ command: String, _ arguments: [String], status: Int32 = 0, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try DombBinary.run(arguments, environment: Self.environment)
            #expect(result.status == status, "\(arguments): \(result.stderrText)\(result.stdoutText.prefix(3000))", sourceLocation: sourceLocation)
            let schema = try #require(Self.schemaOfCommand[command], sourceLocation: sourceLocation)
            let format = try #require(JSONFormat.ofCommand[command], sourceLocation: sourceLocation)
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any]
            #expect(object != nil, "\(arguments): not a JSON object: \(result.stdoutText.prefix(200))", sourceLocation: sourceLocation)
            #expect(object?["format"] as? String == format.name, "\(arguments)", sourceLocation: sourceLocation)
            #expect((object?["formatVersion"] as? NSNumber)?.int64Value == format.version, "\(arguments)", sourceLocation: sourceLocation)
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

        try capture("bundle verify", ["bundle", "verify", bundle, "--json"] + pubkey)
        try capture("bundle verify", ["bundle", "verify", bundle, "--json", "--pubkey", work.file("other.pub")], status: 1)
        try capture("bundle extract", ["bundle", "extract", bundle, "-o", work.file("extracted"), "--json"] + pubkey)
        try capture("bundle show", ["bundle", "show", bundle, "--json"])
        try capture("predict", ["predict", bundle, "--json"] + pubkey)
        try capture("config show", ["config", "show", Self.demo, "--json"])
        try capture("xenstore plan", ["xenstore", "plan", Self.demo, "--json"])
        let text = try work.write("notes.txt", "not an image\n")
        try capture("inspect", ["inspect", "\(images)/pv-kernel.elf", "\(images)/pvh-kernel.elf", "\(images)/ramdisk.cpio.gz", text, "--json"])
        try capture("inspect", ["inspect", "/usr/lib/xen-4.17/boot/hvmloader", "--json"])
        try capture("log show", ["log", "show", work.file("extracted/eventlog.predicted"), "--json"])
        // Firmware logs of real machines: SHA-1 and crypto-agile, every quirk domb knows.
        let realWorld = Repository.root + "/Tests/DombCoreTests/Fixtures/eventlogs/real-world"
        let logs = try FileManager.default.contentsOfDirectory(atPath: realWorld).filter { $0.hasSuffix(".bin") }.sorted()
        #expect(logs.count >= 20, "\(logs)")
        for log in logs { try capture("log show", ["log", "show", "\(realWorld)/\(log)", "--json"]) }

        try Swtpm.with { swtpm in
            let tpm = ["--tpm", swtpm.tcti]
            try capture("tpm info", ["tpm", "info", "--json"] + tpm)
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
            try capture("attest verify", verify + ["--nonce", nonce, "--bundle", bundle] + pubkey)
            // What `predict --json` printed is what --expected-pcrs reads (scripts/keylime/scenario.sh):
            // the PCRs the boot left, in every bank the bundle predicts.
            let everyBank = try DombBinary.run(
                ["quote", "--nonce", nonce, "--pcrs", "sha1:12,13+sha256:12,13+sha384:12,13+sha512:12,13", "-o", work.file("banks.json")] + tpm,
                environment: Self.environment)
            try #require(everyBank.status == 0, "\(everyBank.stderrText)")
            let predicted = try #require(outputs["predict"]?.first)
            try capture(
                "attest verify",
                ["attest", "verify", work.file("banks.json"), "--ak-pub", work.file("ak.pub.pem"), "--json", "--nonce", nonce, "--expected-pcrs", predicted])
            try capture("attest verify", verify + ["--nonce", "00" + nonce.dropFirst(2).dropLast(2) + "ff"], status: 1)
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
        let tag = #""format":"domb-tpm-info","formatVersion":1"#
        let valid = try work.write("tpm.json", #"{"activeBanks":["sha256"],"tcti":"device:/dev/tpmrm0",\#(tag)}"#)
        #expect(try Self.validate("tpm-info", [valid]).status == 0)
        for (name, document, says) in [
            ("bank", #"{"activeBanks":["md5"],"tcti":"x",\#(tag)}"#, "/activeBanks/0"),
            ("missing", #"{"activeBanks":["sha256"],\#(tag)}"#, "'tcti' is a required property"),
            ("extra", #"{"activeBanks":[],"tcti":"x","colour":1,\#(tag)}"#, "colour"),
            ("untagged", #"{"activeBanks":["sha256"],"tcti":"x"}"#, "'format' is a required property"),
            ("other format", #"{"activeBanks":["sha256"],"tcti":"x","format":"domb-boot-report","formatVersion":1}"#, "/format"),
            ("next version", #"{"activeBanks":["sha256"],"tcti":"x","format":"domb-tpm-info","formatVersion":2}"#, "/formatVersion"),
        ] {
            let result = try Self.validate("tpm-info", [try work.write("\(name).json", document)])
            #expect(result.status == 1, "\(name): \(result.stdoutText)\(result.stderrText)")
            #expect(result.stdoutText.contains(says), "\(name): \(result.stdoutText)")
        }
        let predict = try work.write("predict.json", #"{"format":"domb-pcr-prediction","formatVersion":1,"pcrs":{"sha256":{"12":"abc"}}}"#)
        let odd = try Self.validate("predict", [predict])
        #expect(odd.status == 1 && odd.stdoutText.contains("/pcrs/sha256/12"), "\(odd.stdoutText)")
        let bare = try Self.validate("predict", [try work.write("bare.json", #"{"sha256":{"12":"ab"}}"#)])
        #expect(bare.status == 1, "the bare map is not what predict prints: \(bare.stdoutText)")
        let refused = try work.write("verify.json", #"{"bundle":"b","failures":[],"verified":false,"format":"domb-bundle-verdict","formatVersion":1}"#)
        #expect(try Self.validate("bundle-verify", [refused]).status == 1, "a refusal must give its reasons")
    }

    /// The objects a schema describes at its top (each of a `oneOf`).
    static func topObjects(_ schema: [String: Any]) throws -> [[String: Any]] {
        guard let choices = schema["oneOf"] as? [[String: Any]] else { return [schema] }
        let definitions = try #require(schema["$defs"] as? [String: [String: Any]])
        return try choices.map { choice in
            let reference = try #require(choice["$ref"] as? String)
            return try #require(definitions[String(reference.dropFirst("#/$defs/".count))], "\(reference)")
        }
    }

    /// Each schema's `$id`, and its `format` and `formatVersion` consts (required), are the
    /// code's table; docs/json.md lists the same for each command.
    @Test func theSchemasAndTheDocsNameTheTablesFormats() throws {
        let docs = try String(contentsOfFile: Repository.root + "/docs/json.md", encoding: .utf8)
        for (command, schemaName) in Self.schemaOfCommand.sorted(by: { $0.key < $1.key }) {
            let format = try #require(JSONFormat.ofCommand[command], "\(command)")
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.schemas)/\(schemaName).schema.json"))
            let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(schema["$id"] as? String == "urn:domb:schema:\(format.name):\(format.version)", "\(schemaName)")
            for object in try Self.topObjects(schema) {
                let properties = try #require(object["properties"] as? [String: [String: Any]], "\(schemaName)")
                #expect(properties["format"]?["const"] as? String == format.name, "\(schemaName)")
                #expect((properties["formatVersion"]?["const"] as? NSNumber)?.int64Value == format.version, "\(schemaName)")
                let required = object["required"] as? [String] ?? []
                #expect(required.contains("format") && required.contains("formatVersion"), "\(schemaName): \(required)")
                #expect(object["type"] as? String == "object", "\(schemaName): every --json output is an object")
            }
            let row = docs.split(separator: "\n").first { $0.hasPrefix("| `domb \(command) --json`") }
            #expect(row?.contains("| `\(format.name)` | \(format.version) |") == true, "docs/json.md: \(command): \(row ?? "no row")")
            #expect(row?.contains("schemas/\(schemaName).schema.json") == true, "docs/json.md: \(command): \(row ?? "no row")")
        }
    }

    /// `config show --json` is also a launch description: `config check` reads it back
    /// (and `config show --json` of it prints the same model); without the two keys
    /// (written by hand) it is read too; another format or version is refused in one line
    /// naming the file.
    @Test func theLaunchSpecRoundTrips() throws {
        let work = try TemporaryDirectory(prefix: "domb-launchspec")
        let shown = try DombBinary.run(["config", "show", Repository.root + "/examples/xenstore/launch.json", "--json"])
        try #require(shown.status == 0, "\(shown.stderrText)")
        let copy = try work.write("y.json", shown.stdout)
        let check = try DombBinary.run(["config", "check", copy])
        #expect(check.status == 0, "\(check.stdoutText)\(check.stderrText)")
        let again = try DombBinary.run(["config", "show", copy, "--json"])
        #expect(again.status == 0 && again.stdout == shown.stdout, "\(again.stderrText)")

        var object = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout)) as? [String: Any])
        #expect(object["format"] as? String == "domb-launch-spec" && object["formatVersion"] as? Int == 1, "\(object.keys)")
        object["format"] = nil
        object["formatVersion"] = nil
        let handWritten = try work.write("hand.json", Array(try JSONSerialization.data(withJSONObject: object)))
        #expect(try DombBinary.run(["config", "check", handWritten]).status == 0)
        for (name, format, version, says) in [
            ("other.json", "domb-xenstore-plan", 1, #"format "domb-xenstore-plan" is not "domb-launch-spec""#),
            ("next.json", "domb-launch-spec", 2, "domb-launch-spec formatVersion 2 is not supported (this domb reads version 1)"),
        ] {
            object["format"] = format
            object["formatVersion"] = version
            let file = try work.write(name, Array(try JSONSerialization.data(withJSONObject: object)))
            let refused = try DombBinary.run(["config", "check", file])
            #expect(refused.status != 0, "\(name)")
            let lines = refused.stdoutText.split(separator: "\n") + refused.stderrText.split(separator: "\n")
            #expect(lines.count == 1 && lines.first?.contains(file) == true && lines.first?.contains(says) == true, "\(lines)")
        }
    }
}
