//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombLibxl
import DombTestSupport
import Foundation
import Testing

/// The readings issue 14 names, each against the value `xl -N create` gave on Xen 4.17
/// (Corpus/xl-4.17/): the field in xl's JSON, and the same field in domb's.
@Suite struct XLAcceptanceTests {
    /// xl's JSON and domb's for one corpus file.
    static func pair(_ name: String) throws -> (xl: JSONValue, domb: JSONValue) {
        let xl = try JSONValue(parsing: try LaunchFile.readFile("\(XLOracleReplayTests.captured)/\(name).json"))
        let domb = try XLOracleReplayTests.domb(name).get()
        return (xl, try JSONValue(parsing: Array(domb.json.utf8)))
    }

    static func field(_ value: JSONValue, _ path: String) -> JSONValue? {
        var current: JSONValue? = value
        for part in path.split(separator: ".") {
            if let open = part.firstIndex(of: "["), let index = Int(part[part.index(after: open)..<(part.firstIndex(of: "]") ?? part.endIndex)]) {
                guard case .array(let items)? = current?[String(part[..<open])], index < items.count else { return nil }
                current = items[index]
            } else {
                current = current?[String(part)]
            }
        }
        return current
    }

    /// Both sides' value of `path`, which must equal `expected`.
    static func expect(_ name: String, _ path: String, _ expected: JSONValue?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (xl, domb) = try pair(name)
        #expect(field(xl, path) == expected, "xl -N: \(name) \(path)", sourceLocation: sourceLocation)
        #expect(field(domb, path) == expected, "domb: \(name) \(path)", sourceLocation: sourceLocation)
    }

    @Test func octalNumbers() throws {
        // memory = 0400 (256 MiB), vcpus = 010 (8).
        try Self.expect("numbers-octal", "b_info.target_memkb", .integer(256 * 1024))
        try Self.expect("numbers-octal", "b_info.max_vcpus", .integer(8))
        try Self.expect("numbers-octal", "b_info.avail_vcpus", .array((0..<8).map { .integer($0) }))
    }

    @Test func hexNumbers() throws {
        // memory = 0x100, maxmem = 0x200, vcpus = 0x2, maxvcpus = 0x4.
        try Self.expect("numbers-hex", "b_info.target_memkb", .integer(256 * 1024))
        try Self.expect("numbers-hex", "b_info.max_memkb", .integer(512 * 1024))
        try Self.expect("numbers-hex", "b_info.max_vcpus", .integer(4))
        try Self.expect("numbers-hex", "b_info.avail_vcpus", .array([.integer(0), .integer(1)]))
    }

    @Test func stringAddition() throws {
        // extra = "console=hvc0"; extra += " quiet".
        try Self.expect("string-addition", "b_info.cmdline", .string("console=hvc0 quiet"))
    }

    @Test func vifTrusted() throws {
        try Self.expect("vif-trusted", "nics[0].trusted", .string("True"))
        try Self.expect("vif-trusted", "nics[1].trusted", .string("False"))
        try Self.expect("vif-trusted", "nics[1].bridge", .string("xenbr1"))
    }

    /// xl 4.17 refuses `trusted`/`untrusted` in a DISKSPEC; so does domb, in its words.
    @Test(arguments: ["disk-untrusted", "disk-trusted"])
    func diskTrustedIsRefused(name: String) throws {
        let xl = try String(contentsOfFile: "\(XLOracleReplayTests.captured)/\(name).refused", encoding: .utf8)
        let bytes = try LaunchFile.readFile("\(XLOracleReplayTests.corpus)/\(name).cfg")
        #expect { try LaunchFile.importXL(bytes) } throws: { error in
            // The same libxlutil message as xl's, after domb's "line N: disk ...:".
            let message = xl.split(separator: ":", maxSplits: 1).last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? xl
            return "\(error)".contains("line 6: disk") && "\(error)".contains(message)
        }
    }

    /// tap:aio:, tap2:aio:, aio:, file: are stripped and leave libxl to choose the backend,
    /// on a block device and on a file alike.
    @Test(arguments: ["tap-aio", "tap2-aio", "aio", "file"], ["block", "file"])
    func deprecatedPrefixesLeaveTheBackendUnset(prefix: String, target: String) throws {
        let name = "disk-prefix-\(prefix)-\(target)"
        try Self.expect(name, "disks[0].backend", nil)
        try Self.expect(
            name, "disks[0].pdev_path", .string(target == "block" ? "/dev/vg/guest-volume" : "/var/lib/xen/images/guest.img"))
        try Self.expect(name, "disks[0].format", .string("raw"))
        try Self.expect(name, "disks[0].readwrite", .integer(1))
    }

    @Test func diskEquivalenceGroups() throws {
        for index in 1...4 {
            try Self.expect("disk-group1-\(index)", "disks[0]", Self.field(try Self.pair("disk-group1-1").xl, "disks[0]"))
        }
        for index in 1...5 {
            try Self.expect("disk-group2-\(index)", "disks[0].is_cdrom", .integer(1))
            try Self.expect("disk-group2-\(index)", "disks[0].removable", .integer(1))
            try Self.expect("disk-group2-\(index)", "disks[0].readwrite", nil)
        }
    }

    /// xend's empty CD-ROM, `,hdc:cdrom,r`: an empty, removable, read-only drive at hdc.
    @Test func emptyCDROM() throws {
        try Self.expect("disk-empty-cdrom", "disks[1].pdev_path", .string(""))
        try Self.expect("disk-empty-cdrom", "disks[1].vdev", .string("hdc"))
        try Self.expect("disk-empty-cdrom", "disks[1].format", .string("empty"))
        try Self.expect("disk-empty-cdrom", "disks[1].removable", .integer(1))
        try Self.expect("disk-empty-cdrom", "disks[1].is_cdrom", .integer(1))
        try Self.expect("disk-empty-cdrom", "disks[1].readwrite", nil)
    }

    /// `cpus = "all,^7"`: every host CPU but 7 for each vCPU (the capture's host bitmap has 8 bits).
    @Test func cpusAllButOne() throws {
        let expected = JSONValue.array((0..<7).map { .integer($0) })
        try Self.expect("cpus-all-except", "b_info.vcpu_hard_affinity", .array([expected, expected]))
        try Self.expect("cpus-all-except", "b_info.numa_placement", nil)
        // A per-vCPU list turns libxl's NUMA placement off, as xl does.
        try Self.expect("cpus-per-vcpu", "b_info.vcpu_hard_affinity", .array([.array([.integer(2)]), .array([3, 4, 6, 7].map { .integer($0) })]))
        try Self.expect("cpus-per-vcpu", "b_info.numa_placement", .string("False"))
        try Self.expect("cpus-soft", "b_info.vcpu_soft_affinity", .array(Array(repeating: .array((0..<4).map { .integer($0) }), count: 2)))
    }

    /// `nodes:` terms resolve through the host's node map into the bitmaps libxl gets, in
    /// xl's order; without a map, or for a node the host lacks, the error names the cause.
    @Test func nodeTermsResolveThroughTheHostNodeMap() throws {
        let temp = try TemporaryDirectory()
        let file = try temp.write(
            "nodes.cfg", "name = \"nodes\"\nkernel = \"/boot/vmlinuz\"\nmemory = 128\nvcpus = 2\ncpus = \"nodes:1,^5,0\"\ncpus_soft = [\"all,^nodes:0\"]\n")
        let (domain, _) = try LaunchFile.loadXLDomain(file)
        #expect(domain.cpuAffinity?.cpuLists == ["nodes:1,^5,0"])
        let host = NUMANodeMap([0: [0, 1, 2, 3], 1: [4, 5, 6, 7]])
        let json = try JSONValue(parsing: Array(try LibxlDomainConfig(describing: domain, hostCPUs: 8, nodes: host).json().utf8))
        let hard = JSONValue.array([0, 4, 6, 7].map { .integer($0) })
        #expect(json["b_info"]?["vcpu_hard_affinity"] == .array([hard, hard]))
        #expect(json["b_info"]?["vcpu_soft_affinity"] == .array([.array([4, 5, 6, 7].map { .integer($0) })]))
        // Without the host's CPU count, `all` still needs it (node terms alone do not).
        #expect { try LibxlDomainConfig(describing: domain, hostCPUs: nil, nodes: host).json() } throws: { "\($0)".contains("--host-cpus") }
        #expect { try LibxlDomainConfig(describing: domain, hostCPUs: 8).json() } throws: { "\($0)".contains("--host-numa") }
        #expect { try LibxlDomainConfig(describing: domain, hostCPUs: 8, nodes: NUMANodeMap([0: [0, 1]])).json() } throws: {
            "\($0)".contains("NUMA node 1 does not exist")
        }
    }

    /// Off Xen, "all" needs the host's CPU count: the libxl JSON says so instead of guessing.
    @Test func allNeedsTheHostCPUCount() throws {
        let (domain, _) = try LaunchFile.loadXLDomain("\(XLOracleReplayTests.corpus)/cpus-all-except.cfg")
        #expect { try LibxlDomainConfig(describing: domain, hostCPUs: nil).json() } throws: { "\($0)".contains("--host-cpus") }
    }
}
