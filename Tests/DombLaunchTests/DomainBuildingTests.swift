//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombLaunch
import DombTestSupport
import Foundation
import Testing

/// The start order comes from the one dependency graph, through the validation gate.
@Suite struct LaunchOrderTests {
    static func system() throws -> LaunchSpec {
        let kernel = [ModuleSpec(kind: .kernel, path: "/boot/vmlinuz")]
        return LaunchSpec(domains: [
            DomainSpec(
                name: "web", type: .pvh, memoryKiB: 262_144, modules: kernel,
                devices: [
                    try DeviceSpec(kind: .vif, backend: "netback"),
                    try DeviceSpec(kind: .vbd, backend: "Domain-0", settings: ["target": "/dev/vg0/web", "vdev": "xvda"]),
                ]),
            DomainSpec(name: "netback", type: .pv, memoryKiB: 131_072, isDriverDomain: true, modules: kernel, devices: [DeviceSpec(ConsoleSettings())]),
            DomainSpec(name: "xenstore", type: .pvh, memoryKiB: 65_536, capabilities: [.xenstore], modules: kernel),
        ])
    }

    @Test func xenstoreAndDriverDomainsStartFirst() throws {
        #expect(try Self.system().validated().startOrder == ["xenstore", "netback", "web"])
    }

    @Test func cycleIsNamed() throws {
        var spec = try Self.system()
        spec.domains[1].devices.append(try DeviceSpec(kind: .vif, backend: "web"))
        let problems = spec.validate()
        let cycle = try #require(problems.first { $0.rule == .backendCycle }, "\(problems)")
        #expect(cycle.message.contains("\"web\"") && cycle.message.contains("\"netback\""))
        #expect(throws: LaunchValidationError.self) { try spec.validated() }
    }

    /// The Xenstore domain is a dependency too: it cannot use a backend in a domain that needs it.
    @Test func xenstoreDomainBackendCycleIsFound() throws {
        var spec = try Self.system()
        spec.domains[2].devices.append(try DeviceSpec(kind: .vif, backend: "netback"))
        #expect(spec.validate().map(\.rule) == [.backendCycle])
    }

    @Test func unknownBackendIsNamed() throws {
        var spec = try Self.system()
        spec.domains[0].devices.append(try DeviceSpec(kind: .vif, backend: "nosuch"))
        #expect(spec.validate().map(\.rule) == [.unknownBackend])
    }
}

@Suite struct PlanBackendTests {
    @Test func assignsDomidsLikeXenAndRecordsEveryStep() throws {
        let backend = PlanBackend()
        let kernel = try SealedImage.sealing(name: "k", bytes: [1, 2, 3])
        let fixed = DomainSpec(name: "a", domid: 5, type: .pv, memoryKiB: 1024, modules: [ModuleSpec(kind: .kernel, path: "k")])
        let auto = DomainSpec(name: "b", type: .pvh, memoryKiB: 2048, modules: [ModuleSpec(kind: .kernel, path: "k")])
        let a = try backend.build(fixed, images: DomainImages(modules: [.kernel: kernel]))
        let b = try backend.build(auto, images: DomainImages(modules: [.kernel: kernel]))
        #expect(a.domid == 5)
        #expect(b.domid == 1)
        try backend.unpause(b)
        try backend.destroy(a)
        #expect(backend.actions.count == 4)
        #expect(backend.actions[2] == .unpause(name: "b", domid: 1))
        // The domid freed by destroy can be taken again; a duplicate cannot.
        #expect(throws: BootError.self) { try backend.build(auto.with(domid: 1), images: DomainImages(modules: [.kernel: kernel])) }
    }

    /// Off Xen the host's CPUs and NUMA nodes are unknown: the plan records the affinities
    /// as described, node terms unresolved, in xl's spelling.
    @Test func recordsAffinitiesUnresolved() throws {
        let backend = PlanBackend()
        let kernel = try SealedImage.sealing(name: "k", bytes: [1, 2, 3])
        var domain = DomainSpec(name: "a", type: .pv, memoryKiB: 1024, modules: [ModuleSpec(kind: .kernel, path: "k")])
        domain.cpuAffinity = .allVCPUs(try XLCPUList.parse("nodes:0,^3"))
        domain.softCPUAffinity = .perVCPU([try XLCPUList.parse("all,^node:1"), .cpus([2])])
        _ = try backend.build(domain, images: DomainImages(modules: [.kernel: kernel]))
        guard case .build(_, _, _, _, _, _, let affinity) = try #require(backend.actions.first) else {
            Issue.record("expected a build")
            return
        }
        #expect(affinity == ["cpus = \"nodes:0,^3\"", "cpus_soft = [\"all,^nodes:1\", \"2\"]"])
        #expect("\(backend.actions[0])".contains("1 vCPU(s), cpus = \"nodes:0,^3\", cpus_soft = [\"all,^nodes:1\", \"2\"], paused"))
    }

    @Test func refusesADomainWhoseImageWasNotVerified() throws {
        let backend = PlanBackend()
        let domain = DomainSpec(name: "a", type: .pv, memoryKiB: 1024, modules: [ModuleSpec(kind: .kernel, path: "k")])
        do {
            _ = try backend.build(domain, images: DomainImages())
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("domain a"))
            #expect("\(error)".contains("kernel"))
        }
        #expect(backend.actions.isEmpty)
    }
}

@Suite struct SealedImageTests {
    @Test func holdsExactlyTheBytesAndCannotBeChanged() throws {
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let image = try SealedImage.sealing(name: "kernel", bytes: bytes)
        #expect(image.isSealed)
        #expect(try image.readAll() == bytes)
        // Reading through the path gives the same bytes, as libxl would.
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: image.path))) == bytes)
        // Opening it for writing is refused by the seals.
        let fd = open(image.path, O_WRONLY)
        if fd >= 0 {
            let n = write(fd, [0xFF], 1)
            close(fd)
            #expect(n < 0, "a sealed memfd must refuse writes")
        }
        #expect(try image.readAll() == bytes)
    }
}

@Suite struct LibxlBackendTests {
    @Test func offXenTheErrorSaysSo() throws {
        guard !FileManager.default.fileExists(atPath: "/dev/xen/privcmd") else {
            // On a Xen control domain the backend opens; the end-to-end harness covers that.
            _ = try LibxlBackend()
            return
        }
        do {
            _ = try LibxlBackend()
            Issue.record("libxl opened without Xen")
        } catch {
            #expect("\(error)".contains("/dev/xen/privcmd"))
            #expect("\(error)".contains("--backend plan"))
        }
    }
}

extension DomainSpec {
    func with(domid: UInt32) -> DomainSpec {
        var copy = self
        copy.domid = domid
        return copy
    }
}
