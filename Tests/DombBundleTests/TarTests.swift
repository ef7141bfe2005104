//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombTestSupport
import Foundation
import Testing

/// Where each member's header and data sit in a ustar file (POSIX.1-1988 header: name at
/// 0, size in octal at 124, typeflag at 156), for tamper tests.
struct TarLayoutEntry {
    var name: String
    var headerOffset: Int
    var dataOffset: Int
    var size: Int
}

func tarLayout(_ bytes: [UInt8]) -> [TarLayoutEntry] {
    var entries: [TarLayoutEntry] = []
    var offset = 0
    while offset + 512 <= bytes.count {
        let header = bytes[offset..<offset + 512]
        if header.allSatisfy({ $0 == 0 }) { break }
        let name = String(decoding: header.prefix(100).prefix { $0 != 0 }, as: UTF8.self)
        let sizeText = String(decoding: bytes[offset + 124..<offset + 136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
        let size = Int(sizeText, radix: 8) ?? 0
        entries.append(TarLayoutEntry(name: name, headerOffset: offset, dataOffset: offset + 512, size: size))
        offset += 512 + (size + 511) / 512 * 512
    }
    return entries
}

let permissivePolicy = TarReadPolicy(maximumMembers: 16, sizeLimit: { _ in 1 << 20 }, isAllowedPath: BundleLayout.isSafePath)

/// Reads every member of an archive with the policy; returns path → bytes.
func readAll(_ path: String, policy: TarReadPolicy = permissivePolicy) throws -> [String: [UInt8]] {
    let reader = try TarReader(path: path, policy: policy)
    var members: [String: [UInt8]] = [:]
    while let member = try reader.next() { members[member.path] = try reader.readAll(limit: Int(clamping: policy.sizeLimit(member.path))) }
    return members
}

@Suite struct TarTests {
    let members: [(String, [UInt8])] = [
        ("manifest.json", Array(#"{"a":1}"#.utf8)),
        ("modules/dom0/kernel", (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }),
        ("empty", []),
    ]

    func write(_ path: String, _ members: [(String, [UInt8])], mtime: Int64 = 1_700_000_000) throws {
        let writer = try TarWriter(path: path, modificationTime: mtime)
        for (name, bytes) in members { try writer.add(name, bytes: bytes) }
        try writer.commit()
    }

    @Test func writerIsDeterministicAndReadableByTar() throws {
        let directory = try TemporaryDirectory()
        try write(directory.file("a.tar"), members)
        try write(directory.file("b.tar"), members)
        let a = try Array(Data(contentsOf: directory.url.appendingPathComponent("a.tar")))
        let b = try Array(Data(contentsOf: directory.url.appendingPathComponent("b.tar")))
        #expect(a == b)
        let listing = try Tools.run("tar", ["--utc", "-tvf", directory.file("a.tar")]).stdoutText
        #expect(listing.contains("-rw-r--r-- root/root      5000 2023-11-14 22:13 modules/dom0/kernel"), "\(listing)")
        // A different SOURCE_DATE_EPOCH changes the bytes.
        try write(directory.file("c.tar"), members, mtime: 1_700_000_001)
        #expect(try Array(Data(contentsOf: directory.url.appendingPathComponent("c.tar"))) != a)
        // Round trip through our reader.
        let read = try readAll(directory.file("a.tar"))
        #expect(read.count == members.count)
        for (name, bytes) in members { #expect(read[name] == bytes) }
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["a.tar", "b.tar", "c.tar"])
    }

    @Test func streamedFileMemberMatchesAndIsObservedOnce() throws {
        let directory = try TemporaryDirectory()
        let data = (0..<3 * archiveStreamChunkSize + 17).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
        let source = try directory.write("big.bin", data)
        let writer = try TarWriter(path: directory.file("big.tar"), modificationTime: 0)
        var observed = 0
        var chunks = 0
        try writer.add("modules/d/kernel", file: source) { chunk in
            observed += chunk.count
            chunks += 1
            #expect(chunk.count <= archiveStreamChunkSize)
        }
        try writer.commit()
        #expect(observed == data.count)
        #expect(chunks >= 4)
        try Tools.run("tar", ["-xf", directory.file("big.tar"), "-C", directory.path])
        #expect(try Array(Data(contentsOf: directory.url.appendingPathComponent("modules/d/kernel"))) == data)
    }

    /// Direct I/O on a disk file system and buffered writes on tmpfs (which refuses
    /// O_DIRECT) give the same bytes, across several staging buffers and an unaligned tail.
    @Test func directAndBufferedOutputAreIdentical() throws {
        let disk = try TemporaryDirectory()
        let memory = "/dev/shm/domb-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: memory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: memory) }
        let big = (0..<(9 << 20) + 333).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ $0 >> 11) }
        let entries = members + [("modules/dom1/ramdisk", big)]
        try write(disk.file("a.tar"), entries)
        try write("\(memory)/a.tar", entries)
        let onDisk = try Array(Data(contentsOf: disk.url.appendingPathComponent("a.tar")))
        #expect(onDisk == (try Array(Data(contentsOf: URL(fileURLWithPath: "\(memory)/a.tar")))))
        #expect(onDisk.count % 512 == 0)
        #expect(try readAll(disk.file("a.tar"), policy: TarReadPolicy(maximumMembers: 8, sizeLimit: { _ in 16 << 20 }, isAllowedPath: { _ in true }))["modules/dom1/ramdisk"] == big)
    }

    @Test func uncommittedWriterLeavesNothing() throws {
        let directory = try TemporaryDirectory()
        do {
            let writer = try TarWriter(path: directory.file("never.tar"), modificationTime: 0)
            try writer.add("x", bytes: [1, 2, 3])
            #expect(throws: (any Error).self) { try writer.add("y", file: directory.file("missing")) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func readerRefusesUnsafeArchives() throws {
        let directory = try TemporaryDirectory()
        func refusal(_ name: String, _ policy: TarReadPolicy = permissivePolicy) -> String {
            do {
                _ = try readAll(directory.file(name), policy: policy)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        try write(directory.file("traversal.tar"), [("../escape", [1])])
        #expect(refusal("traversal.tar").contains("unsafe member path"))
        try write(directory.file("absolute.tar"), [("/etc/passwd", [1])])
        #expect(refusal("absolute.tar").contains("unsafe member path"))
        try write(directory.file("duplicate.tar"), [("manifest.json", [1]), ("manifest.json", [2])])
        #expect(refusal("duplicate.tar").contains("duplicate member"))
        try write(directory.file("big.tar"), [("manifest.json", [UInt8](repeating: 1, count: 100))])
        let small = TarReadPolicy(maximumMembers: 4, sizeLimit: { _ in 99 }, isAllowedPath: { _ in true })
        #expect(refusal("big.tar", small).contains("more than the 99 allowed"))
        try write(directory.file("many.tar"), (0..<5).map { ("m\($0)", [UInt8]()) })
        #expect(refusal("many.tar", small).contains("more than 4 members"))

        // Links and directories, made by GNU tar.
        let work = directory.file("work")
        try FileManager.default.createDirectory(atPath: "\(work)/dir", withIntermediateDirectories: true)
        _ = try directory.write("work/file", "data")
        try FileManager.default.createSymbolicLink(atPath: "\(work)/link", withDestinationPath: "/etc/passwd")
        try FileManager.default.linkItem(atPath: "\(work)/file", toPath: "\(work)/hard")
        try Tools.run("tar", ["-C", work, "-cf", directory.file("symlink.tar"), "link"])
        #expect(refusal("symlink.tar").contains("not a regular file"))
        try Tools.run("tar", ["-C", work, "-cf", directory.file("hardlink.tar"), "file", "hard"])
        #expect(refusal("hardlink.tar").contains("not a regular file"))
        try Tools.run("tar", ["-C", work, "-cf", directory.file("dir.tar"), "dir"])
        #expect(refusal("dir.tar").contains("not a regular file"))

        // Compressed archives are not tar.
        try write(directory.file("plain.tar"), members)
        try Tools.run("gzip", ["-k", directory.file("plain.tar")])
        #expect(refusal("plain.tar.gz") != "accepted")
        // Appended bytes after the end-of-archive marker.
        var appended = try Array(Data(contentsOf: directory.url.appendingPathComponent("plain.tar")))
        appended += Array("appended".utf8)
        _ = try directory.write("appended.tar", appended)
        #expect(refusal("appended.tar").contains("after the last member"))
        // Not an archive at all.
        _ = try directory.write("text.tar", "hello")
        #expect(refusal("text.tar") != "accepted")
    }

    /// Drip-feed: no strict prefix of a valid archive reads as a complete archive.
    @Test func noStrictPrefixReads() throws {
        let directory = try TemporaryDirectory()
        try write(directory.file("whole.tar"), members)
        let whole = try Array(Data(contentsOf: directory.url.appendingPathComponent("whole.tar")))
        #expect(try readAll(directory.file("whole.tar")).count == members.count)
        // Every block boundary and a spread of odd offsets; the final padding is all zero, so
        // the shortest valid form ends 1024 bytes after the last member.
        let lastData = tarLayout(whole).last.map { $0.dataOffset + ($0.size + 511) / 512 * 512 } ?? 0
        var cuts = Set(stride(from: 0, to: lastData + 1024, by: 512))
        cuts.formUnion(stride(from: 1, to: lastData + 1024, by: 97))
        for cut in cuts.sorted() {
            let path = try directory.write("prefix.tar", Array(whole.prefix(cut)))
            #expect(throws: (any Error).self, "prefix of \(cut) bytes was accepted") { _ = try readAll(path) }
        }
    }
}
