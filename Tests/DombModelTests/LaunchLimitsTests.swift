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

    /// Sets of devices that write the most Xenstore nodes, a domain's worth of each kind.
    static func heaviestDeviceSets() throws -> [[DeviceSpec]] {
        let count = LaunchLimits.maxDevicesPerDomain
        let connectors = (0..<VdisplSettings.maxConnectors).map { "c\($0):1920x1080" }.joined(separator: ";")
        let displays = try (0..<count).map { _ in try DeviceSpec(kind: .vdispl, settings: ["be-alloc": "1", "connectors": connectors]) }
        let vifs = (0..<count).map { _ in DeviceSpec(VifSettings(rate: VifRate("10MB/s"), vifname: "v", gatewaydev: "g")) }
        let disks = try (0..<count).map { index in
            try DeviceSpec(kind: .vbd, settings: ["target": "/dev/vg0/d\(index)", "vdev": "d\(index)p0"])
        }
        return [displays, vifs, disks]
    }

    /// Nodes and canonical bytes of the Xenstore plan of a launch of one domain.
    static func planSize(_ domain: DomainSpec) throws -> (nodes: Int, bytes: Int) {
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [domain]).validated())
        return (plan.allNodes.count, plan.canonicalBytes().count)
    }

    static func ceilingDivision(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }

    /// The planner plans each domain with its own devices and vCPUs, so the plan of the
    /// largest launch is at most: every domain at the cost of a bare one, every device at
    /// the cost of the heaviest kind, and every vCPU past each domain's first at the cost of
    /// one. Names are as long as allowed (they are in values and placeholders).
    @Test func theLargestPlanFitsThePlanCaps() throws {
        let name = String(repeating: "n", count: LaunchLimits.maxNameLength)
        let bare = try Self.planSize(Self.domain(name, devices: []))
        let manyVcpus = try Self.planSize(Self.domain(name, devices: [], vcpus: LaunchLimits.maxVcpus))
        let extraVcpus = Int(LaunchLimits.maxVcpus) - 1
        let perVcpu = (
            nodes: Self.ceilingDivision(manyVcpus.nodes - bare.nodes, extraVcpus),
            bytes: Self.ceilingDivision(manyVcpus.bytes - bare.bytes, extraVcpus)
        )
        var perDevice = (nodes: 0, bytes: 0)
        for devices in try Self.heaviestDeviceSets() {
            let size = try Self.planSize(Self.domain(name, devices: devices))
            perDevice.nodes = max(perDevice.nodes, Self.ceilingDivision(size.nodes - bare.nodes, devices.count))
            perDevice.bytes = max(perDevice.bytes, Self.ceilingDivision(size.bytes - bare.bytes, devices.count))
        }
        #expect(perDevice.nodes > 40 && perVcpu.nodes >= 1 && bare.nodes > 40, "\(bare) \(perDevice) \(perVcpu)")
        let vcpusPastFirst = Int(LaunchLimits.maxVcpusPerLaunch) - LaunchLimits.maxDomains
        let nodes = LaunchLimits.maxDomains * bare.nodes + LaunchLimits.maxDevices * perDevice.nodes + vcpusPastFirst * perVcpu.nodes
        #expect(nodes <= XenstoreLimits.maximumNodes, "\(nodes) nodes: \(bare) \(perDevice) \(perVcpu)")
        // Text beyond these short values only lengthens values, within maxDescriptionTextBytes,
        // each written at most three times (backend, libxl's copy, frontend).
        let textRoom = 3 * LaunchLimits.maxDescriptionTextBytes
        let bytes = LaunchLimits.maxDomains * bare.bytes + LaunchLimits.maxDevices * perDevice.bytes + vcpusPastFirst * perVcpu.bytes
        #expect(bytes + textRoom <= BundleLayout.maximumMetadataSize, "\(bytes) bytes: \(bare) \(perDevice) \(perVcpu)")
        // The launch-wide counts are what bound it: the per-domain caps times the domains would not fit.
        #expect(LaunchLimits.maxDomains * LaunchLimits.maxDevicesPerDomain * perDevice.nodes > XenstoreLimits.maximumNodes)
    }

    @Test func theLargestDescriptionFitsALaunchDTB() throws {
        // Every domain, module and device the limits allow, with the text the limits allow.
        // Each vif's text: "Domain-0", "script" and the script; the names, paths and the
        // rest of the text budget's overhead come first.
        let devicesPerDomain = LaunchLimits.maxDevices / LaunchLimits.maxDomains
        let modulesPerDomain = LaunchLimits.maxModules / LaunchLimits.maxDomains
        #expect(devicesPerDomain >= 1 && modulesPerDomain >= 2)
        func domain(_ index: Int, script: String) -> DomainSpec {
            var domain = Self.domain("d\(index)", devices: (0..<devicesPerDomain).map { _ in DeviceSpec(VifSettings(script: script)) })
            domain.modules += (1..<modulesPerDomain).map { _ in ModuleSpec(kind: .config, path: "/c") }
            return domain
        }
        // Everything but the scripts' bytes (a one-byte script each, taken off again).
        let overhead = LaunchSpec(domains: (0..<LaunchLimits.maxDomains).map { domain($0, script: "s") }).textBytes - LaunchLimits.maxDevices
        let perSetting = (LaunchLimits.maxDescriptionTextBytes - overhead) / LaunchLimits.maxDevices
        let spec = LaunchSpec(domains: (0..<LaunchLimits.maxDomains).map { domain($0, script: String(repeating: "s", count: perSetting)) })
        #expect(spec.textBytes > LaunchLimits.maxDescriptionTextBytes - LaunchLimits.maxDevices, "\(spec.textBytes)")
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

    /// The launch-wide counts are each refused one past the cap, with a message naming the count.
    @Test func launchWideCountsAreRefusedPastTheCap() throws {
        let domains = LaunchLimits.maxDevices / LaunchLimits.maxDevicesPerDomain + 1
        let devices = LaunchSpec(domains: (0..<domains).map { index in
            Self.domain("d\(index)", devices: (0..<LaunchLimits.maxDevicesPerDomain).map { _ in DeviceSpec(VifSettings()) })
        })
        #expect(devices.validate().map(\.message) == [
            "has \(domains * LaunchLimits.maxDevicesPerDomain) devices in all domains together; at most \(LaunchLimits.maxDevices) are allowed"
        ])
        let vcpuDomains = Int(LaunchLimits.maxVcpusPerLaunch) / Int(LaunchLimits.maxVcpus) + 1
        let vcpus = LaunchSpec(domains: (0..<vcpuDomains).map { Self.domain("d\($0)", devices: [], vcpus: LaunchLimits.maxVcpus) })
        #expect(vcpus.validate().map(\.message) == [
            "has \(vcpuDomains * Int(LaunchLimits.maxVcpus)) vCPUs in all domains together (each at its maximum); at most \(LaunchLimits.maxVcpusPerLaunch)"
        ])
        let moduleDomains = LaunchLimits.maxModules / 2 + 1
        let modules = LaunchSpec(domains: (0..<moduleDomains).map { index in
            var domain = Self.domain("d\(index)", devices: [])
            domain.modules.append(ModuleSpec(kind: .config, path: "/c"))
            return domain
        })
        #expect(modules.validate().map(\.message).contains(
            "has \(2 * moduleDomains) modules in all domains together; at most \(LaunchLimits.maxModules) are allowed"), "\(modules.validate().prefix(3))")
    }

    @Test func theLargestLaunchFitsABundle() throws {
        #expect(LaunchLimits.maxModules + 8 <= BundleLayout.maximumMembers)
        // Domain names are safe bundle path components.
        #expect(LaunchLimits.maxNameLength <= BundleLayout.maximumComponentLength)
        // The manifest of the largest launch, every module in every bank, fits its cap.
        let digests = DigestSet(HashAlgorithm.known.map { TaggedDigest($0, [UInt8](repeating: 0xA5, count: $0.digestSize ?? 0)) })
        let modulesPerDomain = LaunchLimits.maxModules / LaunchLimits.maxDomains
        let domains = (0..<LaunchLimits.maxDomains).map { index in
            let name = String("d\(index)" + String(repeating: "n", count: LaunchLimits.maxNameLength)).prefix(LaunchLimits.maxNameLength)
            let roles = BundleLayout.moduleRoles(Array(repeating: .ramdisk, count: modulesPerDomain))
            return BundleDomain(name: String(name), modules: roles.map { role in
                BundleModule(role: role, member: BundleMember(
                    path: BundleLayout.modulePath(domain: String(name), role: role), size: BundleLayout.maximumModuleSize, digests: digests))
            })
        }
        let manifest = BundleManifest(generation: UInt64.max, banks: HashAlgorithm.known, domains: domains)
        let size = manifest.canonicalBytes.count
        #expect(size > LaunchLimits.maxModules * 300 && size <= BundleLayout.maximumManifestSize, "\(size) bytes")
    }
}
