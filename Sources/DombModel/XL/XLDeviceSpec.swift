//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

// What the device specs xl parses itself (not libxlutil) share: each kind's spec type
// (`XLNicSpec` in Devices/Vif.swift, `XLVtpmSpec`, `XLP9Spec`, `XLVkbSpec`, `XLVdisplSpec`
// beside its kind) reads its spec as Xen 4.17's tools/xl/xl_parse.c does, into the fields of
// the libxl device structure xl fills. Where xl goes on after a bad term (it prints a message
// and ignores parse_nic_config's result, or stops at a term without '='), domb refuses the
// spec instead: a term dropped silently would launch something else than the file says.

/// `strtok(buf, ",")` followed by xl's `while (*p == ' ') p++`: the non-empty fields of
/// `spec`, each without its leading spaces (tabs and trailing spaces stay, as in xl).
func xlTokens(_ spec: String) -> [Substring] {
    spec.split(separator: ",", omittingEmptySubsequences: true).map { $0.drop { $0 == " " } }
}

/// The `key=value` terms of a vtpm or p9 item, as xl walks them: `strtok` on commas,
/// leading spaces skipped, split at the first `=`. xl stops at a term without `=` and
/// ignores the rest; domb refuses the item there.
func xlKeyValues(_ spec: String, what: String) throws(ParseError) -> [(String, String)] {
    var result: [(String, String)] = []
    for token in xlTokens(spec) {
        guard let equals = token.firstIndex(of: "=") else {
            throw .invalid(
                "\(what) spec \"\(TerminalText.escape(spec))\": `\(TerminalText.escape(String(token)))' has no '=' "
                    + "(xl 4.17 stops reading there and drops the rest)")
        }
        result.append((String(token[..<equals]), String(token[token.index(after: equals)...])))
    }
    return result
}
