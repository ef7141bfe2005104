//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A set of physical CPUs as a launch describes it without knowing the host: the CPUs
/// listed, or every CPU of the host but those listed (xl's `all,^7`). At launch it becomes
/// a bitmap of the host's CPUs, as xl's CPULIST does (``XLCPUList``).
public enum CPUSet: Hashable, Sendable {
    /// Exactly these CPUs (sorted, no duplicates).
    case cpus([UInt32])
    /// Every CPU of the host except these (sorted, no duplicates); `allBut([])` is xl's `all`.
    case allBut([UInt32])

    /// The set on a host with `hostCPUs` CPUs (0 ..< hostCPUs); CPUs the host does not have
    /// are left out, as `libxl_bitmap_set` leaves them out of a host-sized bitmap.
    public func resolved(hostCPUs: UInt32) -> [UInt32] {
        switch self {
        case .cpus(let cpus): return cpus.filter { $0 < hostCPUs }
        case .allBut(let excluded):
            let skip = Set(excluded)
            return (0..<hostCPUs).filter { !skip.contains($0) }
        }
    }

    /// xl's CPULIST form: `0-3,5`, `all`, `all,^7-8`.
    public var cpuList: String {
        switch self {
        case .cpus(let cpus): return Self.ranges(cpus).joined(separator: ",")
        case .allBut(let excluded): return (["all"] + Self.ranges(excluded).map { "^" + $0 }).joined(separator: ",")
        }
    }

    private static func ranges(_ cpus: [UInt32]) -> [String] {
        var out: [String] = []
        var index = 0
        while index < cpus.count {
            var end = index
            while end + 1 < cpus.count, cpus[end + 1] == cpus[end] + 1 { end += 1 }
            out.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
            index = end + 1
        }
        return out
    }
}
