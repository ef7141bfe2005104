//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// A CPULIST of xl.cfg `cpus` / `cpus_soft` (xl.cfg(5) "cpus=CPULIST"), read as Xen 4.17's
/// `parse_cpurange` and `update_cpumap_range` (tools/xl/xl_parse.c) read it: comma-separated
/// terms applied in order to a bitmap of the host's CPUs — `N` or `N-M` sets, `^N` /
/// `^N-M` clears, `all` sets every CPU of the host; `node:N` / `nodes:N-M` (also with `^`)
/// set or clear every CPU of those NUMA nodes (`libxl_node_to_cpumap`); `nodes:all` is `all`.
///
/// The host is not known when a launch is described, so the result keeps what xl would
/// do without it: the CPUs a list names, "every host CPU but these" after `all`, or the
/// terms in order when some name nodes (``CPUSet/withNodes(fromAll:terms:)``), resolved
/// where the host is known (``CPUSet/resolved(hostCPUs:nodes:)``).
public enum XLCPUList {
    /// - Throws: `ParseError` with xl's reason (`Invalid pcpu range`, `Can't combine "^" and
    ///   "all"`), or for a CPU or node number above ``LaunchLimits/maxCPU``.
    public static func parse(_ text: String) throws(ParseError) -> CPUSet {
        var all = false
        var terms: [CPUListTerm] = []
        // strtok_r(buf, ",", ...): empty fields are skipped.
        for rawTerm in text.split(separator: ",", omittingEmptySubsequences: true) {
            var term = Substring(rawTerm)
            // STR_SKIP_PREFIX "^", then "node:" or "nodes:", in that order.
            let exclude = term.hasPrefix("^")
            if exclude { term = term.dropFirst() }
            let prefix = ["node:", "nodes:"].first { term.hasPrefix($0) }
            let nodes = prefix != nil
            if let prefix { term = term.dropFirst(prefix.count) }
            if term == "all" {
                // "^all" and "^nodes:all" are refused; "nodes:all" is "all".
                guard !exclude else { throw .invalid("\"\(TerminalText.escape(text))\": Can't combine \"^\" and \"all\"") }
                // libxl_bitmap_set_any: every bit, whatever the terms before set or cleared.
                all = true
                terms = []
                continue
            }
            guard let (low, high) = range(term) else {
                throw .invalid("\"\(TerminalText.escape(text))\": Invalid pcpu range: \(TerminalText.escape(String(term)))")
            }
            guard high <= UInt64(LaunchLimits.maxCPU) else {
                throw .invalid(
                    "\"\(TerminalText.escape(text))\": \(nodes ? "NUMA node" : "CPU") \(high) is above \(LaunchLimits.maxCPU), "
                        + "the highest \(nodes ? "node" : "CPU") domb describes")
            }
            terms.append(CPUListTerm(nodes: nodes, exclude: exclude, first: UInt32(low), last: UInt32(high)))
        }
        return CPUSet(fromAll: all, terms: terms)
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
