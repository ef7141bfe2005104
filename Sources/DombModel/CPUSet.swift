//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation

/// A set of physical CPUs as a launch describes it without knowing the host: the CPUs
/// listed, every CPU of the host but those listed (xl's `all,^7`), or xl's terms in order
/// when some name NUMA nodes (`nodes:0,^3`), whose CPUs only the host knows. At launch it
/// becomes a bitmap of the host's CPUs, as xl's CPULIST does (``XLCPUList``).
public enum CPUSet: Hashable, Sendable {
    /// Exactly these CPUs (sorted, no duplicates).
    case cpus([UInt32])
    /// Every CPU of the host except these (sorted, no duplicates); `allBut([])` is xl's `all`.
    case allBut([UInt32])
    /// A CPULIST with NUMA node terms, kept as xl reads it: from no CPU, or from every CPU
    /// (`fromAll`, xl's `all` before the terms), each term then sets or clears its CPUs in
    /// order (`update_cpumap_range`), so `nodes:0,^3` and `^3,nodes:0` differ when node 0
    /// holds CPU 3. Built by ``init(fromAll:terms:)``, which keeps this case only when a
    /// term names nodes.
    case withNodes(fromAll: Bool, terms: [CPUListTerm])

    /// The set of xl's terms applied in order from no CPU (or every CPU, `fromAll`): the
    /// plain cases when no term names a node.
    public init(fromAll: Bool, terms: [CPUListTerm]) {
        if terms.contains(where: \.isNodes) {
            self = .withNodes(fromAll: fromAll, terms: terms)
            return
        }
        var added: Set<UInt32> = []
        var removed: Set<UInt32> = []
        for term in terms {
            for cpu in term.first...term.last {
                if term.exclude {
                    removed.insert(cpu)
                    added.remove(cpu)
                } else {
                    added.insert(cpu)
                    removed.remove(cpu)
                }
            }
        }
        self = fromAll ? .allBut(removed.sorted()) : .cpus(added.sorted())
    }

    /// Whether only the host's NUMA topology says which CPUs the set holds.
    public var namesNodes: Bool {
        if case .withNodes = self { true } else { false }
    }

    /// The set on a host with `hostCPUs` CPUs (0 ..< hostCPUs), as xl's
    /// `update_cpumap_range` fills a host-sized bitmap: CPUs the host does not have are left
    /// out (`libxl_bitmap_set` ignores them); a node term sets or clears the CPUs `nodes`
    /// gives for it (libxl's `libxl_node_to_cpumap`, or Linux sysfs).
    /// - Throws: `ParseError.invalid` naming the node when a term names a node that `nodes`
    ///   does not have (xl would silently add no CPU), or when node terms meet no node map.
    public func resolved(hostCPUs: UInt32, nodes: NUMANodeMap? = nil) throws(ParseError) -> [UInt32] {
        switch self {
        case .cpus(let cpus): return cpus.filter { $0 < hostCPUs }
        case .allBut(let excluded):
            let skip = Set(excluded)
            return (0..<hostCPUs).filter { !skip.contains($0) }
        case .withNodes(let fromAll, let terms):
            guard let nodes else {
                throw .invalid("\"\(cpuList)\" names NUMA nodes: only the host's topology says which CPUs they hold")
            }
            var set = Set(fromAll ? Array(0..<hostCPUs) : [])
            for term in terms {
                var cpus: [UInt32] = []
                if term.isNodes {
                    for node in term.first...term.last {
                        guard let held = nodes.cpus(ofNode: node) else {
                            throw .invalid("\"\(cpuList)\": NUMA node \(node) does not exist on this host (\(nodes.summary))")
                        }
                        cpus += held
                    }
                } else {
                    cpus = Array(term.first...term.last)
                }
                for cpu in cpus where cpu < hostCPUs {
                    if term.exclude { set.remove(cpu) } else { set.insert(cpu) }
                }
            }
            return set.sorted()
        }
    }

    /// The highest CPU the set names without the host (nil for none, or for `all`, which
    /// names them all); node terms name none.
    public var highestNamedCPU: UInt32? {
        switch self {
        case .cpus(let cpus): cpus.last
        case .allBut: nil
        case .withNodes(let fromAll, let terms): fromAll ? nil : terms.filter { !$0.isNodes }.map(\.last).max()
        }
    }

    /// xl's CPULIST form: `0-3,5`, `all`, `all,^7-8`, `nodes:0-1,^3`.
    public var cpuList: String {
        switch self {
        case .cpus(let cpus): return Self.ranges(cpus).joined(separator: ",")
        case .allBut(let excluded): return (["all"] + Self.ranges(excluded).map { "^" + $0 }).joined(separator: ",")
        case .withNodes(let fromAll, let terms): return ((fromAll ? ["all"] : []) + terms.map(\.cpuList)).joined(separator: ",")
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

/// One term of xl's CPULIST after `all` (`update_cpumap_range`): CPUs `first...last`, or
/// the CPUs of NUMA nodes `first...last` (`node:` / `nodes:`), added or, with `^`, removed.
public struct CPUListTerm: Hashable, Sendable {
    public var isNodes: Bool
    public var exclude: Bool
    public var first: UInt32
    public var last: UInt32

    public init(nodes: Bool = false, exclude: Bool = false, first: UInt32, last: UInt32) {
        self.isNodes = nodes
        self.exclude = exclude
        self.first = first
        self.last = last
    }

    /// The term as xl reads it (`^nodes:0-1`; `node:` is written `nodes:`).
    public var cpuList: String {
        (exclude ? "^" : "") + (isNodes ? "nodes:" : "") + (first == last ? "\(first)" : "\(first)-\(last)")
    }
}

/// Which CPUs each NUMA node of a host holds: what `libxl_node_to_cpumap` gives on Xen, or
/// Linux's `/sys/devices/system/node/nodeN/cpulist` (a node may hold memory only: no CPUs).
public struct NUMANodeMap: Hashable, Sendable {
    /// CPUs (sorted) by node number.
    public var nodes: [UInt32: [UInt32]]

    public init(_ nodes: [UInt32: [UInt32]]) { self.nodes = nodes.mapValues { Array(Set($0)).sorted() } }

    /// The CPUs of `node`, nil when the host has no such node.
    public func cpus(ofNode node: UInt32) -> [UInt32]? { nodes[node] }

    /// `node 0: 0-3; node 1: 4-7`, for messages.
    public var summary: String {
        guard !nodes.isEmpty else { return "it has no NUMA nodes" }
        return nodes.keys.sorted().map { node in
            let cpus = CPUSet.cpus(nodes[node] ?? []).cpuList
            return "node \(node): \(cpus.isEmpty ? "no CPUs" : cpus)"
        }.joined(separator: "; ")
    }

    /// From `NODE=CPULIST` entries (`0=0-3`, `1=4-7`; the `--host-numa` form), each CPULIST
    /// read as xl reads one, CPU terms only.
    /// - Throws: `ParseError.invalid` naming the entry.
    public init(entries: [String]) throws(ParseError) {
        var nodes: [UInt32: [UInt32]] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let shown = TerminalText.escape(entry)
            guard parts.count == 2, let node = UInt32(parts[0]), node <= LaunchLimits.maxCPU else {
                throw .invalid("NUMA node \"\(shown)\": give NODE=CPULIST, NODE a number up to \(LaunchLimits.maxCPU)")
            }
            guard nodes[node] == nil else { throw .invalid("NUMA node \(node) is given twice") }
            nodes[node] = try Self.cpus(String(parts[1]), of: "NUMA node \(node)")
        }
        self.init(nodes)
    }

    /// Linux's sysfs NUMA topology: every `nodeN` under `directory` with its `cpulist`.
    /// - Throws: `ParseError.invalid` naming the file that cannot be read or parsed.
    public init(sysfs directory: String = "/sys/devices/system/node") throws(ParseError) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .invalid("\(TerminalText.escape(directory)): cannot list the host's NUMA nodes")
        }
        var nodes: [UInt32: [UInt32]] = [:]
        for name in names where name.hasPrefix("node") {
            guard let node = UInt32(name.dropFirst(4)), node <= LaunchLimits.maxCPU else { continue }
            let path = "\(directory)/\(name)/cpulist"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw .invalid("\(TerminalText.escape(path)): cannot read it")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            nodes[node] = try Self.cpus(text, of: TerminalText.escape(path))
        }
        self.init(nodes)
    }

    /// A node's CPULIST: CPU terms only (Linux's cpulist format is a subset of xl's).
    private static func cpus(_ text: String, of what: String) throws(ParseError) -> [UInt32] {
        let set: CPUSet
        do {
            set = try XLCPUList.parse(text)
        } catch {
            throw .invalid("\(what): \(error.reason)")
        }
        guard case .cpus(let cpus) = set else { throw .invalid("\(what): \"\(TerminalText.escape(text))\" is not a list of CPUs") }
        return cpus
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

    /// Whether a set names NUMA nodes, which only the host resolves.
    public var namesNodes: Bool { sets.contains(where: \.namesNodes) }

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
