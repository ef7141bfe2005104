//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFDT
import DombLaunch
import DombModel
import DombTestSupport
import Foundation
import Testing

/// Trees written for upstream Xen (Fixtures/upstream): what domb reads from them is checked
/// against what `fdtget` reads from the same compiled tree (the independent oracle for what
/// the tree holds), and the model round-trips through domb's canonical form.
@Suite struct UpstreamTreeTests {
    /// The fixtures that read (the others are refused, see `refusedExamplesSayWhy`).
    static let readable = [
        "dom0less-4.17", "dom0less-vcpu-uniform", "dom0less-vcpu-master", "dom0less-passthrough", "dom0less-static-mem", "dom0less-legacy",
        "cpupools-example1", "cpupools-example2", "x86-series",
    ]

    /// A fixture compiled by dtc, read with its --module options.
    struct Read {
        var dtb: String
        var document: LaunchDocument
        var standIns: String
    }

    static func read(_ name: String, in temp: TemporaryDirectory) throws -> Read {
        let fixture = "\(UpstreamFixtures.directory)/\(name).dts"
        let standIns = try UpstreamFixtures.standIns(in: temp)
        let dtb = try temp.write("\(name).dtb", compile(fixture))
        let options = try UpstreamFixtures.options(for: fixture, standIns: standIns)
        return Read(dtb: dtb, document: try LaunchFile.load(fixture, options: options), standIns: standIns)
    }

    static func fdtget(_ arguments: [String]) throws -> String {
        try Tools.run("fdtget", arguments).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Cells as fdtget prints them with `-t u` (decimal, space-separated).
    static func cells(_ dtb: String, _ node: String, _ property: String) throws -> [UInt64] {
        try fdtget(["-t", "u", dtb, node, property]).split(separator: " ").map { try #require(UInt64($0)) }
    }

    static func number(_ cells: ArraySlice<UInt64>) -> UInt64 { cells.reduce(0) { $0 << 32 | $1 } }

    /// The domain nodes of a compiled tree, by fdtget: children of /chosen/hypervisor, or of
    /// /chosen, whose compatible is xen,domain.
    static func domainNodes(_ dtb: String) throws -> [String] {
        let chosen = try fdtget(["-l", dtb, "/chosen"]).split(separator: "\n").map(String.init)
        let base = chosen.contains("hypervisor") ? "/chosen/hypervisor" : "/chosen"
        let children = base == "/chosen" ? chosen : try fdtget(["-l", dtb, base]).split(separator: "\n").map(String.init)
        return children.map { "\(base)/\($0)" }.filter {
            (try? fdtget(["-t", "s", dtb, $0, "compatible"]))?.split(separator: " ").contains("xen,domain") == true
        }
    }

    @Test(arguments: readable)
    func whatDombReadsIsWhatFdtgetReads(_ name: String) throws {
        let temp = try TemporaryDirectory()
        let read = try Self.read(name, in: temp)
        let spec = read.document.spec
        let dtb = read.dtb
        let domainNodes = try Self.domainNodes(dtb)
        #expect(spec.domains.map(\.name) == domainNodes.map { String($0.split(separator: "/").last ?? "") })
        for (domain, node) in zip(spec.domains, domainNodes) {
            // memory: u64 KiB in two cells.
            #expect(domain.memoryKiB == Self.number(try Self.cells(dtb, node, "memory")[...]), "\(name) \(node)")
            #expect(domain.vcpus == UInt32(try Self.fdtget([dtb, node, "cpus"])), "\(name) \(node)")
            let properties = try Self.fdtget(["-p", dtb, node]).split(separator: "\n").map(String.init)
            // Every Arm-only or uncarried property present is a note naming it; no other property is.
            let ignorable: Set<String> = [
                "vpl011", "nr_spis", "sve", "trap-unmapped-accesses", "xen,sci_type", "v8r_el1_msa", "llc-colors",
                "passthrough", "xen,static-mem", "direct-map", "max_grant_version", "max_grant_frames", "max_maptrack_frames",
            ]
            let noted = Set(read.document.notes.filter { $0.kind == .ignoredKey && $0.message.hasPrefix("in \(node):") }.compactMap(\.key))
            #expect(noted == Set(properties).intersection(ignorable), "\(name) \(node): \(read.document.notes)")
            // xen,enhanced: absent in a dom0less domain means PV interfaces off.
            if !properties.contains("xen,enhanced") {
                #expect(domain.enhanced == (node.hasPrefix("/chosen/hypervisor/") ? nil : .disabled), "\(name) \(node)")
            } else if let text = try? Self.fdtget(["-t", "s", dtb, node, "xen,enhanced"]), !text.isEmpty {
                #expect(domain.enhanced?.rawValue == text, "\(name) \(node)")
            }
            // Modules: kind from the compatible, bootargs as fdtget reads them.
            for child in try Self.fdtget(["-l", dtb, node]).split(separator: "\n") {
                let path = "\(node)/\(child)"
                let compatible = try Self.fdtget(["-t", "s", dtb, path, "compatible"]).split(separator: " ").map(String.init)
                let kinds: [String: ModuleKind] = [
                    "multiboot,kernel": .kernel, "xen,linux-zimage": .kernel, "multiboot,ramdisk": .ramdisk,
                    "xen,linux-initrd": .ramdisk, "multiboot,device-tree": .deviceTree,
                ]
                guard let kind = compatible.lazy.compactMap({ kinds[$0] }).first else { continue }
                let module = try #require(domain.module(kind), "\(name) \(path)")
                let bootargs = try? Self.fdtget(["-t", "s", dtb, path, "bootargs"])
                #expect(module.bootargs == bootargs, "\(name) \(path)")
            }
        }
        // Cpupools: each CPU's reg in its parent's #address-cells, by phandle.
        for pool in spec.cpupools {
            let node = "/chosen/\(pool.name)"
            let handles = try Self.cells(dtb, node, "cpupool-cpus")
            let cpuNodes = try Self.fdtget(["-l", dtb, "/cpus"]).split(separator: "\n").map { "/cpus/\($0)" }
            let addressCells = Int(try Self.fdtget([dtb, "/cpus", "#address-cells"])) ?? 0
            var numbers: [UInt32] = []
            for handle in handles {
                let cpu = try #require(try cpuNodes.first { UInt64(try Self.fdtget([dtb, $0, "phandle"])) == handle })
                let reg = try Self.cells(dtb, cpu, "reg")
                #expect(reg.count == addressCells)
                numbers.append(UInt32(Self.number(reg[...])))
            }
            #expect(pool.cpus == numbers, "\(name) \(pool.name)")
            let scheduler = try? Self.fdtget(["-t", "s", dtb, node, "cpupool-sched"])
            #expect(pool.scheduler == scheduler)
        }
        // It passes the gate with its images checked (stand-ins of the right kinds).
        let launch = try read.document.validated(images: ModuleImageChecker(baseDirectory: read.document.baseDirectory), file: name)
        #expect(launch.domains.count == domainNodes.count)
    }

    /// upstream tree → model → canonical DTB → model is the same model; and fdtget reads the
    /// same values from the canonical tree as from the upstream one.
    @Test(arguments: readable)
    func roundTripsThroughTheCanonicalForm(_ name: String) throws {
        let temp = try TemporaryDirectory()
        let read = try Self.read(name, in: temp)
        let launch = try read.document.spec.validated()
        let canonical = try temp.write("canonical.dtb", LaunchEncoder.dtb(launch))
        // The canonical form needs nothing else: module paths and modes are in it.
        let again = try LaunchDecoder.decode(dtb: Array(try Data(contentsOf: URL(fileURLWithPath: canonical))))
        #expect(again.spec == LaunchEncoder.canonicalized(read.document.spec))
        for (domain, node) in zip(read.document.spec.domains, try Self.domainNodes(read.dtb)) {
            let target = "/chosen/hypervisor/\(domain.name)"
            #expect(try Self.cells(canonical, target, "memory") == Self.cells(read.dtb, node, "memory"))
            #expect(try Self.fdtget([canonical, target, "cpus"]) == Self.fdtget([read.dtb, node, "cpus"]))
            let mode = UInt32(try Self.fdtget([canonical, target, "mode"])) ?? 99
            #expect(mode & 3 == (domain.type == .pv ? 1 : domain.type == .hvm ? 2 : 0))
        }
        for pool in read.document.spec.cpupools {
            let handles = try Self.cells(canonical, "/chosen/\(pool.name)", "cpupool-cpus")
            #expect(handles.count == pool.cpus.count)
        }
        // The DTS form compiles with dtc to the same model.
        let dts = try temp.write("canonical.dts", LaunchEncoder.dts(launch))
        #expect(try LaunchDecoder.decode(dtb: compile(dts)).spec == again.spec)
    }

    /// The fuzz entry point decodes upstream trees through to the canonical round trip (its
    /// made-up module files stand in for --module), and the seeds are the fixtures compiled.
    @Test func fuzzEntryReadsTheUpstreamSeeds() throws {
        let seeds = Repository.root + "/FuzzTesting/Seeds/FuzzLaunchDTB"
        for name in Self.readable + ["dom0less-static-evtchn"] {
            let fixture = try compile("\(UpstreamFixtures.directory)/\(name).dts")
            let seed = Array(try Data(contentsOf: URL(fileURLWithPath: "\(seeds)/upstream-\(name).dtb")))
            #expect(seed == fixture, "FuzzTesting/make-seeds.sh is out of date for \(name)")
            #expect(LaunchFuzz.dtb(seed) == Self.readable.contains(name), "\(name)")
        }
    }

    @Test func dom0lessExampleModel() throws {
        let temp = try TemporaryDirectory()
        let read = try Self.read("dom0less-4.17", in: temp)
        let spec = read.document.spec
        #expect(spec.domains.map(\.name) == ["domU1", "domU2"])
        for domain in spec.domains {
            // No mode: the stand-in kernel has a PHYS32_ENTRY note, so PVH; 64-bit ELF.
            #expect(domain.type == .pvh && domain.is64Bit)
            #expect(domain.enhanced == .disabled)
            #expect(domain.domid == nil)
            #expect(domain.modules.map(\.kind) == [.kernel, .ramdisk])
            #expect(domain.modules.allSatisfy { $0.path.hasSuffix("/stand-ins/kernel") || $0.path.hasSuffix("/stand-ins/ramdisk") })
        }
        #expect(spec.domains[0].memoryKiB == 131072 && spec.domains[0].vcpus == 2)
        #expect(spec.domains[0].modules[0].bootargs == "console=ttyAMA0 init=/bin/sh")
        let vpl011 = read.document.notes.filter { $0.key == "vpl011" }
        #expect(vpl011.count == 1 && vpl011[0].kind == .ignoredKey && vpl011[0].message.contains("/chosen/domU1"))
        #expect(vpl011[0].message.contains("not applicable to an x86 launch"))
    }

    @Test func twoCellCPURegIsXensCPUNumber() throws {
        let temp = try TemporaryDirectory()
        let one = try Self.read("cpupools-example1", in: temp).document
        #expect(one.spec.cpupools == [
            CPUPoolSpec(name: "cpupool_a", cpus: [256, 257, 258, 259]),
            CPUPoolSpec(name: "cpupool_b", cpus: [0, 1], scheduler: "credit2"),
        ])
        #expect(one.spec.domains.map(\.cpupool) == ["cpupool_a", "cpupool_b"])
        #expect(one.notes.contains { $0.kind == .remark && $0.key == "/chosen/cpupool_a" && $0.message.contains("not as an MPIDR") })
        let two = try Self.read("cpupools-example2", in: temp).document
        #expect(two.spec.cpupools.map(\.cpus) == [[256, 257], [0, 1]])
        #expect(two.spec.cpupools[1].scheduler == "null")
    }

    /// Two-cell CPU reg in domb's own layout, and a CPU number beyond the limit.
    @Test func cpuRegCells() throws {
        let temp = try TemporaryDirectory()
        func tree(_ cpus: String) throws -> [UInt8] {
            try compile(try temp.write("c.dts", """
                /dts-v1/;
                / { cpus { \(cpus) };
                    chosen { p { compatible = "xen,cpupool"; cpupool-cpus = <&c>; };
                        hypervisor { compatible = "hypervisor,xen"; d { compatible = "xen,domain"; mode = <4>; memory = <0 0x10000>;
                            kernel { compatible = "multiboot,kernel"; domb,path = "k"; }; }; }; }; };
                """))
        }
        let two = try LaunchDecoder.decode(dtb: tree("#address-cells = <2>; #size-cells = <0>; c: cpu@300000002 { reg = <0x0 0x2>; };"))
        #expect(two.spec.cpupools.first?.cpus == [2])
        // No #address-cells anywhere: Xen's default is 2.
        let inherited = try LaunchDecoder.decode(dtb: tree("c: cpu@7 { reg = <0x0 0x7>; };"))
        #expect(inherited.spec.cpupools.first?.cpus == [7])
        // One address cell and no #size-cells (1 by default): <0x0 0x7> is address 0, size 7, as Xen reads it.
        #expect(try LaunchDecoder.decode(dtb: tree("#address-cells = <1>; c: cpu@7 { reg = <0x0 0x7>; };")).spec.cpupools.first?.cpus == [0])
        do {
            _ = try LaunchDecoder.decode(dtb: tree("#address-cells = <1>; #size-cells = <0>; c: cpu@7 { reg = <0x0 0x7>; };"))
            Issue.record("a two-cell reg was read in one address cell and no size cells")
        } catch {
            #expect("\(error)".contains("node /cpus/cpu@7: reg <0x0 0x7> must be one CPU number in 1 address cell (#address-cells of /cpus)"), "\(error)")
        }
        do {
            _ = try LaunchDecoder.decode(dtb: tree("#address-cells = <2>; #size-cells = <0>; c: cpu@10000 { reg = <0x1 0x0>; };"))
            Issue.record("an MPIDR with Aff3 set was read as a CPU number")
        } catch {
            #expect("\(error)".contains("node /cpus/cpu@10000: reg <0x1 0x0> is read as Xen's CPU number 4294967296, above 4095"), "\(error)")
        }
    }

    /// The reg the message quotes is the one fdtget reads, split by the domain's cells.
    @Test func aModuleLocatedInMemoryNeedsItsFile() throws {
        let temp = try TemporaryDirectory()
        let fixture = "\(UpstreamFixtures.directory)/dom0less-4.17.dts"
        let dtb = try temp.write("t.dtb", compile(fixture))
        let node = "/chosen/domU1/module@0x4a000000"
        let reg = try Self.cells(dtb, node, "reg")
        let addressCells = Int(try Self.fdtget([dtb, "/chosen/domU1", "#address-cells"])) ?? 0
        let address = String(Self.number(reg[0..<addressCells]), radix: 16)
        let size = String(Self.number(reg[addressCells...]), radix: 16)
        let result = try DombBinary.run(["config", "check", fixture])
        #expect(result.status != 0)
        #expect(
            result.stderrText.contains(
                "node \(node): the kernel is in memory at reg <0x0 0x4a000000 0xffffff> (address 0x\(address), size 0x\(size)): name its file with --module domU1/kernel=PATH"),
            "\(result.stderrText)")
        // A --module that names no module node is refused, listing the ones there are.
        let standIns = try UpstreamFixtures.standIns(in: temp)
        let arguments = try UpstreamFixtures.arguments(for: fixture, standIns: standIns)
        let stray = try DombBinary.run(["config", "check", fixture, "--module", "domU3/kernel=x"] + arguments)
        #expect(stray.status != 0)
        #expect(stray.stderrText.contains("--module domU3/kernel: no module node of this tree is domU3/kernel (its module nodes are /chosen/domU1/module@0x4a000000"), "\(stray.stderrText)")
        // Two options for one node, and one option for two nodes.
        let twice = try DombBinary.run(["config", "check", fixture, "--module", "domU1/module@0x4a000000=y"] + arguments)
        #expect(twice.stderrText.contains("node /chosen/domU1/module@0x4a000000: named by both"), "\(twice.stderrText)")
        let malformed = try DombBinary.run(["config", "check", fixture, "--module", "domU1/kernel"])
        #expect(malformed.status != 0 && malformed.stderrText.contains("expected NODE=PATH"))
    }

    @Test func refusedExamplesSayWhy() throws {
        let temp = try TemporaryDirectory()
        let standIns = try UpstreamFixtures.standIns(in: temp)
        for (name, expected) in [
            ("dom0less-static-evtchn",
             "node /chosen/domU1/evtchn@2: xen,evtchn connects to /chosen/evtchn@1, dom0's end"),
        ] {
            let fixture = "\(UpstreamFixtures.directory)/\(name).dts"
            let result = try DombBinary.run(["config", "check", fixture] + UpstreamFixtures.arguments(for: fixture, standIns: standIns))
            #expect(result.status != 0)
            #expect(result.stderrText.contains(expected), "\(name): \(result.stderrText)")
        }
    }

    @Test func vcpuNodesGiveTheDomainItsAffinity() throws {
        let temp = try TemporaryDirectory()
        let read = try Self.read("dom0less-vcpu-uniform", in: temp)
        #expect(read.document.spec.domains[0].cpuAffinity == .allVCPUs(.cpus([0, 1, 2, 3])))
        #expect(read.document.spec.domains[1].cpuAffinity == nil)
        // Different sets per vCPU are xl's per-vCPU list (cpus = ["0-3", "1,4-7"]).
        let master = try Self.read("dom0less-vcpu-master", in: temp)
        #expect(master.document.spec.domains[0].cpuAffinity == .perVCPU([.cpus([0, 1, 2, 3]), .cpus([1, 4, 5, 6, 7])]))
        #expect(master.document.spec.domains[0].cpuAffinity?.cpuLists == ["0-3", "1,4-7"])
    }

    /// FuzzLaunchDTB (docs/fuzzing.md): `cpus = <0x16000000>` with two xen,vcpu nodes made the
    /// decoder build one affinity slot per vCPU (a 2.9 GB allocation). Only the nodes' ids are
    /// walked now; the domain is refused by validation, not by running out of memory.
    @Test func aHugeVcpuCountWithVcpuNodesIsRefusedWithoutAllocatingPerVcpu() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Repository.root + "/Tests/DombCoreTests/Fixtures/fuzz/FuzzLaunchDTB-huge-vcpu-count.dtb")))
        // The fuzz entry point (made-up module files stand in for --module): read, then refused.
        #expect(!LaunchFuzz.dtb(bytes))
    }

    @Test func hardAffinityAsStrtoulReadsIt() {
        func parse(_ text: String) -> [UInt32]? { try? UpstreamBindingProbe.hardAffinity(text) }
        #expect(parse("0-3") == [0, 1, 2, 3])
        #expect(parse("1,4-7") == [1, 4, 5, 6, 7])
        #expect(parse("0x10,010") == [8, 16])
        #expect(parse("3,3,1-2") == [1, 2, 3])
        for bad in ["", "1,", "-3", "3-1", "1 ,2", "08", "0x", "+1", "1-4096", "a"] {
            #expect(parse(bad) == nil, "\(bad)")
        }
    }

    @Test func legacyModulesAndUEFIBinary() throws {
        let temp = try TemporaryDirectory()
        let fixture = "\(UpstreamFixtures.directory)/dom0less-legacy.dts"
        let document = try Self.read("dom0less-legacy", in: temp).document
        let guest = try #require(document.spec.domain(named: "guest"))
        #expect(guest.modules.map(\.kind) == [.kernel, .ramdisk])
        #expect(guest.enhanced == .enabled)
        #expect(document.notes.filter { $0.kind == .ignoredNode }.compactMap(\.key) == ["/chosen/module@0xc0000000", "/chosen/module@0xd0000000"])
        // Without --module for it, the ramdisk is the file xen,uefi-binary names, from the tree's directory.
        let standIns = try UpstreamFixtures.standIns(in: temp)
        let options = LaunchFileLoader.options(moduleFiles: [try ModuleFileArgument(parsing: "guest/kernel=\(standIns)/kernel")])
        let own = try LaunchFile.load(fixture, options: options)
        #expect(own.spec.domains[0].module(.ramdisk)?.path == "guest-initrd.cpio.gz")
    }

    @Test func x86SeriesTree() throws {
        let temp = try TemporaryDirectory()
        let document = try Self.read("x86-series", in: temp).document
        let domain = try #require(document.spec.domains.first)
        #expect(domain.type == .pv && domain.is64Bit && domain.domid == 1)
        #expect(domain.capabilities == [.control, .hardware, .xenstore])
        #expect(domain.vcpus == 2 && domain.enhanced == nil)
        #expect(document.notes.isEmpty, "\(document.notes)")
        // The series has no 64-bit bit: its `mode = <1>` is a 32-bit PV domain to domb, which
        // the image check refuses for a 64-bit kernel (the test guest's ELF64, by `file`'s word).
        let standIns = try UpstreamFixtures.standIns(in: temp)
        #expect(try Tools.run("file", ["-L", "\(standIns)/pv-kernel"]).stdoutText.contains("ELF 64-bit"))
        let fixture = "\(UpstreamFixtures.directory)/x86-series.dts"
        let series = try temp.write(
            "series.dts", try String(contentsOfFile: fixture, encoding: .utf8).replacingOccurrences(of: "mode = <5>;", with: "mode = <1>;"))
        let arguments = try UpstreamFixtures.arguments(for: fixture, standIns: standIns)
        let result = try DombBinary.run(["config", "check", "--images", series] + arguments)
        #expect(result.status != 0)
        #expect(result.stderrText.contains("pv-kernel is a 64-bit kernel, but mode lacks MODE_LONG (bit 2): a 32-bit PV domain"), "\(result.stderrText)")
        #expect(try DombBinary.run(["config", "check", "--images", fixture] + arguments).status == 0)
    }

    /// The rules that depend on the layout, and the spellings, on small trees.
    @Test func layoutRulesAndSpellings() throws {
        let temp = try TemporaryDirectory()
        let images = try GuestImages.directory()
        func decode(_ chosen: String, modules: [String] = []) throws -> LaunchDocument {
            let path = try temp.write("t.dts", "/dts-v1/;\n/ { chosen { \(chosen) }; };\n")
            return try LaunchFile.load(
                path, options: LaunchFileLoader.options(moduleFiles: try modules.map { try ModuleFileArgument(parsing: $0) }))
        }
        func message(_ body: () throws -> LaunchDocument) -> String {
            do {
                _ = try body()
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let kernel = "k { compatible = \"multiboot,kernel\", \"multiboot,module\"; module-index = <1>; };"
        // dom0less: cpus is required.
        #expect(message { try decode("d { compatible = \"xen,domain\"; memory = <0 0x10000>; \(kernel) };", modules: ["d/kernel=\(images)/pvh-kernel.elf"]) }
            .contains("node /chosen/d: cpus is required in a dom0less domain"))
        // Hyperlaunch layout: cpus defaults to 1, absent xen,enhanced is on, legacy is read.
        let hyper = try decode(
            "hypervisor { compatible = \"hypervisor,xen\"; d { compatible = \"xen,domain\"; memory = <0 0x10000>; \(kernel) }; e { compatible = \"xen,domain\"; memory = <0 0x10000>; xen,enhanced = \"legacy\"; \(kernel) }; };",
            modules: ["d/kernel=\(images)/pv-kernel.elf", "e/kernel=\(images)/pvh-kernel.elf"])
        #expect(hyper.spec.domains.map(\.vcpus) == [1, 1])
        #expect(hyper.spec.domains.map(\.enhanced) == [nil, .legacy])
        // No mode: a kernel that can only boot PV is PV.
        #expect(hyper.spec.domains.map(\.type) == [.pv, .pvh])
        // No mode, and a kernel of no x86 guest type: refused naming the file and both reasons.
        let notKernel = message {
            try decode(
                "d { compatible = \"xen,domain\"; memory = <0 0x10000>; cpus = <1>; \(kernel) };",
                modules: ["d/kernel=\(images)/ramdisk.cpio.gz"])
        }
        #expect(notKernel.contains("node /chosen/d: mode is absent, and the kernel cannot give the guest type"), "\(notKernel)")
        #expect(notKernel.contains("not pvh: this is a ramdisk, not a kernel; not pv:"), "\(notKernel)")
        // Without a kernel reader (the library default), a tree without mode is refused.
        let path = try temp.write("m.dts", "/dts-v1/;\n/ { chosen { d { compatible = \"xen,domain\"; memory = <0 0x10000>; cpus = <1>; k { compatible = \"multiboot,kernel\"; domb,path = \"k\"; }; }; }; };\n")
        #expect(throws: (any Error).self) { try LaunchDecoder.decode(dtb: compile(path)) }
        // Arm-only properties of every kind are notes, not unknown-property errors.
        let arm = try decode(
            "d { compatible = \"xen,domain\"; memory = <0 0x10000>; cpus = <1>; mode = <4>; xen,enhanced; nr_spis = <32>; sve = <128>; trap-unmapped-accesses = <0>; xen,sci_type = \"none\"; v8r_el1_msa = \"mmu\"; llc-colors = \"0-3\"; direct-map; max_grant_version = <1>; max_maptrack_frames = <1024>; \(kernel) };",
            modules: ["d/kernel=\(images)/pvh-kernel.elf"])
        #expect(Set(arm.notes.compactMap(\.key)).isSuperset(of: ["nr_spis", "sve", "trap-unmapped-accesses", "xen,sci_type", "v8r_el1_msa", "llc-colors", "direct-map", "max_grant_version", "max_maptrack_frames"]))
        // A property nobody defines is still an error.
        #expect(message { try decode("d { compatible = \"xen,domain\"; memory = <0 0x10000>; cpus = <1>; mode = <4>; colour = <1>; \(kernel) };", modules: ["d/kernel=\(images)/pvh-kernel.elf"]) }
            .contains("unknown property \"colour\""))
        // A module's reg uses the domain's cells: 1 + 1 here.
        let small = try decode(
            "d { compatible = \"xen,domain\"; #address-cells = <1>; #size-cells = <1>; memory = <0 0x10000>; cpus = <1>; mode = <4>; k { compatible = \"multiboot,kernel\", \"multiboot,module\"; reg = <0x1000 0x200>; }; };",
            modules: ["d/kernel=\(images)/pvh-kernel.elf"])
        #expect(small.spec.domains.count == 1)
        #expect(message { try decode("d { compatible = \"xen,domain\"; #address-cells = <1>; #size-cells = <1>; memory = <0 0x10000>; cpus = <1>; mode = <4>; k { compatible = \"multiboot,kernel\", \"multiboot,module\"; reg = <0 0x1000 0x200>; }; };", modules: ["d/kernel=x"]) }
            .contains("node /chosen/d/k: reg <0x0 0x1000 0x200> must be one <address size> in 1 + 1 cells"))
    }
}

/// The hard-affinity grammar, through the decoder (it is internal to DombModel): a tree
/// with one `xen,vcpu` node.
enum UpstreamBindingProbe {
    static func hardAffinity(_ text: String) throws -> [UInt32] {
        let temp = try TemporaryDirectory()
        let escaped = text.replacingOccurrences(of: "\"", with: "\\\"")
        let path = try temp.write("v.dts", """
            /dts-v1/;
            / { chosen { hypervisor { compatible = "hypervisor,xen";
                d { compatible = "xen,domain"; mode = <4>; memory = <0 0x10000>; cpus = <1>;
                    k { compatible = "multiboot,kernel"; domb,path = "k"; };
                    v { compatible = "xen,vcpu"; id = <0>; hard-affinity = "\(escaped)"; }; }; }; }; };
            """)
        let affinity = try #require(try LaunchDecoder.decode(dtb: compile(path)).spec.domains.first?.cpuAffinity)
        guard case .allVCPUs(.cpus(let cpus)) = affinity else { throw ParseError.invalid("not one CPU list: \(affinity)") }
        return cpus
    }
}
