//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

@Suite struct XenstoreDiskNumberTests {
    // Values from libxl__device_disk_dev_number and docs/misc/vbd-interface.txt.
    @Test(arguments: [
        ("xvda", 51712), ("xvdb", 51728), ("xvda1", 51713), ("xvda15", 51727), ("xvdp", 51952),
        ("xvdq", 268_439_552), ("xvda16", 268_435_472), ("xvdaa", 268_442_112), ("xvdq1", 268_439_553),
        ("d0p0", 51712), ("d0p1", 51713), ("d1p2", 51730), ("d16p0", 268_439_552),
        ("hda", 768), ("hdb", 832), ("hdc", 5632), ("hdd", 5696), ("hda1", 769), ("hdb63", 895),
        ("sda", 2048), ("sdb", 2064), ("sdp15", 2303), ("51712", 51712), ("0xca00", 51712),
    ])
    func number(_ vdev: String, _ expected: Int) {
        #expect(VirtualDisk(vdev)?.number == UInt32(expected), "\(vdev)")
    }

    @Test(arguments: ["xvda0", "xvda01", "hde", "hda64", "sdq", "sda16", "xvd", "vda", "", "xvdA", "d0p256", "4294967296", "xvda256"])
    func rejected(_ vdev: String) {
        #expect(VirtualDisk(vdev) == nil, "\(vdev)")
    }
}

@Suite struct XenstorePathTests {
    @Test func acceptsXenstoredNames() throws {
        for path in ["/", "/local/domain/5/cpu/0/availability", "/vm/6f1d2e3c-4b5a-4978-8a1b-2c3d4e5f6a7b", "/tool/xenstored", "/a/@b_c-D9"] {
            try XenstorePath.validate(path)
        }
    }

    @Test func rejectsWhatCXenstoredRejects() {
        // The init-dom0less vCPU loop writes "cpu/%u/availability/": a trailing slash.
        for path in ["/local/domain/5/cpu/0/availability/", "local/domain", "/a//b", "/a b", "/a.b", "/a:b", "/a$b", "/ä", ""] {
            #expect(throws: ParseError.self, "\(path)") { try XenstorePath.validate(path) }
        }
    }

    @Test func lengthLimits() throws {
        let long = "/" + String(repeating: "a", count: XenstoreLimits.absolutePathMax - 1)
        try XenstorePath.validate(long)
        #expect(throws: ParseError.self) { try XenstorePath.validate(long + "a") }
        // Below /local/domain/<id>/ the quota is XENSTORE_REL_PATH_MAX.
        let local = "/local/domain/7/" + String(repeating: "b", count: XenstoreLimits.relativePathMax)
        try XenstorePath.validate(local)
        #expect(throws: ParseError.self) { try XenstorePath.validate(local + "b") }
    }
}

@Suite struct XenstorePlanValidityTests {
    static func specs() throws -> [(String, LaunchSpec)] {
        let example = try JSONDecoder().decode(
            LaunchSpec.self, from: Data(contentsOf: URL(fileURLWithPath: "\(Repository.root)/examples/xenstore/launch.json")))
        let everything = XenstoreCast.guest(devices: [
            try DeviceSpec(kind: .vif, backend: "drv"), try DeviceSpec(kind: .vif, devid: 4), try DeviceSpec(kind: .vif),
            try DeviceSpec(kind: .vbd, settings: ["target": "/dev/sda", "vdev": "xvda"]),
            try DeviceSpec(kind: .vbd, backend: "drv", settings: ["target": "/img/b.raw", "vdev": "xvdz9"]),
            try DeviceSpec(kind: .vbd, settings: ["target": "/img/c.vhd", "vdev": "hdc", "format": "vhd"]),
            try DeviceSpec(kind: .vkbd), try DeviceSpec(kind: .p9, settings: ["tag": "t", "path": "/p", "security_model": "none"]),
            try DeviceSpec(kind: .vtpm, backend: "vtpmmgr", settings: ["uuid": "0b2d5e1c-9c3a-4f6e-8d7b-1a2b3c4d5e6f"]),
        ])
        var unnamed = XenstoreCast.driver
        unnamed.domid = nil
        unnamed.uuid = nil
        return [
            ("examples/xenstore/launch.json", example),
            ("every device", LaunchSpec(domains: [everything, XenstoreCast.driver, XenstoreCast.vtpmManager])),
            ("hvm", LaunchSpec(domains: [XenstoreCast.guest(type: .hvm)])),
            ("pvh + virtio", LaunchSpec(domains: [XenstoreCast.guest(type: .pvh, devices: [try DeviceSpec(kind: .virtioNet)])])),
            ("builder-chosen domid and uuid", LaunchSpec(domains: [unnamed])),
        ]
    }

    /// Every path of every plan is valid for C xenstored, before and after resolution, and
    /// every request fits XENSTORE_PAYLOAD_MAX, with each placeholder at its longest value.
    @Test func everyPlanIsValidForCXenstored() throws {
        for (name, spec) in try Self.specs() {
            let plan = try XenstorePlanner().plan(spec)
            try plan.validate()
            #expect(plan.allNodes.count > 40, "\(name)")
            var longest: [String: XenstoreBuildValues] = [:]
            for (index, domain) in plan.domains.enumerated() {
                longest[domain.name] = XenstoreBuildValues(
                    domid: 32000 + UInt32(index), uuid: String(format: "ffffffff-ffff-4fff-bfff-%012x", index), storePort: .max,
                    storeRingRef: .max, consolePort: .max, consoleRingRef: .max, startTime: "18446744073709551615.99")
            }
            let resolved = try plan.resolve(longest)
            var seen = Set<String>()
            for node in resolved.nodes {
                try XenstorePath.validate(node.path)
                #expect(!node.path.hasSuffix("/"), "\(name): \(node.path)")
                #expect(node.path.utf8.count + 1 + node.value.utf8.count <= XenstoreLimits.payloadMax)
                #expect(!node.perms.isEmpty)
                #expect(seen.insert(node.path).inserted, "\(name): \(node.path) twice")
                // Parents come first (or lie outside the plan).
                if let parent = XenstorePath.parent(of: node.path), resolved.nodes.contains(where: { $0.path == parent }) {
                    #expect(seen.contains(parent), "\(name): \(node.path) before \(parent)")
                }
                #expect(!node.path.contains("$") && !node.value.contains("${"), "\(name): unresolved \(node.path)")
            }
            for path in resolved.removals { try XenstorePath.validate(path) }
        }
    }

    @Test func placeholdersForBuilderChosenValues() throws {
        var driver = XenstoreCast.driver
        driver.domid = nil
        driver.uuid = nil
        let guest = XenstoreCast.guest(devices: [try DeviceSpec(kind: .vif, backend: "drv")])
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [guest, driver]))
        #expect(plan.domains.map(\.name) == ["drv", "guest"])
        #expect(plan.domains[0].domid.text == "${domid:drv}")
        #expect(Set(plan.placeholders.filter { $0.domain == "drv" }.map(\.kind)) == Set(XenstorePlaceholder.Kind.allCases))
        #expect(!plan.placeholders.contains(XenstorePlaceholder(.domid, "guest")))
        #expect(plan.allNodes.contains { $0.path.text == "/local/domain/${domid:drv}/backend/vif/5/0/frontend-id" && $0.value.text == "5" })

        let missing = #expect(throws: ParseError.self) { try plan.resolve([:]) }
        #expect(missing?.reason.contains("drv") == true)
        var values = XenstoreCast.values(for: plan)
        values["drv"]?.domid = 42
        let resolved = try plan.resolve(values)
        #expect(resolved.nodes.contains { $0.path == "/local/domain/42/backend/vif/5/0/frontend-id" })
        #expect(resolved.nodes.contains { $0.path == "/local/domain/5/device/vif/0/backend-id" && $0.value == "42" })
        #expect(resolved.nodes.first { $0.path == "/local/domain/5/device/vif/0" }?.perms == [XenstorePermission(.none, 5), XenstorePermission(.read, 42)])
        #expect(resolved.introductions.map(\.domid) == [42, 5])

        // Malformed or clashing values are refused, naming the domain.
        for bad in [
            XenstoreBuildValues(domid: 0), XenstoreBuildValues(domid: 0x7FF0), XenstoreBuildValues(domid: 5),
        ] {
            var copy = values
            copy["drv"]?.domid = bad.domid
            #expect(throws: ParseError.self) { try plan.resolve(copy) }
        }
        var badUUID = values
        badUUID["drv"]?.uuid = "not-a-uuid"
        #expect(throws: ParseError.self) { try plan.resolve(badUUID) }
        var badTime = values
        badTime["drv"]?.startTime = "12.3"
        #expect(throws: ParseError.self) { try plan.resolve(badTime) }
    }

    @Test func resolvingTwoDomainsOntoTheSameNodesFails() throws {
        var other = XenstoreCast.driver
        other.domid = nil
        other.uuid = nil
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [XenstoreCast.guest(), other]))
        var values = XenstoreCast.values(for: plan)
        values["drv"]?.uuid = XenstoreCast.uuid
        let error = #expect(throws: ParseError.self) { try plan.resolve(values) }
        #expect(error?.reason.contains("/vm/\(XenstoreCast.uuid)") == true)
    }

    /// xl's check-xl-vif-parse cases (tools/xl/check-xl-vif-parse).
    @Test func vifRates() throws {
        let cases: [(String, String)] = [
            ("100000B/s", "5000,50000"), ("2000000B/s@50ms", "100000,50000"), ("2KB/s@50ms", "100,50000"),
            ("2MB/s@50ms", "100000,50000"), ("16Mb/s@50ms", "100000,50000"), ("2GB/s@50us", "100000,50"),
            ("1MB/s@1s", "1000000,1000000"), ("1MB/s@1", "1000000,1000000"), ("8Kb/s@20000us", "20,20000"),
        ]
        for (rate, stored) in cases {
            let guest = XenstoreCast.guest(devices: [try DeviceSpec(kind: .vif, settings: ["rate": rate])])
            let plan = try XenstoreCast.resolvedPlan([guest])
            #expect(plan.nodes.first { $0.path == "/local/domain/0/backend/vif/5/0/rate" }?.value == stored, "\(rate)")
        }
    }

    @Test func startTimeText() {
        #expect(XenstoreBuildValues.startTime(seconds: 1_700_000_000, microseconds: 420_000) == "1700000000.42")
        #expect(XenstoreBuildValues.startTime(seconds: 5, microseconds: 9_999) == "5.00")
        #expect(XenstoreBuildValues.startTime(seconds: 5, microseconds: 50_000) == "5.05")
    }

    /// What the planner cannot lay out never reaches it: the kinds refuse it when they read
    /// their settings, or the validation gate does, with a message naming the problem.
    @Test func badSpecsAreClearErrors() {
        func reason(_ make: () throws -> [DomainSpec]) -> String? {
            do {
                _ = try XenstorePlanner().plan(LaunchSpec(domains: try make()).validated())
                return nil
            } catch { return "\(error)" }
        }
        let cases: [(() throws -> [DeviceSpec], String)] = [
            ({ [try DeviceSpec(kind: .vif, settings: ["colour": "red"])] }, "unknown setting \"colour\""),
            ({ [try DeviceSpec(kind: .vbd, settings: ["target": "/dev/sda"])] }, "needs a vdev"),
            ({ [try DeviceSpec(kind: .vbd, settings: ["target": "/dev/sda", "vdev": "xvda0"])] }, "xvda0"),
            ({ [try DeviceSpec(kind: .vbd, settings: ["target": "/x", "vdev": "xvda"]), try DeviceSpec(kind: .vbd, settings: ["target": "/y", "vdev": "d0p0"])] }, "is also domain \"guest\" vbd 0"),
            ({ [try DeviceSpec(kind: .vif, backend: "nowhere")] }, "\"nowhere\" is not described"),
            ({ [try DeviceSpec(kind: .vif, backend: "guest")] }, "its own backend"),
            ({ [try DeviceSpec(kind: .vif, settings: ["mac": "00:16:3e:00:00"])] }, "six hex pairs"),
            ({ [try DeviceSpec(kind: .vif, settings: ["rate": "10ZB/m"])] }, "rate"),
            ({ [try DeviceSpec(kind: .vif, settings: ["rate": "0B/s"])] }, "rate"),
            ({ [try DeviceSpec(kind: .vif, settings: ["rate": "1MB/s@5h"])] }, "rate"),
            ({ [try DeviceSpec(kind: .vtpm)] }, "vtpm needs uuid"),
            ({ [try DeviceSpec(kind: .p9, settings: ["tag": "t"])] }, "9pfs needs"),
            ({ [DeviceSpec(ConsoleSettings()), DeviceSpec(ConsoleSettings())] }, "used twice for console"),
            ({ [try DeviceSpec(kind: .vbd, settings: ["target": "/x", "vdev": "xvda", "backendtype": "tap"])] }, "tap"),
        ]
        for (devices, expected) in cases {
            let text = reason { [XenstoreCast.guest(devices: try devices())] }
            #expect(text?.contains(expected) == true, "\(expected): got \(text ?? "success")")
        }
        var slash = XenstoreCast.guest()
        slash.name = "a/b"
        #expect(reason { [slash] }?.contains("a/b") == true)
        var noKernel = XenstoreCast.guest()
        noKernel.modules = []
        #expect(reason { [noKernel] }?.contains("kernel") == true)
        #expect(reason { [XenstoreCast.guest(), XenstoreCast.guest()] }?.contains("more than one domain has this name") == true)
    }

    /// `libxl` and `device-model` in a domain's tree come from the driver-domain flag
    /// (libxl__domain_make with c_info.driver_domain), not from whether it serves backends.
    @Test func driverDomainDirectoriesFollowTheFlag() throws {
        let guest = XenstoreCast.guest(devices: [try DeviceSpec(kind: .vif, backend: "drv")])
        // A driver domain gets them whether or not it serves a device of the launch yet.
        for served in [true, false] {
            let domains = served ? [guest, XenstoreCast.driver] : [XenstoreCast.guest(), XenstoreCast.driver]
            let plan = try XenstorePlanner().plan(LaunchSpec(domains: domains))
            let paths = Set(plan.allNodes.map(\.path.text))
            #expect(paths.contains("/local/domain/3/libxl") && paths.contains("/local/domain/3/device-model"))
            #expect(!paths.contains("/local/domain/5/libxl"))
        }
        // A domain serving vifs without the flag: refused before any plan.
        var serving = XenstoreCast.driver
        serving.isDriverDomain = false
        let issues = LaunchSpec(domains: [guest, serving]).validate().map(\.description)
        #expect(issues.contains { $0.contains("backend domain \"drv\" is not a driver domain") }, "\(issues)")
    }

    @Test func theBootAndXenstoreDomainsAreNotPlanned() throws {
        var domB = DomainSpec(name: "domB", type: .pvh, memoryKiB: 65_536, modules: [ModuleSpec(kind: .kernel, path: "/boot/domb")])
        domB.isBootDomain = true
        var headless = XenstoreCast.driver
        headless.name = "nox"
        headless.domid = 9
        headless.enhanced = .noXenstore
        var xenstored = XenstoreCast.vtpmManager
        xenstored.name = "xenstore"
        xenstored.domid = 1
        xenstored.capabilities = .xenstore
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [domB, headless, xenstored, XenstoreCast.guest()]))
        #expect(plan.domains.map(\.name) == ["guest"])
    }
}

@Suite struct XenstoreTemplateTests {
    @Test func roundTripAndEscapes() throws {
        let template: XenstoreTemplate = "/local/domain/\(XenstorePlaceholder(.domid, "web"))/name"
        #expect(template.text == "/local/domain/${domid:web}/name")
        #expect(template.placeholders == [XenstorePlaceholder(.domid, "web")])
        #expect(template.render { _ in "12" } == "/local/domain/12/name")
        let literal = XenstoreTemplate(literal: "cost $5 ${x}")
        #expect(literal.text == "cost $$5 $${x}")
        #expect(literal.isResolved)
        #expect(literal.render { _ in "?" } == "cost $5 ${x}")
        #expect(try XenstoreTemplate(parsing: literal.text) == literal)
        let data = try JSONEncoder().encode(template)
        #expect(try JSONDecoder().decode(XenstoreTemplate.self, from: data) == template)
    }

    @Test(arguments: ["$", "a$b", "${domid}", "${nope:x}", "${domid:}", "${domid:x", "$x"])
    func malformed(_ text: String) {
        #expect(throws: ParseError.self) { try XenstoreTemplate(parsing: text) }
    }

    @Test func permissions() throws {
        #expect(try XenstorePermission(parsing: "b32751") == XenstorePermission(.both, 32751))
        for bad in ["x1", "n", "r-1", "w65536", "n1a", ""] {
            #expect(throws: ParseError.self, "\(bad)") { try XenstorePermission(parsing: bad) }
        }
        #expect(throws: ParseError.self) { try XenstorePermissionTemplate(parsing: "n${uuid:web}") }
        #expect(try XenstorePermissionTemplate(parsing: "r${domid:web}").description == "r${domid:web}")
    }
}

@Suite struct XenstoreCanonicalTests {
    @Test func stableBytesThatDecodeBack() throws {
        let spec = try XenstorePlanValidityTests.specs()[1].1
        let first = try XenstorePlanner().plan(spec)
        let second = try XenstorePlanner().plan(spec)
        #expect(first.canonicalBytes() == second.canonicalBytes())
        let decoded = try JSONDecoder().decode(XenstorePlan.self, from: Data(first.canonicalBytes()))
        #expect(decoded == first)
        #expect(decoded.canonicalBytes() == first.canonicalBytes())
        // Also valid JSON for a generic parser, in domb's one canonical JSON form (the manifest's).
        _ = try JSONSerialization.jsonObject(with: Data(first.canonicalBytes()))
        #expect(try JSONValue(canonical: first.canonicalBytes()).canonicalBytes == first.canonicalBytes())
        // Any change to the plan changes the bytes.
        var changed = first
        changed.domains[0].nodes[3].value = "x"
        #expect(changed.canonicalBytes() != first.canonicalBytes())
    }

    /// Only console 0's `tty` is kept; its canonical line says so and decodes back; a plan
    /// written before the field existed decodes with nothing kept.
    @Test func keptNodesInTheCanonicalForm() throws {
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [XenstoreCast.guest()]))
        #expect(plan.allNodes.filter(\.keep).map(\.path.text) == ["/local/domain/5/console/tty"])
        // "keep" only where set, so plans without kept nodes keep their bytes.
        let text = String(decoding: plan.canonicalBytes(), as: UTF8.self)
        #expect(text.components(separatedBy: "\"keep\"").count == 2)
        #expect(text.contains(#"{"keep":true,"path":"/local/domain/5/console/tty","perms":["n0","r5"],"value":""}"#))
        #expect(try JSONDecoder().decode(XenstorePlan.self, from: Data(plan.canonicalBytes())) == plan)
        let old = Data(#"{"path":"/a","value":"","perms":["n0"]}"#.utf8)
        #expect(try JSONDecoder().decode(XenstorePlan.Node.self, from: old).keep == false)
        // The shell script saves the daemon's value before removing the stale subtree.
        let script = plan.shellScript()
        let save = try #require(script.range(of: "if kept_1=$(xenstore-read '/local/domain/5/console/tty' 2>/dev/null)"))
        let remove = try #require(script.range(of: "xenstore-rm '/local/domain/5'"))
        #expect(save.lowerBound < remove.lowerBound)
        #expect(script.contains("xenstore-write '/local/domain/5/console/tty' \"$kept_1\"\n"))
    }

    @Test func escapesAreCanonical() throws {
        var guest = XenstoreCast.guest()
        guest.modules[0].bootargs = "quote\" back\\slash tab\t nl\n bell\u{7} dollar$ ünï"
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [guest]))
        let text = String(decoding: plan.canonicalBytes(), as: UTF8.self)
        #expect(text.contains(#""quote\" back\\slash tab\t nl\n bell\u0007 dollar$$ ünï""#))
        #expect(try JSONDecoder().decode(XenstorePlan.self, from: Data(plan.canonicalBytes())) == plan)
    }

    @Test func digestHookHashesTheCanonicalBytes() throws {
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [XenstoreCast.guest()]))
        var seen: [UInt8] = []
        let digests = plan.digests { bytes in
            seen = bytes
            return DigestSet([TaggedDigest(.sha256, Array(repeating: 7, count: 32))])
        }
        #expect(seen == plan.canonicalBytes())
        #expect(digests[.sha256] == Array(repeating: 7, count: 32))
    }

    @Test func decodingRejectsBadPlans() throws {
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [XenstoreCast.guest()]))
        let text = String(decoding: plan.canonicalBytes(), as: UTF8.self)
        for (from, to) in [("\"/local/domain/5/name\"", "\"/local/domain/5/name/\""), ("\"n0\"", "\"q0\""), ("${", "${bogus:")] {
            let data = Data(text.replacing(from, with: to).utf8)
            #expect(throws: (any Error).self, "\(from)") {
                let decoded = try JSONDecoder().decode(XenstorePlan.self, from: data)
                try decoded.validate()
            }
        }
    }
}
