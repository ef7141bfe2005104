//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombTestSupport
import Foundation
import Testing

/// The topology picture (issue 19): `config show` and `bundle show` draw the system with
/// `--dot`, `--svg`, `--png`; the SVG is Graphviz's own rendering, read back node by node
/// and edge by edge; the README's picture is what `make docs` makes.
@Suite struct TopologyCLITests {
    static let demo = Repository.root + "/examples/demo/launch.dts"

    /// The `<title>`s of the SVG's node, edge and cluster groups (dot writes one `<g
    /// class="node|edge|cluster">` per element, its `<title>` the DOT id, `->` for an edge),
    /// and every `<text>`, with the XML entities dot uses decoded.
    struct SVG {
        var nodes: Set<String> = []
        var edges: [String] = []
        var clusters: Set<String> = []
        var texts: [String] = []

        init(_ text: String) {
            func decode(_ s: Substring) -> String {
                var out = String(s)
                for (entity, character) in [("&#45;", "-"), ("&gt;", ">"), ("&lt;", "<"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&")] {
                    out = out.replacingOccurrences(of: entity, with: character)
                }
                return out
            }
            let group = /<g id="[^"]*" class="(node|edge|cluster)">\s*<title>([^<]*)<\/title>/
            for match in text.matches(of: group) {
                let title = decode(match.output.2)
                switch match.output.1 {
                case "node": nodes.insert(title)
                case "edge": edges.append(title)
                default: clusters.insert(title)
                }
            }
            texts = text.matches(of: /<text[^>]*>([^<]*)<\/text>/).map { decode($0.output.1) }
        }
    }

    @Test func configShowDrawsDomainsDevicesAndPoolsThroughDot() throws {
        let result = try DombBinary.run(["config", "show", Self.demo, "--svg"])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText.hasPrefix("<?xml"), "\(result.stdoutText.prefix(200))")
        let svg = SVG(result.stdoutText)
        #expect(svg.nodes == ["xenstore", "netback", "storage", "web", "firmware", "Domain-0"], "\(svg.nodes)")
        // PV devices, frontend -> backend: the vifs to the driver domain, the vbd and the
        // consoles to dom0.
        for edge in ["storage->netback", "web->netback", "storage->Domain-0", "netback->Domain-0", "firmware->Domain-0"] {
            #expect(svg.edges.contains(edge), "\(edge) not in \(svg.edges)")
        }
        #expect(svg.edges.filter { $0 == "storage->Domain-0" }.count == 2, "vbd and console: \(svg.edges)")
        #expect(svg.clusters == ["cluster_0"], "\(svg.clusters)")
        for text in [
            "cpupool net: cpus 1, credit2", "PV 64-bit, domid 2", "64 MiB, 1 vCPU", "capabilities: xenstore", "start 1 of 5",
            "vif 0", "mac 00:16:3e:00:00:04", "bridge xenbr0", "vbd 51712", "target /dev/vg0/storage", "vdev xvda",
            "kernel: pv-kernel.elf", "ramdisk: ramdisk.cpio.gz", "firmware: hvmloader",
        ] {
            #expect(svg.texts.contains(text), "\(text) not drawn: \(svg.texts)")
        }
        // The start order is the validated one: the Xenstore domain first, backends before
        // their frontends.
        let order = ["xenstore", "netback", "storage", "web", "firmware"]
        let show = try DombBinary.run(["config", "show", Self.demo, "--dot"])
        for (index, name) in order.enumerated() {
            #expect(show.stdoutText.contains("\"\(name)\" [label=\"\(name)\\n") && show.stdoutText.contains("start \(index + 1) of 5"))
        }
        #expect(show.stdoutText.contains("\"xenstore\" [label=") && show.stdoutText.contains("peripheries=2"))

        // PNG: the PNG signature, from dot.
        let png = try DombBinary.run(["config", "show", Self.demo, "--png"])
        #expect(png.status == 0 && png.stdout.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "\(png.stderrText)")
    }

    @Test func staticEventChannelsAndSharedMemoryAreDrawn() throws {
        let work = try TemporaryDirectory(prefix: "domb-topology")
        let kernel = try GuestImages.directory() + "/pv-kernel.elf"
        let dts = try work.write(
            "pair.dts",
            """
            /dts-v1/;
            / { chosen { hypervisor {
                compatible = "hypervisor,xen", "xen,x86";
                a { compatible = "xen,domain"; domid = <1>; mode = <5>; memory = <0x0 0x8000>; cpus = <1>;
                    kernel { compatible = "module,kernel", "multiboot,module"; domb,path = "\(kernel)"; };
                    ea: evtchn-0 { compatible = "xen,evtchn-v1"; xen,evtchn = <10 &eb>; };
                    shm-0 { compatible = "xen,domain-shared-memory-v1"; xen,shm-id = "ring"; role = "owner"; xen,shared-mem = <0x0 0x40000000 0x200000>; };
                };
                b { compatible = "xen,domain"; domid = <2>; mode = <5>; memory = <0x0 0x8000>; cpus = <1>;
                    kernel { compatible = "module,kernel", "multiboot,module"; domb,path = "\(kernel)"; };
                    eb: evtchn-0 { compatible = "xen,evtchn-v1"; xen,evtchn = <11 &ea>; };
                    shm-0 { compatible = "xen,domain-shared-memory-v1"; xen,shm-id = "ring"; role = "borrower"; xen,shared-mem = <0x0 0x50000000 0x200000>; };
                };
            }; }; };
            """)
        let check = try DombBinary.run(["config", "show", dts])
        try #require(check.status == 0, "the fixture must be a valid description: \(check.stderrText)")
        let result = try DombBinary.run(["config", "show", dts, "--svg"])
        #expect(result.status == 0, "\(result.stderrText)")
        let svg = SVG(result.stdoutText)
        #expect(svg.nodes == ["a", "b", "shm:ring"], "\(svg.nodes)")
        #expect(svg.edges.sorted() == ["a->b", "a->shm:ring", "b->shm:ring"], "\(svg.edges)")
        for text in ["evtchn a:10 ↔ b:11", "shared memory ring", "size 0x200000", "owner at 0x40000000", "borrower at 0x50000000"] {
            #expect(svg.texts.contains(text), "\(text) not drawn: \(svg.texts)")
        }
    }

    /// `bundle show --dot` draws the launch in the bundle, each module with the digest
    /// OpenSSL computes of the file it came from.
    @Test func bundleShowDrawsModulesWithTheirDigests() throws {
        let images = try GuestImages.directory()
        let work = try TemporaryDirectory(prefix: "domb-topology-bundle")
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        let bundle = work.file("demo.bundle")
        let build = try DombBinary.run(["build", Self.demo, "--key", key, "-o", bundle], environment: ["SOURCE_DATE_EPOCH": "1700000000"])
        try #require(build.status == 0, "\(build.stderrText)")
        let result = try DombBinary.run(["bundle", "show", bundle, "--svg"])
        #expect(result.status == 0, "\(result.stderrText)")
        let svg = SVG(result.stdoutText)
        #expect(svg.nodes == ["xenstore", "netback", "storage", "web", "firmware", "Domain-0"], "\(svg.nodes)")
        #expect(svg.edges.contains("web->netback"), "\(svg.edges)")
        #expect(svg.texts.contains { $0.contains("UNVERIFIED") }, "\(svg.texts)")
        for (file, role) in [("pv-kernel.elf", "kernel"), ("ramdisk.cpio.gz", "ramdisk"), ("pvh-kernel.elf", "kernel")] {
            let digest = try Tools.run("openssl", ["dgst", "-sha256", "-r", "\(images)/\(file)"]).stdoutText.prefix(64)
            #expect(svg.texts.contains("\(role) sha256:\(digest)"), "\(file): \(digest) not drawn: \(svg.texts)")
        }
        let hvmloader = try Tools.run("openssl", ["dgst", "-sha256", "-r", "/usr/lib/xen-4.17/boot/hvmloader"]).stdoutText.prefix(64)
        #expect(svg.texts.contains("firmware sha256:\(hvmloader)"), "\(svg.texts)")

        // A text file is not a bundle: one line, exit 1, nothing drawn.
        let text = try work.write("notes.txt", "not a bundle\n")
        let refused = try DombBinary.run(["bundle", "show", text, "--dot"])
        #expect(refused.status == 1 && refused.stdout.isEmpty, "\(refused.stdoutText)")
        #expect(refused.stderrText.contains("not a tar archive"), "\(refused.stderrText)")
    }

    /// Without Graphviz: one line naming the Debian package, exit 2, nothing written.
    @Test func missingDotNamesThePackage() throws {
        let work = try TemporaryDirectory(prefix: "domb-topology-nodot")
        let dtb = work.file("demo.dtb")
        try #require(try DombBinary.run(["config", "export", Self.demo, "--dtb", "-o", dtb]).status == 0)
        let output = work.file("demo.svg")
        let result = try DombBinary.run(["config", "show", dtb, "--svg", "-o", output], environment: ["PATH": work.path])
        #expect(result.status == 2, "\(result.stderrText)")
        #expect(result.stderrText == "domb config show: dot is not installed — install the Debian package graphviz\n", "\(result.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: output))
        // --dot needs no Graphviz.
        let dot = try DombBinary.run(["config", "show", dtb, "--dot"], environment: ["PATH": work.path])
        #expect(dot.status == 0 && dot.stdoutText.hasPrefix("digraph launch {"), "\(dot.stderrText)")
    }

    @Test func pictureOptionsAreChecked() throws {
        for (arguments, says) in [
            (["config", "show", Self.demo, "--dot", "--svg"], "at most one of --dot, --svg, --png"),
            (["config", "show", Self.demo, "--json", "--dot"], "--json or a picture"),
            (["config", "show", Self.demo, "-o", "/tmp/x"], "-o writes a picture"),
        ] {
            let result = try DombBinary.run(arguments)
            #expect(result.status == 64, "\(arguments): \(result.stderrText)")
            #expect(result.stderrText.contains(says), "\(arguments): \(result.stderrText)")
        }
        // An output that is the input is refused (the output policy).
        let result = try DombBinary.run(["config", "show", Self.demo, "--dot", "-o", Self.demo])
        #expect(result.status == 2 && result.stderrText.contains("one of this command's inputs"), "\(result.stderrText)")
    }

    /// The README's picture is `make docs`'s output (scripts/docs.sh) for the current
    /// program and examples/demo/launch.dts, byte for byte.
    @Test func readmePictureIsCurrent() throws {
        let work = try TemporaryDirectory(prefix: "domb-docs")
        let run = try Tools.run(Repository.root + "/scripts/docs.sh", [try DombBinary.path, work.path], check: false)
        #expect(run.status == 0, "\(run.stderrText)")
        for file in ["demo-topology.dot", "demo-topology.svg"] {
            let made = try Data(contentsOf: URL(fileURLWithPath: work.file(file)))
            let committed = try Data(contentsOf: URL(fileURLWithPath: Repository.root + "/docs/" + file))
            #expect(made == committed, "docs/\(file) is not what `make docs` makes now: run `make docs` and commit it")
        }
        let readme = try String(contentsOfFile: Repository.root + "/README.md", encoding: .utf8)
        #expect(readme.contains("](docs/demo-topology.svg)"), "the README does not show the picture")
    }
}
