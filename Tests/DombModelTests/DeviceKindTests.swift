//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

/// Every device kind of the registry, through every front end and the planner. A kind
/// added without a sample here fails `everyKindHasASample`.
@Suite struct DeviceKindTests {
    /// One device of each kind, by its named settings (the device-tree and JSON form).
    static let samples: [String: [String: String]] = [
        "console": [:],
        "vif": ["mac": "00:16:3e:00:00:21", "bridge": "br0", "mtu": "9000", "rate": "10MB/s@20ms", "trusted": "0"],
        "vbd": ["target": "/dev/vg0/guest", "vdev": "xvda", "access": "ro", "discard": "0", "direct-io-safe": "1"],
        "vkbd": ["backend-type": "linux", "unique-id": "kbd0", "feature-abs-pointer": "1", "width": "1024", "height": "768"],
        "9pfs": ["tag": "share", "path": "/srv/share", "security_model": "none"],
        "vtpm": ["uuid": "0b2d5e1c-9c3a-4f6e-8d7b-1a2b3c4d5e6f"],
        "virtio-disk": ["target": "/dev/vg0/data", "vdev": "xvdb", "base": "0x2000000", "irq": "33"],
        "virtio-net": ["mac": "00:16:3e:00:00:22", "type": "virtio,device1"],
        "vdispl": ["be-alloc": "1", "connectors": "id0:1920x1080;id1:800x600"],
    ]

    static func device(_ kind: String) throws -> DeviceSpec {
        try DeviceSpec(kind: DeviceKind(kind), settings: try #require(samples[kind]))
    }

    static func launch() throws -> LaunchSpec {
        LaunchSpec(domains: [
            DomainSpec(
                name: "guest", type: .pvh, memoryKiB: 262_144, modules: [ModuleSpec(kind: .kernel, path: "/boot/vmlinuz")],
                devices: try DeviceKinds.names.map(device))
        ])
    }

    @Test func everyKindHasASample() {
        #expect(Set(DeviceKinds.names) == Set(Self.samples.keys))
    }

    /// Named settings → typed → named: nothing is lost or changed (beyond the defaults a
    /// kind writes out).
    @Test(arguments: DeviceKinds.names)
    func namedSettingsRoundTrip(_ kind: String) throws {
        let device = try Self.device(kind)
        let named = Dictionary(uniqueKeysWithValues: device.settings.namedSettings.map { ($0.name, $0.value) })
        for (name, value) in try #require(Self.samples[kind]) { #expect(named[name] == value, "\(kind) \(name)") }
        #expect(try DeviceSpec(kind: DeviceKind(kind), settings: named) == device)
        let json = try JSONEncoder().encode(device)
        #expect(try JSONDecoder().decode(DeviceSpec.self, from: json) == device)
    }

    /// Every kind through the validation gate, the canonical device tree and back, and the
    /// Xenstore planner.
    @Test func everyKindEncodesDecodesAndPlans() throws {
        let spec = try Self.launch()
        let launch = try spec.validated()
        let decoded = try LaunchDecoder.decode(dtb: LaunchEncoder.dtb(launch)).spec
        #expect(decoded == spec)
        let plan = try XenstorePlanner().plan(launch)
        let kinds = Set(plan.allNodes.compactMap { node -> String? in
            let parts = node.path.text.split(separator: "/")
            guard parts.count >= 5, parts[0] == "local", parts[3] == "device", parts[4] != "suspend" else { return nil }
            return String(parts[4])
        })
        // Each kind's frontend directory (libxl's names: console 0 lives in .../console).
        #expect(kinds == ["vbd", "virtio_disk", "vkbd", "vif", "vtpm", "9pfs", "virtio", "vdispl"], "\(kinds)")
    }

    /// xl.cfg(5)'s vdispl example, through xl's `key=value` spec.
    @Test func vdisplFromXL() throws {
        let imported = try LaunchFile.importXL(Array("""
            name = "display"
            type = "pvh"
            kernel = "/boot/vmlinuz"
            memory = 256
            vdispl = [ 'backend=Domain-0,be-alloc=1,connectors=id0:1920x1080;id1:800x600;id2:640x480' ]
            """.utf8))
        let vdispl = try #require(imported.domain.devices.compactMap { $0.settings(as: VdisplSettings.self) }.first)
        #expect(vdispl.backendAllocates)
        #expect(vdispl.connectors.map(\.uniqueID) == ["id0", "id1", "id2"])
        #expect(vdispl.connectors.map(\.width) == [1920, 800, 640])
        #expect(vdispl.connectors.map(\.height) == [1080, 600, 480])
        #expect(imported.notes.isEmpty, "\(imported.notes)")
        #expect(try LaunchSpec(domains: [imported.domain]).validated().devices["display"]?.count == 2)
    }

    @Test(arguments: [
        // xl_parse.c's parse_vdispl_config and its messages (it takes "id 0" as a unique-id).
        ("be-alloc=1", "At least one connector should be specified"),
        ("connectors=id0:1920", "Can't parse connector resolution"),
        ("connectors=id0:1920x1080,colour=blue", "Unknown string \"colour=blue\" in vdispl spec"),
    ])
    func vdisplRefusals(_ spec: String, _ expected: String) {
        let text = "name = \"d\"\ntype = \"pvh\"\nkernel = \"/k\"\nmemory = 64\nvdispl = [ '\(spec)' ]\n"
        #expect { try LaunchFile.importXL(Array(text.utf8)) } throws: { "\($0)".contains(expected) && "\($0)".contains("line 5") }
    }

    @Test func vdisplRules() throws {
        var spec = try Self.launch()
        spec.domains[0].devices = [try DeviceSpec(kind: .vdispl, settings: ["connectors": "a:1x1;a:0x2"])]
        let problems = spec.validate()
        #expect(problems.map(\.rule) == [.deviceSetting, .deviceSetting], "\(problems)")
        #expect(problems.map(\.message).contains("connector id \"a\" is used twice"))
    }
}
