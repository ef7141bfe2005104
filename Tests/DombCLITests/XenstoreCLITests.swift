//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

@Suite struct XenstoreCLITests {
    static let example = "\(Repository.root)/examples/xenstore/launch.json"

    static func spec() throws -> LaunchSpec {
        try JSONDecoder().decode(LaunchSpec.self, from: Data(contentsOf: URL(fileURLWithPath: example)))
    }

    static let values: [String: XenstoreBuildValues] = [
        "netdom": XenstoreBuildValues(
            domid: 3, uuid: "3d3d3d3d-0000-4000-8000-000000000003", storePort: 1, storeRingRef: 1_044_476, consolePort: 2,
            consoleRingRef: 1_044_479, startTime: "1700000000.42"),
        "web": XenstoreBuildValues(storePort: 3, storeRingRef: 2_000_000, consolePort: 4, consoleRingRef: 2_000_003, startTime: "1700000001.07"),
    ]

    @Test func planPrintsTheCanonicalJSON() throws {
        let result = try DombBinary.run(["xenstore", "plan", Self.example])
        #expect(result.status == 0, "\(result.stderrText)")
        let expected = try XenstorePlanner().plan(Self.spec().validated())
        #expect(result.stdout == expected.canonicalBytes())
        let json = try DombBinary.run(["xenstore", "plan", "--json", Self.example])
        #expect(json.stdout == result.stdout)
    }

    /// The script, run by `sh` against stand-ins for xenstore-rm/-write/-chmod that log
    /// their arguments, writes exactly the resolved plan.
    @Test func scriptWritesThePlan() throws {
        let result = try DombBinary.run(["xenstore", "plan", "--script", Self.example])
        #expect(result.status == 0, "\(result.stderrText)")
        let directory = try TemporaryDirectory()
        let script = try directory.write("plan.sh", result.stdoutText)
        let log = directory.file("log")
        for (tool, body) in [
            ("xenstore-rm", #"printf 'R\t%s\n' "$1" >> "$XS_LOG""#),
            ("xenstore-write", #"printf 'W\t%s\t%s\n' "$1" "$2" >> "$XS_LOG""#),
            ("xenstore-chmod", #"p="$1"; shift; printf 'C\t%s' "$p" >> "$XS_LOG"; for a in "$@"; do printf '\t%s' "$a" >> "$XS_LOG"; done; printf '\n' >> "$XS_LOG""#),
        ] {
            let path = try directory.write(tool, "#!/bin/sh\n\(body)\n")
            #expect(chmod(path, 0o755) == 0)
        }
        let shell = try Tools.require("sh")
        // Refuses to run while a value is unset.
        let unset = try Tools.run(shell, [script], environment: ["PATH": "\(directory.path):/usr/bin:/bin", "XS_LOG": log], check: false)
        #expect(unset.status != 0)
        #expect(unset.stderrText.contains("CONSOLE_PORT_netdom"))

        var environment = ["PATH": "\(directory.path):/usr/bin:/bin", "XS_LOG": log]
        for (domain, values) in Self.values {
            environment["DOMID_\(domain)"] = values.domid.map { "\($0)" }
            environment["UUID_\(domain)"] = values.uuid
            environment["STORE_PORT_\(domain)"] = values.storePort.map { "\($0)" }
            environment["STORE_RING_REF_\(domain)"] = values.storeRingRef.map { "\($0)" }
            environment["CONSOLE_PORT_\(domain)"] = values.consolePort.map { "\($0)" }
            environment["CONSOLE_RING_REF_\(domain)"] = values.consoleRingRef.map { "\($0)" }
            environment["START_TIME_\(domain)"] = values.startTime
        }
        let run = try Tools.run(shell, [script], environment: environment, check: false)
        #expect(run.status == 0, "\(run.stderrText)")

        let resolved = try XenstorePlanner().plan(Self.spec().validated()).resolve(Self.values)
        var removed: [String] = []
        var tree: [String: (String, [String])] = [:]
        var order: [String] = []
        for line in try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            switch fields[0] {
            case "R": removed.append(fields[1])
            case "W":
                tree[fields[1], default: ("", [])].0 = fields[2]
                order.append(fields[1])
            case "C": tree[fields[1], default: ("", [])].1 = Array(fields.dropFirst(2))
            default: Issue.record("unexpected log line \(line)")
            }
        }
        #expect(removed == resolved.removals)
        #expect(order == resolved.nodes.map(\.path))
        for node in resolved.nodes {
            let written = tree[node.path]
            #expect(written?.0 == node.value, "\(node.path)")
            #expect(written?.1 == node.perms.map(\.description), "\(node.path)")
        }
    }

    @Test func applyOffXenFailsClearly() throws {
        let directory = try TemporaryDirectory()
        let plan = try directory.write("plan.json", try DombBinary.run(["xenstore", "plan", Self.example]).stdout)
        // Without the build-time values: the missing placeholder is named.
        let unresolved = try DombBinary.run(["xenstore", "apply", plan])
        #expect(unresolved.status != 0)
        #expect(unresolved.stderrText.contains("no value for ${"), "\(unresolved.stderrText)")
        // With them: no xenstored here, and the error says so.
        let values = try directory.write("values.json", Array(try JSONEncoder().encode(Self.values)))
        let result = try DombBinary.run(["xenstore", "apply", plan, "--values", values])
        #expect(result.status == 1, "\(result.stderrText)")
        #expect(result.stderrText.contains("xenstored"))
        #expect(result.stderrText.contains("dom0"))
        #expect(result.stdoutText.isEmpty)
    }

    @Test func compareAgainstAListing() throws {
        let directory = try TemporaryDirectory()
        let plan = try directory.write("plan.json", try DombBinary.run(["xenstore", "plan", Self.example]).stdout)
        let resolved = try XenstorePlanner().plan(Self.spec().validated()).resolve(Self.values)
        func listing(_ nodes: [XenstoreResolvedPlan.Node]) -> String {
            nodes.map { "\($0.path) = \"\($0.value)\"  (\($0.perms.map(\.description).joined(separator: ",")))\n" }.joined()
        }
        let good = try directory.write("good.txt", listing(resolved.nodes))
        let equal = try DombBinary.run(["xenstore", "compare", plan, good])
        #expect(equal.status == 0, "\(equal.stdoutText) \(equal.stderrText)")
        #expect(equal.stdoutText == "equal\n")

        var tampered = resolved.nodes
        let index = try #require(tampered.firstIndex { $0.path == "/local/domain/7/name" })
        tampered[index].value = "evil"
        let bad = try directory.write("bad.txt", listing(tampered))
        let differs = try DombBinary.run(["xenstore", "compare", plan, bad])
        #expect(differs.status == 1)
        #expect(differs.stdoutText.contains("value: /local/domain/7/name"))
        let forgiven = try DombBinary.run(["xenstore", "compare", plan, bad, "--ignore", "/local/domain/*/name"])
        #expect(forgiven.status == 0, "\(forgiven.stdoutText)")
    }

    @Test func badInputsAreClearErrors() throws {
        let directory = try TemporaryDirectory()
        let cfg = try directory.write("guest.cfg", "name = 'x'\n")
        let unsupported = try DombBinary.run(["xenstore", "plan", cfg])
        #expect(unsupported.status != 0)
        #expect(unsupported.stderrText.contains("guest.cfg"))
        let broken = try directory.write("broken.json", "{\"domains\": [{\"name\": 3}]}")
        let decode = try DombBinary.run(["xenstore", "plan", broken])
        #expect(decode.status != 0)
        #expect(decode.stderrText.contains("broken.json"))
        let missing = try DombBinary.run(["xenstore", "plan", directory.file("nope.json")])
        #expect(missing.status != 0)
        #expect(missing.stderrText.contains("nope.json"))
        let both = try DombBinary.run(["xenstore", "plan", "--json", "--script", Self.example])
        #expect(both.status != 0)
        let badPlan = try directory.write("plan.json", "{\"format\":\"domb-xenstore-plan/1\",\"domains\":[{\"name\":\"x\",\"domid\":\"1\",\"remove\":[],\"introduce\":{\"domid\":\"1\",\"ringRef\":\"1\",\"port\":\"1\"},\"nodes\":[{\"path\":\"/a/\",\"value\":\"\",\"perms\":[\"n0\"]}]}]}")
        let apply = try DombBinary.run(["xenstore", "apply", badPlan])
        #expect(apply.status != 0)
        #expect(apply.stderrText.contains("ends with '/'"), "\(apply.stderrText)")
    }
}

/// Every plan the examples produce is valid for C xenstored, before and after resolution
/// with every placeholder at its longest value.
@Suite struct XenstoreExamplePlanTests {
    static let examples = [
        "examples/system.dts", "examples/xl/equivalent.dts", "examples/xl/netback.cfg", "examples/xenstore/launch.json",
    ]

    @Test(arguments: examples)
    func examplePlanIsValid(_ example: String) throws {
        let result = try DombBinary.run(["xenstore", "plan", "\(Repository.root)/\(example)"])
        #expect(result.status == 0, "\(result.stderrText)")
        let plan = try JSONDecoder().decode(XenstorePlan.self, from: Data(result.stdout))
        try plan.validate()
        #expect(plan.canonicalBytes() == result.stdout)
        var longest: [String: XenstoreBuildValues] = [:]
        for (index, domain) in plan.domains.enumerated() {
            longest[domain.name] = XenstoreBuildValues(
                domid: 32000 + UInt32(index), uuid: String(format: "eeeeeeee-eeee-4eee-beee-%012x", index), storePort: .max,
                storeRingRef: .max, consolePort: .max, consoleRingRef: .max, startTime: "18446744073709551615.99")
        }
        let resolved = try plan.resolve(longest)
        #expect(!resolved.nodes.isEmpty)
        for node in resolved.nodes {
            try XenstorePath.validate(node.path)
            #expect(node.path.utf8.count + 1 + node.value.utf8.count <= XenstoreLimits.payloadMax)
            #expect(!node.perms.isEmpty)
        }
        for path in resolved.removals { try XenstorePath.validate(path) }
        #expect(Set(resolved.nodes.map(\.path)).count == resolved.nodes.count)
    }
}
