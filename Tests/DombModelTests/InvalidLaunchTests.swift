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

/// One broken description: an edit of the valid example, and the message it must draw.
struct InvalidCase: CustomTestStringConvertible, Sendable {
    var name: String
    var edits: [(String, String)]
    var expected: String
    var testDescription: String { name }
}

/// Edits of examples/system.dts, each breaking one rule (generated from the valid file).
let invalidDTSCases: [InvalidCase] = [
    InvalidCase(name: "duplicate domid", edits: [("domid = <12>;", "domid = <10>;")],
                expected: "domain \"batch\": domid 10 is also used by domain \"web\" [duplicate-domid]"),
    InvalidCase(name: "reserved domid", edits: [("domid = <12>;", "domid = <0x7ff2>;")],
                expected: "domid 32754 (0x7ff2) is reserved"),
    InvalidCase(name: "missing kernel", edits: [("domb,path = \"images/xenstore-stubdom.gz\";\n\t\t\t\t\tbootargs = \"--event 1 --internal-db\";", "domb,path = \"x\";"), ("compatible = \"module,kernel\", \"multiboot,module\";\n\t\t\t\t\tdomb,path = \"x\";", "compatible = \"module,ramdisk\", \"multiboot,module\";\n\t\t\t\t\tdomb,path = \"x\";")],
                expected: "a PVH domain needs a kernel module [missing-kernel]"),
    InvalidCase(name: "HVM without firmware", edits: [("compatible = \"module,firmware\", \"multiboot,module\";", "compatible = \"module,kernel\", \"multiboot,module\";")],
                expected: "domain \"desktop\": an HVM domain needs a firmware module (hvmloader) [mode-module-mismatch]"),
    InvalidCase(name: "unknown backend", edits: [("mac = \"00:16:3e:00:00:0c\";", "mac = \"00:16:3e:00:00:0c\";\n\t\t\t\t\tbackend-name = \"nonesuch\";"), ("backend-domain = <&netback>;\n\t\t\t\t\tmac = \"00:16:3e:00:00:0c\";", "mac = \"00:16:3e:00:00:0c\";")],
                expected: "domain \"batch\" vif 0: backend domain \"nonesuch\" is not described"),
    InvalidCase(name: "backend cycle", edits: [("console-0 { compatible = \"domb,console\"; };\n\t\t\t};\n\n\t\t\tstorage", "console-0 { compatible = \"domb,console\"; };\n\t\t\t\tvbd-0 { compatible = \"domb,vbd\"; backend-domain = <&storage>; target = \"/dev/sdb\"; vdev = \"xvdb\"; };\n\t\t\t};\n\n\t\t\tstorage")],
                expected: "backend dependencies form a cycle: \"netback\" → \"storage\" → \"netback\" [backend-cycle]"),
    InvalidCase(name: "backend without xenstore", edits: [("domb,cpu-affinity = <2 3>;\n\t\t\t\txen,enhanced = \"enabled\";", "domb,cpu-affinity = <2 3>;\n\t\t\t\txen,enhanced = \"no-xenstore\";")],
                expected: "backend domain \"netback\" has xen,enhanced \"no-xenstore\" and cannot reach Xenstore [backend-capability]"),
    InvalidCase(name: "backend paused", edits: [("domb,cpu-affinity = <2 3>;", "domb,cpu-affinity = <2 3>;\n\t\t\t\tdomb,paused;")],
                expected: "backend domain \"netback\" does not start on boot [backend-capability]"),
    InvalidCase(name: "backend not a driver domain", edits: [("\t\t\t\tdomb,driver-domain;\t\t/* serves vifs: xl devd runs in it */\n", "")],
                expected: "domain \"web\" vif 0: backend domain \"netback\" is not a driver domain: set domb,driver-domain (xl.cfg driver_domain=1)"),
    InvalidCase(name: "overlapping cpupools", edits: [("netpool: net {", "other { compatible = \"xen,cpupool\"; cpupool-cpus = <&cpu3>; };\n\t\tnetpool: net {")],
                expected: "cpupool \"net\": CPU 3 is also in cpupool \"other\" [cpupool-overlap]"),
    InvalidCase(name: "two xenstore domains", edits: [("mode = <5>;\t\t\t/* PV, 64-bit */\n\t\t\t\tmemory = <0x0 0x40000>;\t\t/* 256 MiB */\n\t\t\t\tcpus = <1>;", "mode = <5>;\n\t\t\t\tfunctions = <0x40000000>;\n\t\t\t\tmemory = <0x0 0x40000>;\n\t\t\t\tcpus = <1>;")],
                expected: "more than one xenstore domain: \"xenstore\", \"batch\" [single-xenstore-domain]"),
    InvalidCase(name: "static mode with control", edits: [("compatible = \"hypervisor,xen\", \"xen,x86\";", "compatible = \"hypervisor,xen\", \"xen,x86\";\n\t\t\tdomb,static-mode;"), ("functions = <0x40000000>;", "functions = <0x40000000>;\n\t\t\t\tpermissions = <1>;")],
                expected: "domain \"xenstore\": static mode forbids the control capability"),
    InvalidCase(name: "memory zero", edits: [("memory = <0x0 0x8000>;", "memory = <0x0 0x0>;")],
                expected: "memory 0 KiB is outside"),
    InvalidCase(name: "max below target", edits: [("mem-max = <0x0 0x100000>;", "mem-max = <0x0 0x1000>;")],
                expected: "maximum memory 4096 KiB is below the target 524288 KiB [memory]"),
    InvalidCase(name: "too many HVM vcpus", edits: [("mode = <6>;\t\t\t/* HVM, 64-bit */\n\t\t\t\tmemory = <0x0 0x100000>;\t/* 1 GiB */\n\t\t\t\tcpus = <2>;", "mode = <6>;\n\t\t\t\tmemory = <0x0 0x100000>;\n\t\t\t\tcpus = <200>;")],
                expected: "vcpus 200 is outside 1 to 128 for HVM [vcpus]"),
    InvalidCase(name: "zero vcpus", edits: [("cpus = <1>;\n\t\t\t\tdomb,max-vcpus", "cpus = <0>;\n\t\t\t\tdomb,max-vcpus")],
                expected: "vcpus 0 is outside 1 to 512 for PV [vcpus]"),
    InvalidCase(name: "affinity outside pool", edits: [("domb,cpu-affinity = <2 3>;", "domb,cpu-affinity = <1 2>;")],
                expected: "CPU affinity 1 lies outside cpupool \"net\" [cpu-affinity]"),
    InvalidCase(name: "bad mac", edits: [("mac = \"00:16:3e:00:00:0a\";", "mac = \"01:16:3e:00:00:0a\";")],
                expected: "domain \"web\" vif 0: mac 01:16:3e:00:00:0a is not a unicast address [device-setting]"),
    InvalidCase(name: "duplicate mac", edits: [("mac = \"00:16:3e:00:00:0c\";", "mac = \"00:16:3e:00:00:0a\";")],
                expected: "mac 00:16:3e:00:00:0a is also used by domain \"web\" vif 0 [duplicate-device]"),
    InvalidCase(name: "disk without target", edits: [("target = \"/dev/vg0/batch-root\";", "")],
                expected: "node /chosen/hypervisor/batch/vbd-0: a vbd needs target"),
    InvalidCase(name: "bad vdev", edits: [("vdev = \"hda\";", "vdev = \"floppy\";")],
                expected: "vdev \"floppy\" is not a disk name"),
    InvalidCase(name: "bad uuid length", edits: [("domain-uuid = [6c 2f 3e 1a 9b 4d 4e 0f 8a 11 52 6d 7e 90 a1 b2];", "domain-uuid = [6c 2f];")],
                expected: "domain-uuid must be 16 bytes, not 2"),
    InvalidCase(name: "PV and HVM mode bits", edits: [("mode = <6>;", "mode = <7>;")],
                expected: "mode sets both PARAVIRTUALIZED and ENABLE_DEVICE_MODEL"),
    InvalidCase(name: "unknown mode bits", edits: [("mode = <6>;", "mode = <0x46>;")],
                expected: "has unknown bits 0x40"),
    InvalidCase(name: "unknown domain property", edits: [("domb,on-crash = \"restart\";", "on-crash = \"restart\";")],
                expected: "node /chosen/hypervisor/web: unknown property \"on-crash\""),
    InvalidCase(name: "unknown device setting", edits: [("rate = \"100Mb/s\";", "speed = \"100Mb/s\";")],
                expected: "node /chosen/hypervisor/web/vif-0: unknown setting \"speed\" for a vif"),
    InvalidCase(name: "bad lifecycle action", edits: [("domb,on-crash = \"restart\";", "domb,on-crash = \"explode\";")],
                expected: "domb,on-crash \"explode\" is not one of"),
    InvalidCase(name: "module without path", edits: [("domb,path = \"images/netback-initrd.cpio.gz\";", "")],
                expected: "node /chosen/hypervisor/netback/ramdisk: the ramdisk is nowhere (no reg, module-index, xen,uefi-binary or domb,path): name its file with --module netback/ramdisk=PATH"),
    InvalidCase(name: "module index and address", edits: [("domb,path = \"images/netback-initrd.cpio.gz\";", "domb,path = \"i\"; module-index = <4>; reg = <0 0x1000 0 0x1000>;")],
                expected: "a module has either an index or an address, never both"),
    InvalidCase(name: "dangling cpupool phandle", edits: [("cpupool-cpus = <&cpu2 &cpu3>;", "cpupool-cpus = <&cpu2 0x99>;")],
                expected: "cpupool-cpus refers to phandle 153, which no node has"),
    InvalidCase(name: "unknown scheduler", edits: [("cpupool-sched = \"credit2\";", "cpupool-sched = \"fifo\";")],
                expected: "cpupool \"net\": unknown scheduler \"fifo\""),
    InvalidCase(name: "crash function", edits: [("functions = <0x40000000>;", "functions = <0x40000002>;")],
                expected: "the crash domain (FUNCTION_CRASH) is not supported"),
    InvalidCase(name: "console backend without capability", edits: [("console-0 { compatible = \"domb,console\"; };\n\t\t\t\tvif-0 {\n\t\t\t\t\tcompatible = \"domb,vif\";\n\t\t\t\t\tbackend-domain = <&netback>;\n\t\t\t\t\tmac = \"00:16:3e:00:00:0c\";", "console-0 { compatible = \"domb,console\"; backend-domain = <&storage>; };\n\t\t\t\tvif-0 {\n\t\t\t\t\tcompatible = \"domb,vif\";\n\t\t\t\t\tbackend-domain = <&netback>;\n\t\t\t\t\tmac = \"00:16:3e:00:00:0c\";")],
                expected: "console backend domain \"storage\" lacks the console capability"),
    InvalidCase(name: "no hypervisor node", edits: [("compatible = \"hypervisor,xen\", \"xen,x86\";", "compatible = \"vendor,other\";")],
                expected: "compatible must include \"hypervisor,xen\""),
    InvalidCase(name: "bad 9pfs security model", edits: [("security_model = \"none\";", "security_model = \"squash\";")],
                expected: "security_model \"squash\" is not none, passthrough, mapped, mapped-xattr, mapped-file"),
    InvalidCase(name: "dts syntax error", edits: [("cpus = <1>;\n\t\t\t\tdomb,max-vcpus", "cpus = <1>\n\t\t\t\tdomb,max-vcpus")],
                expected: "dtc failed"),
    // Generated: a node name that is valid DT but not a domain name.
    InvalidCase(name: "domain name with a unit address", edits: [("batch: batch {", "batch: web@1 {")],
                expected: "domain \"web@1\": name must be 1 to 31 characters"),
]

@Suite struct InvalidLaunchTests {
    static let example = (try? String(contentsOfFile: examplePath, encoding: .utf8)) ?? ""

    @Test func atLeastTwentyFiveCases() {
        #expect(invalidDTSCases.count + invalidXLCases.count >= 25)
    }

    @Test(arguments: invalidDTSCases)
    func invalidDescriptionIsRefused(_ testCase: InvalidCase) throws {
        var text = Self.example
        for (old, new) in testCase.edits {
            #expect(text.contains(old), "edit target missing: \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        let temp = try TemporaryDirectory()
        let path = try temp.write("broken.dts", text)
        let result = try DombBinary.run(["config", "check", path])
        #expect(result.status != 0, "accepted: \(result.stdoutText)")
        #expect(result.stderrText.contains(testCase.expected), "stderr was: \(result.stderrText)")
        // Export refuses it too, writing nothing.
        let out = temp.file("out.dtb")
        let export = try DombBinary.run(["config", "export", path, "--dtb", "-o", out])
        #expect(export.status != 0)
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test(arguments: invalidXLCases)
    func invalidXLIsRefused(_ testCase: InvalidCase) throws {
        let temp = try TemporaryDirectory()
        let path = try temp.write("guest.cfg", testCase.edits[0].1)
        let result = try DombBinary.run(["config", "check", path])
        #expect(result.status != 0, "accepted: \(result.stdoutText)")
        #expect(result.stderrText.contains(testCase.expected), "stderr was: \(result.stderrText)")
    }

    @Test func exportAndShowThroughTheCLI() throws {
        let temp = try TemporaryDirectory()
        var outputs: [[UInt8]] = []
        for name in ["a.dtb", "b.dtb"] {
            let result = try DombBinary.run(["config", "export", examplePath, "--dtb", "-o", temp.file(name)])
            #expect(result.status == 0, "\(result.stderrText)")
            outputs.append(try LaunchFile.readFile(temp.file(name)))
        }
        #expect(outputs[0] == outputs[1])
        let dts = try DombBinary.run(["config", "export", examplePath, "--dts", "-o", temp.file("c.dts")])
        #expect(dts.status == 0, "\(dts.stderrText)")
        // The exported DTS, in another directory, keeps module paths pointing at the same files.
        let reread = try LaunchFile.load(temp.file("c.dts")).spec
        let kernel = try #require(reread.domain(named: "web")?.module(.kernel)?.path)
        #expect(FileManager.default.fileExists(atPath: temp.path + "/" + kernel) == FileManager.default.fileExists(
            atPath: Repository.root + "/examples/images/vmlinuz-6.1.0-amd64"))
        #expect(kernel.hasSuffix("examples/images/vmlinuz-6.1.0-amd64"))
        let show = try DombBinary.run(["config", "show", "--json", temp.file("a.dtb")])
        #expect(show.status == 0)
        let decoded = try JSONDecoder().decode(LaunchSpec.self, from: Data(show.stdout))
        #expect(decoded == LaunchFile.rebase(reread, from: temp.path, to: temp.path))
        #expect(decoded.domains.count == 6)
        let both = try DombBinary.run(["config", "export", examplePath, "--dts", "--dtb", "-o", temp.file("x")])
        #expect(both.status != 0)
    }

    /// `--images` plugs the image inspector into validation: real test guests from images/.
    @Test func imageChecksThroughTheCLI() throws {
        _ = try GuestImages.directory()
        let temp = try TemporaryDirectory()
        for name in ["pv-kernel.elf", "pvh-kernel.elf", "ramdisk.cpio.gz"] {
            try FileManager.default.copyItem(atPath: Repository.root + "/images/out/" + name, toPath: temp.file(name))
        }
        func domain(_ name: String, _ mode: Int, _ modules: [(String, String)]) -> String {
            "\(name) { compatible = \"xen,domain\"; mode = <\(mode)>; memory = <0 0x10000>; "
                + modules.map { "\($0.0) { compatible = \"module,\($0.0)\"; domb,path = \"\($0.1)\"; };" }.joined() + " };\n"
        }
        let good = domain("pv", 5, [("kernel", "pv-kernel.elf"), ("ramdisk", "ramdisk.cpio.gz")])
            + domain("pvh", 4, [("kernel", "pvh-kernel.elf")])
        let wrapper = { (body: String) in
            "/dts-v1/;\n/ { chosen { hypervisor { compatible = \"hypervisor,xen\";\n\(body)}; }; };\n"
        }
        let goodPath = try temp.write("good.dts", wrapper(good))
        let ok = try DombBinary.run(["config", "check", "--images", goodPath])
        #expect(ok.status == 0, "\(ok.stderrText)")
        let bad = domain("wrong", 4, [("kernel", "pv-kernel.elf")])
            + domain("swapped", 5, [("kernel", "pv-kernel.elf"), ("ramdisk", "pvh-kernel.elf")])
            + domain("gone", 4, [("kernel", "missing/vmlinuz")])
        let badPath = try temp.write("bad.dts", wrapper(bad))
        #expect(try DombBinary.run(["config", "check", badPath]).status == 0)
        let refused = try DombBinary.run(["config", "check", "--images", badPath])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("domain \"wrong\" module kernel: \(temp.path)/pv-kernel.elf cannot boot as pvh: no PHYS32_ENTRY note"))
        #expect(refused.stderrText.contains("domain \"swapped\" module ramdisk: \(temp.path)/pvh-kernel.elf is not a ramdisk"))
        #expect(refused.stderrText.contains("domain \"gone\" module kernel: \(temp.path)/missing/vmlinuz"))
    }

    @Test func exampleChecksCleanThroughTheCLI() throws {
        let result = try DombBinary.run(["config", "check", examplePath])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText.contains("ok (6 domains)"))
    }

    /// dtc reads a `/incbin/` whole; an endless one is stopped by the memory cap.
    @Test func endlessIncbinIsStopped() throws {
        let temp = try TemporaryDirectory()
        let path = try temp.write("inc.dts", """
            /dts-v1/;
            / { chosen { hypervisor { compatible = "hypervisor,xen"; blob = /incbin/("/dev/zero"); }; }; };
            """)
        let result = try DombBinary.run(["config", "check", path], timeout: 120)
        #expect(result.status != 0)
        #expect(result.stderrText.contains("dtc failed"))
    }

    @Test func missingFileAndGarbageDTBAreErrors() throws {
        let temp = try TemporaryDirectory()
        let garbage = try temp.write("junk.dtb", [0xD0, 0x0D, 0xFE, 0xED] + Array(repeating: 0x41, count: 100))
        let result = try DombBinary.run(["config", "check", garbage, temp.file("absent.dts")])
        #expect(result.status != 0)
        #expect(result.stderrText.contains("junk.dtb: not a valid device tree blob"))
        #expect(result.stderrText.contains("absent.dts"))
    }
}

let xlBase = """
    name = "guest"
    kernel = "/boot/vmlinuz"
    memory = 256

    """

// Messages in xl's words: libxlutil's for the syntax and DISKSPECs, xl_parse.c's otherwise.
let invalidXLCases: [InvalidCase] = [
    InvalidCase(name: "xl: no name", edits: [("", "memory = 128\nkernel = \"/k\"\n")], expected: "name: Domain name must be specified."),
    InvalidCase(name: "xl: unterminated string", edits: [("", "name = \"guest\nmemory = 1\n")], expected: "line 1: config parsing error near `\"guest': lexical error"),
    InvalidCase(name: "xl: number given with +=", edits: [("", xlBase + "memory += 512\n")], expected: "line 4: warning: can't use += with numbers for parameter `memory'"),
    InvalidCase(name: "xl: bad type", edits: [("", xlBase + "type = \"pvm\"\n")], expected: "type: Invalid domain type pvm"),
    InvalidCase(name: "xl: bootloader", edits: [("", xlBase + "bootloader = \"pygrub\"\n")], expected: "line 4: bootloader: xl 4.17 reads this key, and domb's launch model has no place for it"),
    InvalidCase(name: "xl: unknown vif key", edits: [("", xlBase + "vif = [ 'mac=00:16:3e:00:00:01,colour=blue' ]\n")], expected: "unrecognized argument `colour=blue'"),
    InvalidCase(name: "xl: bad disk access", edits: [("", xlBase + "disk = [ '/dev/sdb,raw,xvda,rwx' ]\n")], expected: "unknown value for access: near `rwx'"),
    InvalidCase(name: "xl: unclosed list", edits: [("", xlBase + "vif = [ 'bridge=xenbr0',\n")], expected: "syntax error, unexpected $end, expecting ']'"),
    InvalidCase(name: "xl: memory not a number", edits: [("", "name = \"g\"\nkernel = \"/k\"\nmemory = \"lots\"\n")], expected: "line 3: warning: parameter `memory' is not a valid number"),
    InvalidCase(name: "xl: PV without kernel", edits: [("", "name = \"g\"\nmemory = 128\n")], expected: "kernel: Neither kernel nor bootloader specified"),
    InvalidCase(name: "xl: backend unknown", edits: [("", xlBase + "vif = [ 'backend=router' ]\n")], expected: "backend domain \"router\" is not described"),
    InvalidCase(name: "xl: bad cpus", edits: [("", xlBase + "vcpus = 1\ncpus = \"3-1\"\n")], expected: "cpus: \"3-1\": Invalid pcpu range: 3-1"),
]
