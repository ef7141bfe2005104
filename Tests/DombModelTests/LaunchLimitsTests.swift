//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFDT
import DombModel
import DombTestSupport
import Foundation
import Testing

/// The one limits table is sized so that a description it allows never trips a later cap:
/// the launch DTB, the Xenstore plan and the bundle of the largest allowed launch fit.
@Suite struct LaunchLimitsTests {
    static func domain(_ name: String, devices: [DeviceSpec], vcpus: UInt32 = 1) -> DomainSpec {
        DomainSpec(
            name: name, type: .pv, memoryKiB: 262_144, vcpus: vcpus,
            modules: [ModuleSpec(kind: .kernel, path: "/boot/vmlinuz")], devices: devices)
    }

    /// The heaviest domain for Xenstore: the most vCPUs and the most devices of the kinds
    /// that write the most nodes.
    static func heaviestDomains() throws -> [DomainSpec] {
        let count = LaunchLimits.maxDevicesPerDomain
        let connectors = (0..<VdisplSettings.maxConnectors).map { "c\($0):1920x1080" }.joined(separator: ";")
        let displays = try (0..<count).map { _ in try DeviceSpec(kind: .vdispl, settings: ["be-alloc": "1", "connectors": connectors]) }
        let vifs = (0..<count).map { _ in DeviceSpec(VifSettings(rate: VifRate("10MB/s"), vifname: "v", gatewaydev: "g")) }
        let disks = try (0..<count).map { index in
            try DeviceSpec(kind: .vbd, settings: ["target": "/dev/vg0/d\(index)", "vdev": "d\(index)p0"])
        }
        return [displays, vifs, disks].map { domain("heavy", devices: $0, vcpus: LaunchLimits.maxVcpus) }
    }

    @Test func theLargestPlanFitsThePlanCaps() throws {
        var nodesPerDomain = 0
        var bytesPerDomain = 0
        for domain in try Self.heaviestDomains() {
            let plan = try XenstorePlanner().plan(LaunchSpec(domains: [domain]).validated())
            nodesPerDomain = max(nodesPerDomain, plan.allNodes.count)
            bytesPerDomain = max(bytesPerDomain, plan.canonicalBytes().count)
        }
        #expect(nodesPerDomain > 2000, "\(nodesPerDomain)")
        #expect(nodesPerDomain * LaunchLimits.maxDomains <= XenstoreLimits.maximumNodes, "\(nodesPerDomain) nodes per domain")
        // Text beyond these short values only lengthens values, within maxDescriptionTextBytes,
        // each written at most three times (backend, libxl's copy, frontend).
        let textRoom = 3 * LaunchLimits.maxDescriptionTextBytes
        #expect(bytesPerDomain * LaunchLimits.maxDomains + textRoom <= BundleLayout.maximumMetadataSize, "\(bytesPerDomain) bytes per domain")
    }

    @Test func theLargestDescriptionFitsALaunchDTB() throws {
        // Every domain and device the limits allow, with the text the limits allow.
        // Each vif's text: "Domain-0", "script" and the script; 2 KiB left for names and paths.
        let devices = LaunchLimits.maxDomains * LaunchLimits.maxDevicesPerDomain
        let perSetting = (LaunchLimits.maxDescriptionTextBytes - 2048) / devices - "Domain-0script".utf8.count
        let script = String(repeating: "s", count: perSetting)
        let domains = (0..<LaunchLimits.maxDomains).map { index in
            Self.domain("d\(index)", devices: (0..<LaunchLimits.maxDevicesPerDomain).map { _ in DeviceSpec(VifSettings(script: script)) })
        }
        let spec = LaunchSpec(domains: domains)
        let launch = try spec.validated()
        let dtb = try LaunchEncoder.dtb(launch)
        #expect(dtb.count <= FDT.maxSize, "\(dtb.count) bytes")
        #expect(try LaunchDecoder.decode(dtb: dtb).spec == spec)
        // A little more text than allowed is refused by the rules, before any encoder.
        var over = spec
        over.domains[0].modules[0].bootargs = String(repeating: "a", count: 1000)
        over.domains[1].modules[0].bootargs = String(repeating: "a", count: 1000)
        over.domains[2].devices[0] = DeviceSpec(VifSettings(script: String(repeating: "s", count: 1000)))
        #expect(over.validate().map(\.rule) == [.tooMany], "\(over.validate())")
    }

    @Test func theLargestLaunchFitsABundle() {
        #expect(LaunchLimits.maxDomains * LaunchLimits.maxModulesPerDomain + 8 <= BundleLayout.maximumMembers)
        // Domain names are safe bundle path components.
        #expect(LaunchLimits.maxNameLength <= BundleLayout.maximumComponentLength)
    }
}
