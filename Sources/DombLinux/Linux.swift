//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// The Linux interfaces domb uses that Swift's Glibc module hides (they need
/// `_GNU_SOURCE`): sealed memfds (memfd_create(2), `F_ADD_SEALS`), `O_DIRECT`,
/// sync_file_range(2) and sched_getaffinity(2). The one place above the CLinux shim that
/// knows them.
public enum Linux {
    /// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`: a descriptor, or -1 with `errno` set.
    public static func createSealableMemoryFile(name: String) -> Int32 { CLinux_memfd_create_sealable(name) }

    /// Adds `F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`: 0, or -1 with `errno` set.
    public static func sealCompletely(_ descriptor: Int32) -> Int32 { CLinux_seal_all(descriptor) }

    /// Whether all four seals are in place (`F_GET_SEALS`).
    public static func isSealedCompletely(_ descriptor: Int32) -> Bool {
        let seals = CLinux_get_seals(descriptor)
        return seals >= 0 && seals & 0x0F == 0x0F
    }

    /// The `O_DIRECT` open flag of this architecture.
    public static var directIOFlag: Int32 { CLinux_O_DIRECT() }

    /// `sync_file_range(descriptor, offset, count, SYNC_FILE_RANGE_WRITE)`: starts writing
    /// the range back without waiting. Returns whether the kernel accepted it.
    @discardableResult
    public static func startWriteback(_ descriptor: Int32, offset: Int64, count: Int64) -> Bool {
        CLinux_start_writeback(descriptor, offset, count) == 0
    }

    /// CPUs in this thread's affinity mask (what `taskset` and cgroup cpusets allow), or
    /// -1 if the kernel does not say (sched_getaffinity(2)).
    public static var affinityCPUCount: Int { Int(CLinux_affinity_cpu_count()) }
}
