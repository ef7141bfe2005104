//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// How many threads multi-bank hashing (``MultiHasher``) may use.
///
/// By default one per core this process may run on: the CPUs in its affinity mask
/// (`taskset`, cgroup cpusets), capped by a cgroup CPU quota (v2 `cpu.max` or v1
/// `cpu.cfs_quota_us`, as systemd's `CPUQuota=` and container runtimes set it). One core
/// means the single-thread path: every bank hashed in the calling thread, no worker threads.
///
/// `DOMB_HASH_THREADS=N` overrides the count for every command (`build`, `boot`, `measure`,
/// `digest`, `bundle verify`); `DOMB_HASH_THREADS=1` forces the single-thread path, the
/// baseline `benchmarks/measurement.sh` compares with.
public enum HashingParallelism {
    public static let environmentVariable = "DOMB_HASH_THREADS"
    /// Largest accepted value of ``environmentVariable``.
    public static let maximumThreads = 64

    /// The thread count to use: ``environmentVariable`` if set, otherwise ``availableCores``.
    /// Read once per process.
    /// - Throws: ``CryptoError`` if the variable is not a whole number from 1 to ``maximumThreads``.
    public static func threadCount() throws(CryptoError) -> Int { try configured.get() }

    /// Cores available to this process (at least 1), detected once per process.
    public static let availableCores = detectCores()

    private static let configured: Result<Int, CryptoError> = {
        guard let raw = getenv(environmentVariable) else { return .success(availableCores) }
        let text = String(cString: raw)
        guard let value = Int(text), (1...maximumThreads).contains(value) else {
            let escaped = text.prefix(32).unicodeScalars.map { $0.escaped(asASCII: true) }.joined()
            return .failure(
                CryptoError(
                    "digest",
                    "\(environmentVariable) must be a whole number from 1 to \(maximumThreads), not \"\(escaped)\""
                ))
        }
        return .success(value)
    }()

    /// Detects the cores the calling thread may run on now (not cached).
    public static func detectCores() -> Int {
        var cores = Int(CLinux_affinity_cpu_count())
        if cores < 1 { cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
        if let membership = readSmallFile("/proc/self/cgroup"), let quota = cgroupCPUQuota(membership: membership) {
            cores = min(cores, quota)
        }
        return max(1, cores)
    }

    /// The tightest cgroup CPU quota on the path from this process's cgroup up to the
    /// root, rounded up to whole CPUs; nil when there is none. cgroup v2: `cpu.max`,
    /// "$MAX $PERIOD" or "max $PERIOD"; v1: `cpu.cfs_quota_us` (-1 = none) over
    /// `cpu.cfs_period_us` (Documentation/admin-guide/cgroup-v2.rst, scheduler/sched-bwc.rst).
    ///
    /// - Parameters:
    ///   - membership: the text of `/proc/self/cgroup`.
    ///   - root: where the cgroup file systems are mounted.
    public static func cgroupCPUQuota(membership: String, root: String = "/sys/fs/cgroup") -> Int? {
        var tightest: Int?
        func limit(_ quota: Substring?, _ period: Substring?) {
            guard let quota, let period, let q = Int(quota), let p = Int(period), q > 0, p > 0 else { return }
            tightest = min(tightest ?? Int.max, (q + p - 1) / p)
        }
        // "hierarchy-ID:controllers:path"; v2 is "0::/path", v1's CPU controller "N:cpu,cpuacct:/path".
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[2].hasPrefix("/") else { continue }
            let isV2 = fields[0] == "0" && fields[1].isEmpty
            guard isV2 || fields[1].split(separator: ",").contains("cpu") else { continue }
            var path = String(fields[2])
            while true {
                let directory = (isV2 ? root : "\(root)/cpu") + (path == "/" ? "" : path)
                if isV2 {
                    let words = readSmallFile("\(directory)/cpu.max")?.split(whereSeparator: { $0 == " " || $0 == "\n" })
                    limit(words?.first, words?.dropFirst().first)
                } else {
                    let quota = readSmallFile("\(directory)/cpu.cfs_quota_us")?.split(separator: "\n").first
                    limit(quota, readSmallFile("\(directory)/cpu.cfs_period_us")?.split(separator: "\n").first)
                }
                guard path != "/", let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
        }
        return tightest
    }

    /// The first 4 KiB of a pseudo-file, or nil if it cannot be read.
    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }
}
