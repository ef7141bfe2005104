//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// A CPULIST of xl.cfg `cpus` / `cpus_soft` (xl.cfg(5) "cpus=CPULIST"), read as Xen 4.17's
/// `parse_cpurange` and `update_cpumap_range` (tools/xl/xl_parse.c) read it: comma-separated
/// terms applied in order to a bitmap of the host's CPUs — `N` or `N-M` adds, `^N` /
/// `^N-M` removes, `all` sets every CPU of the host; `node:N` / `nodes:N-M` name NUMA nodes.
///
/// The host is not known when a launch is described, so the result keeps what xl would
/// do without it: the CPUs a list names, or "every host CPU but these" after `all`.
public enum XLCPUList {
    /// - Throws: `ParseError` with xl's reason (`Invalid pcpu range`, `Can't combine "^" and
    ///   "all"`), or `.unsupported` for NUMA node terms, which only the host's topology
    ///   resolves.
    public static func parse(_ text: String) throws(ParseError) -> CPUSet {
        var all = false
        var added: Set<UInt32> = []
        var removed: Set<UInt32> = []
        // strtok_r(buf, ",", ...): empty fields are skipped.
        for rawTerm in text.split(separator: ",", omittingEmptySubsequences: true) {
            var term = Substring(rawTerm)
            let exclude = term.hasPrefix("^")
            if exclude { term = term.dropFirst() }
            if term.hasPrefix("node:") || term.hasPrefix("nodes:") {
                throw .unsupported(
                    "\"\(TerminalText.escape(text))\" names NUMA nodes (\(TerminalText.escape(String(term)))): "
                        + "only the host's topology says which CPUs they hold; list the CPUs")
            }
            if term == "all" {
                guard !exclude else { throw .invalid("\"\(TerminalText.escape(text))\": Can't combine \"^\" and \"all\"") }
                all = true
                added = []
                removed = []
                continue
            }
            guard let (low, high) = range(term) else {
                throw .invalid("\"\(TerminalText.escape(text))\": Invalid pcpu range: \(TerminalText.escape(String(term)))")
            }
            guard high <= UInt64(LaunchLimits.maxCPU) else {
                throw .invalid(
                    "\"\(TerminalText.escape(text))\": CPU \(high) is above \(LaunchLimits.maxCPU), the highest CPU domb describes")
            }
            for cpu in UInt32(low)...UInt32(high) {
                if exclude {
                    removed.insert(cpu)
                    added.remove(cpu)
                } else {
                    added.insert(cpu)
                    removed.remove(cpu)
                }
            }
        }
        return all ? .allBut(removed.sorted()) : .cpus(added.sorted())
    }

    /// `parse_range`: `strtoul(…, 10)` for each bound, an optional `-` and a second bound
    /// not below the first, nothing after. xl refuses a bound of ULONG_MAX (what C gives for
    /// `-1` or an overflow); domb refuses every negative bound.
    static func range(_ term: Substring) -> (UInt64, UInt64)? {
        let low = CStrtoul(term, base: 10)
        guard low.converted, !low.negative, !low.overflow else { return nil }
        var high = low
        if low.rest.first == "-" {
            high = CStrtoul(low.rest.dropFirst(), base: 10)
            guard high.converted, !high.negative, !high.overflow, high.value >= low.value else { return nil }
        }
        return high.rest.isEmpty ? (low.value, high.value) : nil
    }
}
