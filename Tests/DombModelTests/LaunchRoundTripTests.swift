//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombFDT
import DombTestSupport
import Foundation
import Testing

let examplePath = Repository.root + "/examples/system.dts"

func compile(_ path: String) throws -> [UInt8] {
    try Tools.run("dtc", ["-q", "-I", "dts", "-O", "dtb", "-o", "-", path]).stdout
}

@Suite struct LaunchRoundTripTests {
    @Test func exampleChecksCleanAndHasTheRequiredShape() throws {
        let document = try LaunchFile.load(examplePath)
        #expect(document.spec.validate().isEmpty, "\(document.spec.validate())")
        let spec = document.spec
        #expect(spec.domains.count >= 5)
        #expect(spec.domains.contains { $0.capabilities.contains(.xenstore) })
        #expect(spec.domains.contains { $0.type == .hvm })
        #expect(spec.domains.contains { $0.type == .pv })
        #expect(spec.domains.contains { $0.type == .pvh && $0.devices.contains { $0.kind == .vbd } })
        let vifBackends = spec.domains.flatMap(\.devices).filter { $0.kind == .vif }.map(\.backend)
        #expect(vifBackends.count >= 3 && vifBackends.allSatisfy { $0 == "netback" })
        #expect(!spec.cpupools.isEmpty && spec.domain(named: "netback")?.cpupool == spec.cpupools[0].name)
    }

    /// The complete example in docs/binding.md compiles and checks clean.
    @Test func bindingDocumentExampleIsValid() throws {
        let doc = try String(contentsOfFile: Repository.root + "/docs/binding.md", encoding: .utf8)
        let start = try #require(doc.range(of: "```dts\n"))
        let end = try #require(doc.range(of: "```", range: start.upperBound..<doc.endIndex))
        let temp = try TemporaryDirectory()
        let path = try temp.write("doc.dts", String(doc[start.upperBound..<end.lowerBound]))
        let spec = try LaunchFile.load(path).spec
        #expect(spec.domains.map(\.name) == ["xenstore", "netback", "web"])
        #expect(spec.validate().isEmpty, "\(spec.validate())")
    }

    /// dts → model → dtb → `dtc -I dtb -O dts` → model is equal.
    @Test func dtsToDtbToDtcAndBackIsEqual() throws {
        let temp = try TemporaryDirectory()
        let first = try LaunchDecoder.decode(dtb: compile(examplePath)).spec
        let dtb = try encodeDTB(first)
        let dtbPath = try temp.write("launch.dtb", dtb)
        let dts = try Tools.run("dtc", ["-q", "-I", "dtb", "-O", "dts", dtbPath]).stdoutText
        let dtsPath = try temp.write("again.dts", dts)
        let second = try LaunchDecoder.decode(dtb: compile(dtsPath)).spec
        #expect(second == first)
        // Our own DTS output compiles back to the same model too.
        let ownPath = try temp.write("own.dts", try encodeDTS(first))
        #expect(try LaunchDecoder.decode(dtb: compile(ownPath)).spec == first)
    }

    @Test func emissionIsDeterministic() throws {
        let spec = try LaunchFile.load(examplePath).spec
        let a = try encodeDTB(spec)
        let b = try encodeDTB(spec)
        #expect(a == b)
        let c = try encodeDTB(LaunchDecoder.decode(dtb: a).spec)
        #expect(a == c)
        #expect(try encodeDTS(spec) == encodeDTS(spec))
    }

    @Test func fdtgetReadsTheEmittedProperties() throws {
        let temp = try TemporaryDirectory()
        let spec = try LaunchFile.load(examplePath).spec
        let path = try temp.write("launch.dtb", try encodeDTB(spec))
        func get(_ args: [String]) throws -> String {
            try Tools.run("fdtget", args).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try get(["-t", "s", path, "/chosen/hypervisor", "compatible"]) == "hypervisor,xen xen,x86")
        #expect(try get([path, "/chosen/hypervisor/web", "domid"]) == "10")
        #expect(try get([path, "/chosen/hypervisor/web", "mode"]) == "5")
        #expect(try get([path, "/chosen/hypervisor/desktop", "mode"]) == "6")
        #expect(try get([path, "/chosen/hypervisor/xenstore", "functions"]) == String(1 << 30))
        #expect(try get(["-t", "x", path, "/chosen/hypervisor/web", "memory"]) == "0 80000")
        #expect(try get(["-t", "s", path, "/chosen/hypervisor/web/kernel", "domb,path"]) == "images/vmlinuz-6.1.0-amd64")
        #expect(
            try get(["-t", "s", path, "/chosen/hypervisor/web/kernel", "bootargs"]) == "console=hvc0 root=/dev/xvda1 ro")
        #expect(try get(["-t", "s", path, "/chosen/hypervisor/web/vif-0", "mac"]) == "00:16:3e:00:00:0a")
        #expect(try get(["-t", "s", path, "/chosen/net", "cpupool-sched"]) == "credit2")
        // backend-domain is netback's phandle.
        let phandle = try get([path, "/chosen/hypervisor/netback", "phandle"])
        #expect(try get([path, "/chosen/hypervisor/web/vif-0", "backend-domain"]) == phandle)
        #expect(try get([path, "/cpus/cpu@3", "reg"]) == "3")
    }

    @Test func eventChannelsAndSharedMemoryRoundTrip() throws {
        var spec = try LaunchFile.load(examplePath).spec
        // Listed with the later domain first: the canonical form puts the earlier first.
        spec.eventChannels = [
            EventChannelSpec(local: .init(domain: "batch", port: 10), remote: .init(domain: "storage", port: 11)),
            EventChannelSpec(local: .init(domain: "web", port: 12), remote: .init(domain: "web", port: 13)),
        ]
        spec.sharedMemory = [
            SharedMemorySpec(id: "ring", domain: "batch", hostAddress: 0x5000_0000, guestAddress: 0x8000_0000, size: 0x10000, role: .borrower),
            SharedMemorySpec(id: "ring", domain: "storage", hostAddress: 0x5000_0000, guestAddress: 0x8000_0000, size: 0x10000, role: .owner),
        ]
        #expect(spec.validate().isEmpty, "\(spec.validate())")
        let temp = try TemporaryDirectory()
        let dtbPath = try temp.write("l.dtb", try encodeDTB(spec))
        let dts = try Tools.run("dtc", ["-q", "-I", "dtb", "-O", "dts", dtbPath]).stdoutText
        let back = try LaunchDecoder.decode(dtb: compile(try temp.write("l.dts", dts))).spec
        #expect(back == LaunchEncoder.canonicalized(spec))
        #expect(back.eventChannels[0].local.domain == "storage")
        #expect(back.sharedMemory.map(\.domain) == ["storage", "batch"])
    }

    /// The vCPU affinities xl.cfg can give (docs/binding.md): a CPU list, every host CPU but
    /// some, one CPULIST per vCPU, hard and soft; and the driver-domain flag. Through dtc
    /// and back, and through the JSON model form.
    @Test func affinitiesAndDriverDomainRoundTrip() throws {
        var spec = try LaunchFile.load(examplePath).spec
        let forms: [(VCPUAffinity?, VCPUAffinity?)] = [
            (.allVCPUs(.allBut([7])), .allVCPUs(.cpus([2, 3]))),
            (.allVCPUs(.allBut([])), nil),
            (.perVCPU([.cpus([2]), .allBut([5, 6])]), .perVCPU([.allBut([])])),
        ]
        for (index, (hard, soft)) in forms.enumerated() {
            spec.domains[index].cpuAffinity = hard
            spec.domains[index].softCPUAffinity = soft
            spec.domains[index].maxVcpus = max(spec.domains[index].vcpus, 2)
            if index == 0 { spec.domains[index].isDriverDomain = true }
        }
        #expect(spec.validate().isEmpty, "\(spec.validate())")
        let temp = try TemporaryDirectory()
        let dtbPath = try temp.write("l.dtb", try encodeDTB(spec))
        let dts = try Tools.run("dtc", ["-q", "-I", "dtb", "-O", "dts", dtbPath]).stdoutText
        #expect(dts.contains("domb,cpu-affinity-except = <0x07>;"))
        // dtc prints this string list as one string with an embedded NUL.
        #expect(dts.contains("domb,vcpu-affinity = \"2\\0all,^5-6\";"))
        #expect(dts.contains("domb,driver-domain;"))
        let back = try LaunchDecoder.decode(dtb: compile(try temp.write("l.dts", dts))).spec
        #expect(back == LaunchEncoder.canonicalized(spec))
        let json = try JSONEncoder().encode(spec)
        #expect(String(decoding: json, as: UTF8.self).contains("\"cpuAffinity\":\"all,^7\""))
        #expect(try JSONDecoder().decode(LaunchSpec.self, from: json) == spec)
    }

    /// CPULISTs with NUMA node terms keep xl's text, in order, through the device tree
    /// (`-cpulist` for every vCPU, the per-vCPU string list) and the JSON model form.
    @Test func nodeTermsRoundTrip() throws {
        var spec = try LaunchFile.load(examplePath).spec
        spec.domains[0].cpuAffinity = .allVCPUs(try XLCPUList.parse("nodes:0,^3"))
        spec.domains[0].softCPUAffinity = .allVCPUs(try XLCPUList.parse("all,^node:1"))
        spec.domains[1].maxVcpus = max(spec.domains[1].vcpus, 2)
        spec.domains[1].cpuAffinity = .perVCPU([try XLCPUList.parse("^3,nodes:0-1"), try XLCPUList.parse("nodes:1")])
        #expect(spec.validate().isEmpty, "\(spec.validate())")
        let temp = try TemporaryDirectory()
        let dts = try Tools.run("dtc", ["-q", "-I", "dtb", "-O", "dts", try temp.write("l.dtb", try encodeDTB(spec))]).stdoutText
        #expect(dts.contains("domb,cpu-affinity-cpulist = \"nodes:0,^3\";"))
        #expect(dts.contains("domb,cpu-soft-affinity-cpulist = \"all,^nodes:1\";"))
        #expect(dts.contains("domb,vcpu-affinity = \"^3,nodes:0-1\\0nodes:1\";"))
        let back = try LaunchDecoder.decode(dtb: compile(try temp.write("l.dts", dts))).spec
        #expect(back == LaunchEncoder.canonicalized(spec))
        #expect(back.domains[0].cpuAffinity?.cpuLists == ["nodes:0,^3"])
        let json = try JSONEncoder().encode(spec)
        #expect(String(decoding: json, as: UTF8.self).contains("\"cpuAffinity\":\"nodes:0,^3\""))
        #expect(try JSONDecoder().decode(LaunchSpec.self, from: json) == spec)
        // A node term in the plain cell forms has no spelling: the -cpulist string is one of
        // the four affinity forms, and a malformed one names its property.
        let bad = dts.replacingOccurrences(of: "\"nodes:0,^3\"", with: "\"nodes:0,^all\"")
        #expect { try LaunchDecoder.decode(dtb: compile(try temp.write("bad.dts", bad))) } throws: {
            "\($0)".contains("domb,cpu-affinity-cpulist") && "\($0)".contains("all")
        }
    }

    /// The other binding spellings decode to the same model as the canonical form.
    @Test func alternativeSpellingsDecodeToTheSameModel() throws {
        let temp = try TemporaryDirectory()
        func decode(_ body: String) throws -> DomainSpec {
            let path = try temp.write("s.dts", """
                /dts-v1/;
                / { chosen { hypervisor { compatible = "hypervisor,xen";
                    dom { compatible = "xen,domain"; \(body)
                        k { compatible = "multiboot,kernel", "multiboot,module"; domb,path = "k"; module-index = <3>; };
                    };
                }; }; };
                """)
            let spec = try LaunchDecoder.decode(dtb: compile(path)).spec
            return try #require(spec.domains.first)
        }
        let canonical = try decode("domid = <5>; mode = <5>; permissions = <3>; functions = <0x40000004>; memory = <0 0x20000>;")
        let revision = try decode("domid = <5>; mode = <5>; role = <0xe>; capability = <1>; memory = \"128M\";")
        let series = try decode("domid = <5>; mode = <0xd>; capabilities = <7>; functions = <4>; memory = <0 0x20000>;")
        #expect(canonical.capabilities == [.control, .hardware, .xenstore, .console])
        #expect(revision == canonical)
        #expect(series == canonical)
        let minmax = try decode("domid = <5>; mode = <5>; memory = \"128M\", \"min:64M\", \"max:1G\";")
        #expect(minmax.minMemoryKiB == 65536 && minmax.maxMemoryKiB == 1 << 20 && minmax.memoryKiB == 131072)
        let series2 = try decode("domid = <5>; mode = <5>; memory = <0 0x20000>; mem-min = <0 0x10000>; mem-max = <0 0x100000>;")
        #expect(series2 == minmax)
    }

    @Test func dom0lessChosenIsAccepted() throws {
        let temp = try TemporaryDirectory()
        let path = try temp.write("d.dts", """
            /dts-v1/;
            / { chosen {
                pool: p1 { compatible = "xen,cpupool"; cpupool-cpus = <&c1>; cpupool-sched = "null"; };
                domU1 { compatible = "xen,domain"; #address-cells = <1>; #size-cells = <1>; memory = <0 0x20000>; cpus = <2>;
                    mode = <4>; domain-cpupool = <&pool>; xen,enhanced;
                    module@0 { compatible = "multiboot,kernel", "multiboot,module"; reg = <0x1000 0x100>; domb,path = "Image"; bootargs = "console=ttyAMA0"; };
                    shm@0 { compatible = "xen,domain-shared-memory-v1"; xen,shm-id = "s"; xen,shared-mem = <0x1000 0x2000>; };
                };
            };
            cpus { #address-cells = <1>; #size-cells = <0>; c1: cpu@1 { device_type = "cpu"; reg = <1>; }; };
            };
            """)
        let document = try LaunchDecoder.decode(dtb: compile(path))
        let domain = try #require(document.spec.domains.first)
        #expect(domain.enhanced == .enabled && domain.cpupool == "p1" && domain.vcpus == 2)
        #expect(document.spec.cpupools == [CPUPoolSpec(name: "p1", cpus: [1], scheduler: "null")])
        #expect(document.spec.sharedMemory.first?.hostAddress == nil && document.spec.sharedMemory.first?.size == 0x2000)
    }
}

@Suite struct MalformedDTBTests {
    /// No strict prefix of a valid DTB parses, and none crashes.
    @Test func dripFeedTruncationIsRefused() throws {
        let dtb = try encodeDTB(try LaunchFile.load(examplePath).spec)
        for length in 0..<dtb.count {
            #expect(throws: (any Error).self) { try LaunchDecoder.decode(dtb: Array(dtb[0..<length])) }
        }
        #expect(try LaunchDecoder.decode(dtb: dtb).spec.domains.count == 6)
        #expect(throws: (any Error).self) { try LaunchDecoder.decode(dtb: dtb + [0]) }
    }

    /// Corrupted and random blobs are refused or decoded, never a trap.
    @Test func corruptionNeverCrashes() throws {
        let dtb = try encodeDTB(try LaunchFile.load(examplePath).spec)
        var generator = SystemRandomNumberGenerator()
        var refused = 0
        for round in 0..<3000 {
            var mutated = dtb
            for _ in 0..<(1 + round % 4) {
                let at = Int.random(in: 0..<mutated.count, using: &generator)
                mutated[at] = UInt8.random(in: 0...255, using: &generator)
            }
            if (try? LaunchDecoder.decode(dtb: mutated)) == nil { refused += 1 }
            LaunchFuzz.dtb(mutated)
        }
        #expect(refused > 0)
        for size in [0, 1, 39, 40, 64, 4096] {
            let garbage = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(throws: (any Error).self) { try LaunchDecoder.decode(dtb: garbage) }
        }
        // A valid FDT header with a lying totalsize.
        var lying = dtb
        lying[4] = 0x7F
        #expect(throws: (any Error).self) { try LaunchDecoder.decode(dtb: lying) }
    }
}
