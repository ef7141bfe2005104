//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombFiles
import DombTestSupport
import Foundation
import Testing

/// domb's note decoding against Xen's own `readnotes` (xen-utils-4.17), line for line.
@Suite struct ReadnotesCrossCheckTests {
    static func readnotes(_ path: String) throws -> [String] {
        let result = try Tools.run("readnotes", [path])
        return result.stdoutText.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    @Test(arguments: ["pv-kernel.elf", "pvh-kernel.elf", "legacy-guest.elf"])
    func testGuestNotesEqualReadnotes(_ name: String) throws {
        let path = try TestFiles.path(name)
        let report = try TestFiles.inspector.inspect(source: try FileImageSource(path: path))
        let expected = try Self.readnotes(path)
        #expect(!expected.isEmpty)
        #expect(report.readnotesLines == expected)
    }

    @Test func testGuestsHaveTheRightModes() throws {
        let pv = try TestFiles.inspector.inspect(try TestFiles.bytes("pv-kernel.elf"))
        #expect(pv.supportedModes == [.pv])
        #expect(pv.entryPoints.hypercallPage == 0x1000)
        let pvh = try TestFiles.inspector.inspect(try TestFiles.bytes("pvh-kernel.elf"))
        #expect(pvh.supportedModes == [.pvh])
        #expect(pvh.entryPoints.phys32 == 0x100000)
    }

    /// The images Makefile produces the same bytes on every build.
    @Test func testGuestsBuildDeterministically() throws {
        _ = try TestFiles.built.get()
        let directory = try TemporaryDirectory()
        try Tools.run("make", ["-s", "-C", Repository.root + "/images", "OUT=\(directory.path)/a"])
        try Tools.run("make", ["-s", "-C", Repository.root + "/images", "OUT=\(directory.path)/b"])
        for name in ["pv-kernel.elf", "pvh-kernel.elf", "legacy-guest.elf", "ramdisk.cpio", "ramdisk.cpio.gz"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/a/\(name)"))
            let b = try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/b/\(name)"))
            #expect(a == b, "\(name) differs between builds")
            #expect(!a.isEmpty)
        }
    }

    /// The real Debian 12 kernel: opt-in, because it is downloaded
    /// (`DOMB_REAL_KERNEL_TESTS=1`, or `DOMB_DEBIAN_KERNEL=/path/to/vmlinuz-6.1.*-amd64`).
    @Test(.enabled(if: RealKernel.enabled)) func realDebianKernel() throws {
        let path = try RealKernel.path()
        let report = try TestFiles.inspector.inspect(source: try FileImageSource(path: path))
        #expect(report.format == .bzImage)
        #expect(report.compression == .xz)
        let protocolVersion = try #require(report.bzImage?.protocolVersion)
        #expect(protocolVersion >= 0x020F)
        #expect(report.supportedModes == [.pv, .pvh])
        let phys32 = try #require(report.entryPoints.phys32)
        #expect(phys32 > 0 && phys32 < 1 << 32)
        #expect(report.notes.contains { $0.readnotesLine == "PHYS32_ENTRY: " + padded(phys32, 8) + " (8 bytes)" })

        // The decompressed payload, written out, through Xen's readnotes.
        let bz = try #require(report.bzImage)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let payload = bytes[bz.payloadOffset..<(bz.payloadOffset + bz.payloadLength)].dropLast(4)
        let elf = try Decompressor.decompress(payload, format: .xz, limit: 512 << 20)
        let directory = try TemporaryDirectory()
        let elfPath = try directory.write("vmlinux", elf)
        #expect(report.readnotesLines == (try Self.readnotes(elfPath)))
        #expect(report.readnotesLines.count >= 15)
    }

    private func padded(_ value: UInt64, _ size: Int) -> String {
        let digits = "0x" + String(value, radix: 16)
        return String(repeating: " ", count: max(0, 2 + 2 * size - digits.count)) + digits
    }
}

enum RealKernel {
    static var enabled: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["DOMB_REAL_KERNEL_TESTS"] == "1" || env["DOMB_DEBIAN_KERNEL"] != nil
    }

    /// The kernel from `DOMB_DEBIAN_KERNEL`, else fetched by images/fetch-debian-kernel.sh.
    static func path() throws -> String {
        if let path = ProcessInfo.processInfo.environment["DOMB_DEBIAN_KERNEL"] { return path }
        let result = try Tools.run("/bin/sh", [Repository.root + "/images/fetch-debian-kernel.sh"])
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
