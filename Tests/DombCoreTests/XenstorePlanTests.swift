//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

/// Golden tests: the plan equals the libxl 4.17 layout written out in Fixtures/xenstore.
@Suite struct XenstoreGoldenTests {
    /// Device subtrees, left to the device fixtures.
    static let deviceSubtrees = [
        "/local/domain/5/console", "/local/domain/5/device/vbd", "/local/domain/5/device/vif", "/local/domain/5/device/vkbd",
        "/libxl/5/device/console", "/libxl/5/device/vkbd",
    ]

    @Test func pvDomainNodes() throws {
        let plan = try XenstoreCast.resolvedPlan([XenstoreCast.guest()])
        try XenstoreCast.expectGolden(plan, "domain-pv", excluding: Self.deviceSubtrees)
    }

    @Test func hvmDomainNodes() throws {
        let plan = try XenstoreCast.resolvedPlan([XenstoreCast.guest(type: .hvm)])
        try XenstoreCast.expectGolden(plan, "domain-hvm", excluding: Self.deviceSubtrees)
    }

    @Test func pvhDomainHasOnlyStartTimeInVm() throws {
        let plan = try XenstoreCast.resolvedPlan([XenstoreCast.guest(type: .pvh)])
        let vm = XenstoreCast.nodes(of: plan, under: ["/vm/\(XenstoreCast.uuid)"]).map(\.path)
        #expect(Set(vm) == ["/vm/\(XenstoreCast.uuid)", "/vm/\(XenstoreCast.uuid)/uuid", "/vm/\(XenstoreCast.uuid)/name", "/vm/\(XenstoreCast.uuid)/start_time"])
        #expect(plan.nodes.first { $0.path == "/libxl/5/type" }?.value == "pvh")
        #expect(plan.nodes.first { $0.path == "/local/domain/5/memory/videoram" }?.value == "0")
    }

    @Test func consoleIsAddedToEveryGuest() throws {
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([XenstoreCast.guest()]), "console")
        // An explicit console device gives the same layout.
        let explicit = XenstoreCast.guest(devices: [DeviceSpec(ConsoleSettings())])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([explicit]), "console")
    }

    @Test func vifBackedByDom0() throws {
        let guest = XenstoreCast.guest(devices: [try DeviceSpec(kind: .vif, settings: ["mac": "00:16:3E:01:02:03"])])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([guest]), "vif-dom0")
    }

    @Test func vifBackedByDriverDomain() throws {
        let guest = XenstoreCast.guest(devices: [
            try DeviceSpec(kind: .vif, settings: ["mac": "00:16:3e:01:02:03"]),
            try DeviceSpec(
                kind: .vif, backend: "drv",
                settings: [
                    "mac": "00:16:3e:0a:0b:0c", "mtu": "9000", "ip": "10.0.0.5", "vifname": "web0", "rate": "200Mb/s",
                    "script": "vif-route", "bridge": "br-dmz",
                ]),
        ])
        let plan = try XenstoreCast.resolvedPlan([guest, XenstoreCast.driver])
        try XenstoreCast.expectGolden(plan, "vif-dom0")
        try XenstoreCast.expectGolden(plan, "vif-driver-domain")
        // The driver domain's own tree: backend directories made implicitly inherit
        // /local/domain/3's (n0,r3); a driver domain gets libxl and device-model (n3).
        for path in ["/local/domain/3/backend", "/local/domain/3/backend/vif", "/local/domain/3/backend/vif/5"] {
            #expect(plan.nodes.first { $0.path == path }?.perms == [XenstorePermission(.none, 0), XenstorePermission(.read, 3)], "\(path)")
        }
        for path in ["/local/domain/3/libxl", "/local/domain/3/device-model"] {
            #expect(plan.nodes.first { $0.path == path }?.perms == [XenstorePermission(.none, 3)], "\(path)")
        }
        #expect(!plan.nodes.contains { $0.path == "/local/domain/5/libxl" })
        // Backend domains are written first.
        #expect(plan.introductions.map(\.domain) == ["drv", "guest"])
    }

    @Test func vbdPhy() throws {
        let guest = XenstoreCast.guest(devices: [try DeviceSpec(kind: .vbd, settings: ["target": "/dev/vg0/guest", "vdev": "xvda"])])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([guest]), "vbd-phy")
    }

    @Test func vbdQdisk() throws {
        let guest = XenstoreCast.guest(devices: [
            try DeviceSpec(
                kind: .vbd,
                settings: ["target": "/srv/images/install.qcow2", "vdev": "xvdb", "format": "qcow2", "devtype": "cdrom"])
        ])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([guest]), "vbd-qdisk")
    }

    @Test func vkbdQemuAndLinuxBackends() throws {
        let guest = XenstoreCast.guest(devices: [
            try DeviceSpec(kind: .vkbd),
            try DeviceSpec(kind: .vkbd, settings: ["backend-type": "linux", "unique-id": "kbd-1"]),
        ])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([guest]), "vkbd")
    }

    @Test func ninePFS() throws {
        let guest = XenstoreCast.guest(devices: [
            try DeviceSpec(kind: .p9, settings: ["tag": "share", "path": "/srv/share", "security_model": "mapped-xattr"])
        ])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([guest]), "9pfs")
    }

    /// The kind added as one file (Devices/Vdispl.swift): libxl_vdispl.c's layout.
    @Test func vdisplWithTwoConnectors() throws {
        let guest = XenstoreCast.guest(devices: [
            try DeviceSpec(kind: .vdispl, settings: ["be-alloc": "1", "connectors": "id0:1920x1080;id1:800x600"])
        ])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([guest]), "vdispl")
    }

    @Test func vtpmInAStubDomain() throws {
        let guest = XenstoreCast.guest(devices: [
            try DeviceSpec(kind: .vtpm, backend: "vtpmmgr", settings: ["uuid": "0B2D5E1C-9C3A-4F6E-8D7B-1A2B3C4D5E6F"])
        ])
        try XenstoreCast.expectGolden(try XenstoreCast.resolvedPlan([XenstoreCast.vtpmManager, guest]), "vtpm")
    }

    @Test func virtioDiskAndNet() throws {
        let guest = XenstoreCast.guest(
            type: .pvh,
            devices: [
                try DeviceSpec(kind: .virtioNet),
                try DeviceSpec(kind: .virtioDisk, settings: ["target": "/dev/vg0/guest", "vdev": "xvda"]),
            ])
        let plan = try XenstoreCast.resolvedPlan([guest])
        try XenstoreCast.expectGolden(plan, "virtio-disk")
        try XenstoreCast.expectGolden(plan, "virtio-net")
    }

    @Test func hvmGetsADefaultQemuKeyboard() throws {
        let plan = try XenstoreCast.resolvedPlan([XenstoreCast.guest(type: .hvm)])
        #expect(plan.nodes.contains { $0.path == "/local/domain/0/backend/vkbd/5/0/frontend" })
        #expect(plan.nodes.contains { $0.path == "/local/domain/5/console/type" && $0.value == "xenconsoled" })
    }

    @Test func goldenFixturesSurviveTheComparison() throws {
        // The fixtures double as `xenstore-ls -f -p` output: comparing the plan with the
        // union of the fixtures through the public comparison must find no difference
        // inside the fixtures' subtrees.
        let guest = XenstoreCast.guest(devices: [try DeviceSpec(kind: .vif, settings: ["mac": "00:16:3e:01:02:03"])])
        let spec = LaunchSpec(domains: [guest])
        let plan = try XenstorePlanner().plan(spec)
        var entries: [XenstoreListing.Entry] = []
        for name in ["domain-pv", "console", "vif-dom0"] { entries += try XenstoreCast.fixture(name).entries }
        // /libxl/5/device/vif and /local/domain/5/device/vif, /libxl/5/device/console are
        // implicit directories the fixtures leave out.
        for implicit in ["/libxl/5/device/console", "/libxl/5/device/vif"] {
            entries.append(.init(path: implicit, value: "", perms: [XenstorePermission(.none, 0)], truncated: false))
        }
        entries.append(.init(path: "/local/domain/5/device/vif", value: "", perms: [XenstorePermission(.none, 0), XenstorePermission(.read, 5)], truncated: false))
        for dir in ["/local/domain/0/backend/console/5", "/local/domain/0/backend/vif/5"] {
            entries.append(.init(path: dir, value: "", perms: [XenstorePermission(.none, 0)], truncated: false))
        }
        let listing = XenstoreListing(entries: entries)
        let resolved = try plan.resolve(try plan.buildValues(from: listing))
        let comparison = resolved.compare(with: listing)
        #expect(comparison.isEqual, "\(comparison)")
    }
}
