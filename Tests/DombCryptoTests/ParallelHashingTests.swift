//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombTestSupport
import Foundation
import Testing

/// The parallel multi-bank path (worker threads over a ring of buffers) against the OpenSSL
/// command line, and the rules that choose it.
@Suite struct ParallelHashingTests {
    static let banks = HashAlgorithm.known.filter(MultiHasher.supports)

    /// 3 MiB and an odd tail: many wraps of the ring at a 64 KiB chunk size.
    static func sample() -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<(3 << 20) + 12_345).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static func openSSL(_ path: String) throws -> DigestSet {
        var expected = DigestSet()
        for bank in banks {
            let name = bank == .sm3_256 ? "sm3" : bank.name
            expected[bank] = try Tools.run("openssl", ["dgst", "-\(name)", "-binary", path]).stdout
        }
        return expected
    }

    /// Uneven `update` chunks (crossing ring slots) on 2, 3 and 5 workers equal `openssl dgst`.
    @Test(arguments: [2, 3, 5])
    func streamedChunksMatchOpenSSL(threads: Int) throws {
        let directory = try TemporaryDirectory()
        let data = Self.sample()
        let expected = try Self.openSSL(try directory.write("data", data))
        #expect(Self.banks.count == 5, "Debian's OpenSSL 3 has sha1, sha256, sha384, sha512 and sm3")
        var hasher = try MultiHasher(algorithms: Self.banks, threads: threads, chunkSize: 64 << 10)
        var index = 0
        var chunk = 1
        while index < data.count {
            let end = min(data.count, index + chunk)
            hasher.update(data[index..<end])
            index = end
            chunk = chunk * 5 % 300_007 + 1
        }
        #expect(hasher.hashingThreads == threads, "one worker per thread asked for (fewer than banks)")
        #expect(try hasher.finalize() == expected)
    }

    /// One large in-memory buffer (as `boot` measures a module) on every core.
    @Test func oneLargeUpdateMatchesOpenSSL() throws {
        let directory = try TemporaryDirectory()
        let data = Self.sample()
        let expected = try Self.openSSL(try directory.write("data", data))
        var hasher = try MultiHasher(algorithms: Self.banks, threads: 4)
        hasher.update(data)
        #expect(hasher.hashingThreads == 4)
        #expect(try hasher.finalize() == expected)
    }

    /// The file reader fills the ring directly; the data is still read once.
    @Test(arguments: [1, 2, 4])
    func fileDigesterMatchesOpenSSL(threads: Int) throws {
        let directory = try TemporaryDirectory()
        let data = Self.sample()
        let path = try directory.write("data", data)
        let result = try FileDigester(algorithms: Self.banks, bufferSize: 64 << 10, threads: threads).digest(path: path)
        #expect(result.digests == (try Self.openSSL(path)))
        #expect(result.hashingThreads == threads)
        #expect(result.bytesRead == UInt64(data.count))
        #expect(result.readCalls == (data.count + (64 << 10) - 1) / (64 << 10) + 1)
    }

    /// One thread, one bank, or small data: the calling thread hashes, no workers start.
    @Test func singleThreadPathWhenParallelismCannotHelp() throws {
        let data = Self.sample()
        var one = try MultiHasher(algorithms: Self.banks, threads: 1)
        one.update(data)
        #expect(one.hashingThreads == 1)
        var single = try MultiHasher(algorithms: [.sha256], threads: 4)
        single.update(data)
        #expect(single.hashingThreads == 1)
        var small = try MultiHasher(algorithms: Self.banks, threads: 4)
        small.update(data[..<MultiHasher.parallelThreshold])
        #expect(small.hashingThreads == 1)
        small.update(data[MultiHasher.parallelThreshold...])
        #expect(small.hashingThreads == 4, "past the threshold the workers start with the first full chunk")
        // All three agree with a reference computed bank by bank.
        let reference = try MultiHasher.digest(data, algorithms: Self.banks)
        #expect(try one.finalize() == reference)
        #expect(try single.finalize()[.sha256] == reference[.sha256])
        #expect(try small.finalize() == reference)
    }

    /// A hasher dropped mid-stream (a read failed) stops its workers; nothing hangs.
    @Test func abandonedHasherStopsItsWorkers() throws {
        let data = Self.sample()
        for _ in 0..<20 {
            var hasher = try MultiHasher(algorithms: Self.banks, threads: 3, chunkSize: 4096)
            hasher.update(data[..<(1 << 20)])
            #expect(hasher.hashingThreads == 3)
        }
    }

    /// cgroup CPU quotas, v2 and v1, tightest on the path to the root.
    @Test func cgroupQuotaIsRoundedUpAndTightestWins() throws {
        let root = try TemporaryDirectory()
        let fm = FileManager.default
        try fm.createDirectory(atPath: root.file("a/b"), withIntermediateDirectories: true)
        _ = try root.write("cpu.max", "max 100000\n")
        _ = try root.write("a/cpu.max", "250000 100000\n")
        _ = try root.write("a/b/cpu.max", "max 100000\n")
        #expect(HashingParallelism.cgroupCPUQuota(membership: "0::/a/b\n", root: root.path) == 3)
        _ = try root.write("a/b/cpu.max", "50000 100000\n")
        #expect(HashingParallelism.cgroupCPUQuota(membership: "0::/a/b\n", root: root.path) == 1)
        #expect(HashingParallelism.cgroupCPUQuota(membership: "0::/\n", root: root.path) == nil, "max = no limit")

        try fm.createDirectory(atPath: root.file("cpu/pod"), withIntermediateDirectories: true)
        _ = try root.write("cpu/cpu.cfs_quota_us", "-1\n")
        _ = try root.write("cpu/cpu.cfs_period_us", "100000\n")
        _ = try root.write("cpu/pod/cpu.cfs_quota_us", "200000\n")
        _ = try root.write("cpu/pod/cpu.cfs_period_us", "100000\n")
        let v1 = "5:memory:/pod\n3:cpu,cpuacct:/pod\n0::/\n"
        #expect(HashingParallelism.cgroupCPUQuota(membership: v1, root: root.path) == 2)
        #expect(HashingParallelism.cgroupCPUQuota(membership: "3:cpu,cpuacct:/\n", root: root.path) == nil, "-1 = no limit")
    }
}
