//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

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

/// Where a domain's vCPUs may run (xl `cpus`: hard affinity, pinning) or prefer to run
/// (`cpus_soft`): one CPU set for every vCPU (xl's CPULIST string), or one per vCPU from
/// vCPU 0 (xl's list; vCPUs past its end are left alone, as xl leaves them).
public enum VCPUAffinity: Hashable, Sendable {
    case allVCPUs(CPUSet)
    case perVCPU([CPUSet])

    /// The sets, in vCPU order (one for ``allVCPUs``).
    public var sets: [CPUSet] {
        switch self {
        case .allVCPUs(let set): [set]
        case .perVCPU(let sets): sets
        }
    }

    /// xl's spelling: one CPULIST, or one per vCPU (the device-tree and JSON forms).
    public var cpuLists: [String] { sets.map(\.cpuList) }

    /// From xl's spelling: one CPULIST string is every vCPU's, a list is per vCPU.
    /// - Throws: `ParseError` from ``XLCPUList``.
    public init(cpuLists: [String], perVCPU: Bool) throws(ParseError) {
        var sets: [CPUSet] = []
        for text in cpuLists { sets.append(try XLCPUList.parse(text)) }
        if perVCPU {
            self = .perVCPU(sets)
        } else {
            guard sets.count == 1 else { throw .invalid("one CPU list for every vCPU, not \(sets.count)") }
            self = .allVCPUs(sets[0])
        }
    }
}

/// The JSON model form: xl's spelling, a string (every vCPU) or an array of strings (per vCPU).
extension VCPUAffinity: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            if let text = try? container.decode(String.self) {
                self = try VCPUAffinity(cpuLists: [text], perVCPU: false)
            } else {
                self = try VCPUAffinity(cpuLists: try container.decode([String].self), perVCPU: true)
            }
        } catch let error as ParseError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .allVCPUs(let set): try container.encode(set.cpuList)
        case .perVCPU: try container.encode(cpuLists)
        }
    }
}
