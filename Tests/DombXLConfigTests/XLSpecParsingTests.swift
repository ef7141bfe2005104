//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import DombXLUtil
import Foundation
import Testing

/// The parts of xl.cfg that xl_parse.c (Xen 4.17) parses itself, case by case: what its C
/// (strtok, strtoul, MATCH_OPTION) makes of each form, and where domb refuses what xl would
/// drop or misread.
@Suite struct XLSpecParsingTests {
    static func rate(_ text: String) throws(ParseError) -> XLVifRate { try XLUtilConfig(parsing: []).parseVifRate(text) }
    static func nic(_ spec: String) throws -> XLNicSpec { try XLNicSpec.parse(spec, rate: rate) }

    // MARK: CPULIST (parse_cpurange / update_cpumap_range)

    @Test(arguments: [
        ("0-3,5,^1", CPUSet.cpus([0, 2, 3, 5])),
        ("all", .allBut([])),
        ("all,^7", .allBut([7])),
        ("all,^5-8", .allBut([5, 6, 7, 8])),
        ("^3,all", .allBut([])),  // terms apply in order: all after ^3 sets CPU 3 again
        ("0-7,^3,3", .cpus([0, 1, 2, 3, 4, 5, 6, 7])),
        ("2,,3", .cpus([2, 3])),  // strtok skips the empty field
        (" 4", .cpus([4])),  // strtoul skips leading blanks
        ("+4", .cpus([4])),
    ])
    func cpuList(text: String, expected: CPUSet) throws {
        #expect(try XLCPUList.parse(text) == expected)
    }

    @Test(arguments: ["^all", "3-1", "1-", "x", "1x", "-1", "1-2-3", "99999999999999999999"])
    func invalidCPUList(text: String) {
        #expect(throws: ParseError.self) { try XLCPUList.parse(text) }
    }

    /// NUMA node terms as update_cpumap_range (xl_parse.c, 4.17) reads them: STR_SKIP_PREFIX
    /// "^" then "node:" or "nodes:"; `all` after the prefixes is every CPU (`nodes:all`), a
    /// range is parse_range's; the terms stay in order, since each sets or clears its
    /// node's CPUs over what the terms before did.
    @Test(arguments: [
        ("nodes:0", CPUSet.withNodes(fromAll: false, terms: [.init(nodes: true, first: 0, last: 0)]), "nodes:0"),
        ("node:1", .withNodes(fromAll: false, terms: [.init(nodes: true, first: 1, last: 1)]), "nodes:1"),
        (
            "nodes:0-3,^node:2",
            .withNodes(fromAll: false, terms: [.init(nodes: true, first: 0, last: 3), .init(nodes: true, exclude: true, first: 2, last: 2)]),
            "nodes:0-3,^nodes:2"
        ),
        (
            "1,node:1,^6",
            .withNodes(
                fromAll: false,
                terms: [.init(first: 1, last: 1), .init(nodes: true, first: 1, last: 1), .init(exclude: true, first: 6, last: 6)]),
            "1,nodes:1,^6"
        ),
        ("all,^node:1", .withNodes(fromAll: true, terms: [.init(nodes: true, exclude: true, first: 1, last: 1)]), "all,^nodes:1"),
        // `all` sets every bit (libxl_bitmap_set_any), so the terms before it no longer matter.
        ("nodes:1,^3,all,^nodes:0", .withNodes(fromAll: true, terms: [.init(nodes: true, exclude: true, first: 0, last: 0)]), "all,^nodes:0"),
        ("nodes:all", .allBut([]), "all"),
        ("^nodes:1,all", .allBut([]), "all"),
    ])
    func numaNodeTerms(text: String, expected: CPUSet, canonical: String) throws {
        let set = try XLCPUList.parse(text)
        #expect(set == expected)
        #expect(set.cpuList == canonical)
        #expect(try XLCPUList.parse(canonical) == set)
    }

    /// What xl refuses in a node term: `^` with `all`, parse_range's failures after the prefix,
    /// the prefixes in the other order or twice (STR_SKIP_PREFIX skips each once).
    @Test(arguments: ["^nodes:all", "^node:all", "nodes:", "nodes:1-0", "nodes:x", "node:-1", "nodes:^1", "node:nodes:1", "nodes:1,nodes"])
    func invalidNodeTerms(text: String) {
        #expect(throws: ParseError.self) { try XLCPUList.parse(text) }
    }

    /// Resolution on a host with two nodes of four CPUs: the terms in order, as xl sets and
    /// clears the bits, so the same terms in another order give another set.
    @Test func nodeTermsResolveInOrder() throws {
        let host = NUMANodeMap([0: [0, 1, 2, 3], 1: [4, 5, 6, 7], 2: []])
        func on(_ text: String) throws -> [UInt32] { try XLCPUList.parse(text).resolved(hostCPUs: 8, nodes: host) }
        #expect(try on("nodes:0,^3") == [0, 1, 2])
        #expect(try on("^3,nodes:0") == [0, 1, 2, 3])
        #expect(try on("nodes:0-1,^node:0") == [4, 5, 6, 7])
        #expect(try on("1,node:1,^6") == [1, 4, 5, 7])
        #expect(try on("all,^nodes:1") == [0, 1, 2, 3])
        #expect(try on("nodes:2,5") == [5])  // a memory-only node holds no CPU
        #expect(try on("9,nodes:0") == [0, 1, 2, 3])  // bits past the host's map are dropped, as libxl_bitmap_set drops them
        #expect { try on("nodes:0,nodes:3") } throws: { "\($0)".contains("NUMA node 3 does not exist") && "\($0)".contains("node 1: 4-7") }
        #expect { try XLCPUList.parse("nodes:0").resolved(hostCPUs: 8) } throws: { "\($0)".contains("NUMA nodes") }
    }

    /// The host's node map from `NODE=CPULIST` entries and from a sysfs tree as Linux lays it out.
    @Test func nodeMaps() throws {
        #expect(try NUMANodeMap(entries: ["0=0-3", "1=4-5,7"]) == NUMANodeMap([0: [0, 1, 2, 3], 1: [4, 5, 7]]))
        for bad in [["0"], ["x=1"], ["0=1-"], ["0=all"], ["0=nodes:1"], ["0=1", "0=2"]] {
            #expect(throws: ParseError.self, "\(bad)") { try NUMANodeMap(entries: bad) }
        }
        let temp = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: temp.path + "/node0", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: temp.path + "/node1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: temp.path + "/power", withIntermediateDirectories: true)
        _ = try temp.write("node0/cpulist", "0-1,4\n")
        _ = try temp.write("node1/cpulist", "\n")
        #expect(try NUMANodeMap(sysfs: temp.path) == NUMANodeMap([0: [0, 1, 4], 1: []]))
        _ = try temp.write("node1/cpulist", "2-x\n")
        #expect { try NUMANodeMap(sysfs: temp.path) } throws: { "\($0)".contains("node1/cpulist") }
        #expect { try NUMANodeMap(sysfs: temp.path + "/none") } throws: { "\($0)".contains("none") }
    }

    /// The running host's sysfs, where Linux has it: every node's CPUs are CPUs this
    /// process can see (the oracle is the kernel's own online list).
    @Test func runningHostNodeMap() throws {
        let online = try String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8)
        let cpus = try #require(XLCPUList.parse(online.trimmingCharacters(in: .whitespacesAndNewlines)).highestNamedCPU)
        let map = try NUMANodeMap(sysfs: "/sys/devices/system/node")
        #expect(!map.nodes.isEmpty)
        #expect(map.nodes.values.joined().allSatisfy { $0 <= cpus })
    }

    // MARK: VIFSPEC (parse_nic_config)

    @Test func vifKeywords() throws {
        let nic = try Self.nic(
            "mac=00:16:3E:74:3d:76, model=rtl8139,bridge=xenbr0 ,type=vif,vifname=web0,script=vif-route,ip=192.0.2.1 192.0.2.2,"
                + "backend=netback,gatewaydev=eth0,devid=3,mtu=9000,untrusted,rate=10Mb/s@20ms")
        #expect(nic.mac == [0x00, 0x16, 0x3E, 0x74, 0x3D, 0x76])
        #expect(nic.model == "rtl8139")
        // replace_string copies the value as written: the trailing space stays, as in xl.
        #expect(nic.bridge == "xenbr0 ")
        #expect(nic.nicType == .vif)
        #expect(nic.vifname == "web0")
        #expect(nic.script == "vif-route")
        #expect(nic.ip == "192.0.2.1 192.0.2.2")
        #expect(nic.backendDomain == "netback")
        #expect(nic.gatewaydev == "eth0")
        #expect(nic.devid == 3)
        #expect(nic.mtu == 9000)
        #expect(nic.trusted == false)
        #expect(nic.rate == XLVifRate(bytesPerInterval: 25000, intervalMicroseconds: 20000))
        #expect(try Self.nic("netdev=eth1").gatewaydev == "eth1")
        #expect(try Self.nic("") == XLNicSpec())
    }

    @Test func vifNumbersAndMACsAsStrtoulReadsThem() throws {
        // parse_ulong ignores what follows the digits; the MAC takes any one separator.
        #expect(try Self.nic("mtu=9000abc").mtu == 9000)
        #expect(try Self.nic("mac=00-16-3e-00-00-01").mac == [0, 0x16, 0x3e, 0, 0, 1])
        #expect(try Self.nic("mac=0x0:16:3e:0:0:1").mac == [0, 0x16, 0x3e, 0, 0, 1])
    }

    @Test(arguments: [
        ("mac=00:16:3e:zz:00:01", "Invalid parameter `mac'"),
        ("mac=00:16:3e", "fewer than six bytes"),
        ("mac=100:16:3e:00:00:01", "Invalid parameter `mac'"),
        ("type=bridge", "type is vif or ioemu"),
        ("speed=fast", "unrecognized argument `speed=fast'"),
        ("trusted ", "unrecognized argument `trusted '"),
        ("accel=netfront", "does not support accel"),
        ("devid=x", "failed to convert"),
        ("mtu=99999999999", "failed to convert"),
        ("rate=fast", "invalid rate"),
    ])
    func vifRefusals(spec: String, message: String) {
        #expect { try Self.nic(spec) } throws: { "\($0)".contains(message) }
    }

    // MARK: vtpm, p9, vkb, vdispl

    @Test func vtpm() throws {
        let vtpm = try XLVtpmSpec.parse("backend=vtpmmgr, uuid=7D3F5D2B-8E0B-4F0A-9C43-1C8F2B7E6A10")
        #expect(vtpm == XLVtpmSpec(backendDomain: "vtpmmgr", uuid: "7d3f5d2b-8e0b-4f0a-9c43-1c8f2b7e6a10"))
        #expect { try XLVtpmSpec.parse("uuid=7d3f5d2b-8e0b-4f0a-9c43-1c8f2b7e6a10") } throws: {
            "\($0)".contains("vtpm spec missing required backend field")
        }
        #expect { try XLVtpmSpec.parse("backend=a,uuid=nope") } throws: { "\($0)".contains("Failed to parse vtpm UUID") }
        #expect { try XLVtpmSpec.parse("backend=a,colour=blue") } throws: { "\($0)".contains("Unknown string `colour'") }
        // xl stops at a term without '=' and drops the rest; domb refuses.
        #expect { try XLVtpmSpec.parse("backend=a,oops,uuid=7d3f5d2b-8e0b-4f0a-9c43-1c8f2b7e6a10") } throws: {
            "\($0)".contains("stops reading there")
        }
    }

    @Test func p9() throws {
        #expect(
            try XLP9Spec.parse(["tag=share,security_model=none,path=/srv/share", "tag=b,security_model=none,path=/b,backend=fs"])
                == [
                    XLP9Spec(tag: "share", securityModel: "none", path: "/srv/share", backendDomain: nil),
                    XLP9Spec(tag: "b", securityModel: "none", path: "/b", backendDomain: "fs"),
                ])
        #expect { try XLP9Spec.parse(["security_model=none,path=/p"]) } throws: { "\($0)".contains("9pfs spec missing required field") }
        // xl 4.17 keeps the strings across items: the second would get path=/one.
        #expect { try XLP9Spec.parse(["tag=one,security_model=none,path=/one", "tag=two,security_model=none"]) } throws: {
            "\($0)".contains("has no path: xl 4.17 would reuse the previous item's")
        }
        #expect { try XLP9Spec.parse(["tag=a,security_model=none,path=/a,mode=ro"]) } throws: {
            "\($0)".contains("Unknown string `mode' in 9pfs spec")
        }
    }

    @Test func vkb() throws {
        let vkb = try XLVkbSpec.parse("backend-type=Linux,unique-id=kbd0,multi-touch-width=0x780,multi-touch-height=1080,multi-touch-num-contacts=010")
        #expect(vkb.backendType == .linux)
        #expect(vkb.uniqueID == "kbd0")
        // strtoul(…, 0): hex and octal; a multi-touch size sets feature-multi-touch, as xl does.
        #expect(vkb.numbers == ["multi-touch-width": 1920, "multi-touch-height": 1080, "multi-touch-num-contacts": 8, "feature-multi-touch": 1])
        #expect { try XLVkbSpec.parse("unique-id=k") } throws: { "\($0)".contains("backend-type should be set in vkb spec") }
        #expect { try XLVkbSpec.parse("backend-type=xorg") } throws: { "\($0)".contains("Unknown backend_type") }
        #expect { try XLVkbSpec.parse("backend-type=linux,feature-multi-touch=1") } throws: {
            "\($0)".contains("should be set for multi touch")
        }
    }

    @Test func vdispl() throws {
        let vdispl = try XLVdisplSpec.parse("backend=0,be-alloc=1,connectors=id0:1920x1080;id1:800x600")
        #expect(vdispl.backendDomain == "0")
        #expect(vdispl.backendAllocates)
        #expect(vdispl.connectors == [.init(uniqueID: "id0", width: 1920, height: 1080), .init(uniqueID: "id1", width: 800, height: 600)])
        #expect { try XLVdisplSpec.parse("backend=0") } throws: { "\($0)".contains("At least one connector") }
        #expect { try XLVdisplSpec.parse("connectors=") } throws: { "\($0)".contains("xl 4.17 crashes") }
        #expect { try XLVdisplSpec.parse("connectors=id0") } throws: { "\($0)".contains("is not ID:WxH") }
        #expect { try XLVdisplSpec.parse("connectors=id0:wide") } throws: { "\($0)".contains("Can't parse connector resolution") }
    }
}
