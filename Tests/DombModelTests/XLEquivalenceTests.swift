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

@Suite struct XLEquivalenceTests {
    static let directory = Repository.root + "/examples/xl"
    static let files = ["netback.cfg", "web.cfg", "batch.cfg", "desktop.cfg"].map { "\(directory)/\($0)" }

    /// xl.cfg files import to the same model as their hand-written device-tree equivalent.
    @Test func xlFilesImportToTheHandWrittenDeviceTree() throws {
        let imported = LaunchDocument.combining(try Self.files.map { try LaunchFile.load($0) }).spec
        let handWritten = try LaunchFile.load("\(Self.directory)/equivalent.dts").spec
        #expect(imported == handWritten)
        #expect(imported.validate().isEmpty, "\(imported.validate())")
    }

    /// `domb config import-xl` writes a DTB that decodes to the same model, with module
    /// paths rebased to the output's directory.
    @Test func importXLCommandWritesTheSameSystem() throws {
        let temp = try TemporaryDirectory()
        let output = temp.file("imported.dtb")
        let result = try DombBinary.run(["config", "import-xl"] + Self.files + ["-o", output])
        #expect(result.status == 0, "\(result.stderrText)")
        // What the import takes with a remark is reported (desktop.cfg's vnc = 1 is libxl's default).
        #expect(result.stderrText.contains("remark \"vnc\": 1: libxl's default, which the launch has"))
        #expect(!result.stderrText.contains("\"driver_domain\""), "driver_domain is imported (domb,driver-domain)")
        let written = try LaunchFile.load(output).spec
        let expected = LaunchFile.rebase(
            try LaunchFile.load("\(Self.directory)/equivalent.dts").spec, from: Self.directory, to: temp.path)
        #expect(written == expected)
        #expect(written.domain(named: "netback")?.isDriverDomain == true && written.domain(named: "web")?.isDriverDomain == false)
        #expect(written.domain(named: "web")?.module(.kernel)?.path.hasSuffix("examples/xl/images/vmlinuz-6.1.0-amd64") == true)
        // --strict refuses a file with a key xl does not read (these have none).
        let strict = try DombBinary.run(["config", "import-xl", "--strict"] + Self.files + ["-o", temp.file("s.dts")])
        #expect(strict.status == 0, "\(strict.stderrText)")
        let unknown = try temp.write("unknown.cfg", "name = \"u\"\nkernel = \"/k\"\nmemory = 64\nfrobnicate = 1\n")
        let refused = try DombBinary.run(["config", "import-xl", "--strict", unknown, "-o", temp.file("u.dts")])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("unknown key \"frobnicate\": xl 4.17 does not read this key"))
        // config check --strict decides by the notes' kinds: a remark passes, a key not read fails.
        let remarkOnly = try temp.write("remark.cfg", "name = \"r\"\ntype = \"hvm\"\nmemory = 64\nvnc = 1\n")
        let passes = try DombBinary.run(["config", "check", "--strict", remarkOnly])
        #expect(passes.status == 0, "\(passes.stderrText)")
        #expect(passes.stderrText.contains("remark \"vnc\""), "\(passes.stderrText)")
        let fails = try DombBinary.run(["config", "check", "--strict", unknown])
        #expect(fails.status != 0)
        #expect(fails.stderrText.contains("unknown key \"frobnicate\""), "\(fails.stderrText)")
        #expect(fails.stderrText.contains("refused (--strict)"), "\(fails.stderrText)")
    }

    /// `driver_domain` as xl reads it (xlu_cfg_get_defbool: a number, non-zero is true).
    @Test func driverDomainFlag() throws {
        func imported(_ value: String?) throws -> Bool {
            let line = value.map { "driver_domain = \($0)\n" } ?? ""
            return try LaunchFile.importXL(Array("name = \"d\"\nkernel = \"/k\"\nmemory = 64\n\(line)".utf8)).domain.isDriverDomain
        }
        #expect(try imported("1") && imported("2") && !imported("0") && !imported(nil))
        #expect(throws: ParseError.self) { try imported("\"yes\"") }
    }

    /// The three domain files Xen ships (tools/examples/xlexample.*), in their style.
    @Test func xenExampleStyleFiles() throws {
        let pv = try LaunchFile.importXL(Array("""
            # =====================================================================
            # Example PV Linux guest configuration
            # =====================================================================
            name = "example.pvlinux"
            kernel = "/boot/vmlinuz"
            extra = "root=/dev/xvda1"
            memory = 128
            vcpus = 2
            vif = [ '' ]
            disk = [ '/dev/vg/guest-volume,raw,xvda,rw' ]
            """.utf8))
        let expected = DomainSpec(
            name: "example.pvlinux", type: .pv, memoryKiB: 128 * 1024, vcpus: 2,
            modules: [ModuleSpec(kind: .kernel, path: "/boot/vmlinuz", bootargs: "root=/dev/xvda1")],
            devices: [
                DeviceSpec(ConsoleSettings()), try DeviceSpec(kind: .vif),
                try DeviceSpec(kind: .vbd, settings: ["target": "/dev/vg/guest-volume", "format": "raw", "vdev": "xvda", "access": "rw"]),
            ])
        #expect(pv.domain == expected)
        #expect(pv.notes.isEmpty)

        let hvm = try LaunchFile.importXL(Array("""
            type = "hvm"
            name = "example.hvm"
            memory = 128
            vcpus = 2
            vif = [ '' ]
            disk = [ '/dev/vg/guest-volume,raw,xvda,rw' ]
            sdl = 0
            """.utf8))
        #expect(hvm.domain.module(.firmware)?.path == XLImport.defaultHVMLoader)
        // sdl = 0 is libxl's default for HVM: taken, with a remark (sdl = 1 is refused).
        #expect(hvm.notes.contains { $0.kind == .remark && $0.key == "sdl" })
        #expect(LaunchSpec(domains: [hvm.domain]).validate().isEmpty)
    }

    @Test func diskSpecForms() throws {
        func disk(_ spec: String) throws -> [String: String] {
            let imported = try LaunchFile.importXL(Array("name=\"g\"\nmemory=64\nkernel=\"/k\"\ndisk=['\(spec)']\n".utf8))
            let device = try #require(imported.domain.devices.last)
            return Dictionary(uniqueKeysWithValues: device.settings.namedSettings.map { ($0.name, $0.value) })
        }
        let full = ["target": "/dev/vg/guest-volume", "format": "raw", "vdev": "hda", "access": "rw", "devtype": "disk"]
        #expect(try disk("/dev/vg/guest-volume,,hda") == full)
        #expect(try disk("/dev/vg/guest-volume,raw,hda,rw") == full)
        #expect(try disk("format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume") == full)
        #expect(try disk("raw:/dev/vg/guest-volume,hda,w") == full)
        let cdrom = ["target": "/root/image.iso", "format": "raw", "vdev": "hdc", "access": "ro", "devtype": "cdrom"]
        #expect(try disk("/root/image.iso,,hdc,cdrom") == cdrom)
        #expect(try disk("/root/image.iso,,hdc,,cdrom") == cdrom)
        #expect(try disk("/root/image.iso,raw,hdc,devtype=cdrom") == cdrom)
        // xl strips the deprecated prefixes and leaves the backend type to libxl.
        #expect(try disk("phy:/dev/sdb,xvdb,r")["backendtype"] == nil)
        #expect(try disk("vdev=xvdb, target=/srv/a,b.img")["target"] == "/srv/a,b.img")
    }

    /// Every prefix of a valid file either imports or is refused; none traps. (Line-based
    /// text has valid prefixes, so this is not a strict drip-feed.)
    @Test func prefixesNeverCrash() throws {
        let bytes = try LaunchFile.readFile("\(Self.directory)/web.cfg")
        var refused = 0
        for length in 0..<bytes.count {
            if !LaunchFuzz.xlConfig(Array(bytes[0..<length])) { refused += 1 }
        }
        #expect(refused > bytes.count / 2)
        #expect(LaunchFuzz.xlConfig(bytes))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var mutated = bytes
            mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            LaunchFuzz.xlConfig(mutated)
        }
    }
}

@Suite struct LaunchValidationTests {
    func domain(_ name: String, domid: UInt32? = nil) -> DomainSpec {
        DomainSpec(name: name, domid: domid, type: .pvh, memoryKiB: 65536, modules: [ModuleSpec(kind: .kernel, path: "k")])
    }

    @Test func oneProblemPerFaultWithNamedRule() {
        var spec = LaunchSpec(domains: [domain("a", domid: 5), domain("a", domid: 5), domain("b", domid: 0x7FF0)])
        spec.domains[2].memoryKiB = 0
        let problems = spec.validate()
        #expect(problems.map(\.rule) == [.duplicateName, .duplicateDomid, .reservedDomid, .memory])
        #expect(problems[0].description == "domain \"a\": more than one domain has this name [duplicate-name]")
    }

    @Test func evtchnAndSharedMemoryRules() {
        var spec = LaunchSpec(domains: [domain("a"), domain("b")])
        spec.eventChannels = [
            EventChannelSpec(local: .init(domain: "a", port: 1), remote: .init(domain: "b", port: 1)),
            EventChannelSpec(local: .init(domain: "a", port: 1), remote: .init(domain: "c", port: 0)),
        ]
        spec.sharedMemory = [
            SharedMemorySpec(id: "this-id-is-far-too-long", domain: "a", hostAddress: nil, guestAddress: 0x1001, size: 0, role: .owner),
        ]
        let text = spec.validate().map(\.description).joined(separator: "\n")
        #expect(text.contains("port 1 of \"a\" is bound twice"))
        #expect(text.contains("endpoint domain \"c\" is not described"))
        #expect(text.contains("xen,shm-id must be 1 to 15 bytes"))
        #expect(text.contains("addresses must be 4 KiB aligned"))
    }

    struct RefuseEverything: ImageCapabilityChecking {
        func problems(domain: DomainSpec, module: ModuleSpec) -> [LaunchProblem] {
            [LaunchProblem("domain \"\(domain.name)\" module \(module.kind.rawValue)", domain: domain.name, .image, "no PHYS32_ENTRY note")]
        }
    }

    @Test func imageCheckerPlugsIn() {
        let spec = LaunchSpec(domains: [domain("a")])
        #expect(spec.validate().isEmpty)
        #expect(spec.validate(images: RefuseEverything()).map(\.rule) == [.image])
    }

    @Test func virtualDiskNumbers() {
        #expect(VirtualDisk("xvda")?.number == 51712)
        #expect(VirtualDisk("xvdb1")?.number == 51729)
        #expect(VirtualDisk("xvdq")?.number == (1 << 28 | 16 << 8))
        #expect(VirtualDisk("hda")?.number == 768)
        #expect(VirtualDisk("sdb")?.number == 2064)
        #expect(VirtualDisk("vda") == nil)
    }
}
