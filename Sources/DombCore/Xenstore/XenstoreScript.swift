//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension XenstorePlan {
    /// A POSIX shell script an operator can run in dom0 to write the plan by hand with
    /// `xenstore-rm`, `xenstore-write` and `xenstore-chmod`.
    ///
    /// Placeholders become shell variables the operator sets first (`DOMID_web`,
    /// `STORE_PORT_web`, ...); the script refuses to run while one is unset. Unlike
    /// `domb xenstore apply` it is not one transaction, and it does not introduce the
    /// domains (the commands for that are printed as comments).
    public func shellScript() -> String {
        var variables: [String: XenstorePlaceholder] = [:]
        for placeholder in placeholders { variables[Self.variable(placeholder)] = placeholder }
        var out = "#!/bin/sh\n# Xenstore plan written by domb (\(Self.format)); see docs/xenstore.md.\nset -eu\n"
        if !variables.isEmpty {
            out += "# Values only known once the domains are built:\n"
            for (name, placeholder) in variables.sort(by: { $0.key < $1.key }) {
                out += ": \"${\(name):?set \(name) to the \(placeholder.kind.rawValue) of domain \(Self.shellQuote(placeholder.domain))}\"\n"
            }
        }
        // As `apply` does: the values daemons own saved, then every stale subtree removed,
        // then the nodes in plan order.
        var kept: [String: String] = [:]
        for node in domains.flatMap(\.nodes) where node.keep {
            let name = "kept_\(kept.count + 1)"
            kept[node.path.text] = name
            if kept.count == 1 { out += "\n# Values a backend daemon already wrote (xenconsoled's tty) are kept\n" }
            out += "if \(name)=$(xenstore-read \(render(node.path)) 2>/dev/null); then :; else \(name)=\(render(node.value)); fi\n"
        }
        out += "\n# Stale subtrees of earlier domains with the same ids\n"
        for domain in domains {
            for path in domain.remove { out += "xenstore-rm \(render(path)) 2>/dev/null || true\n" }
        }
        for domain in domains {
            out += "\n# Domain \(domain.name.replacing("\n", with: " "))\n"
            for node in domain.nodes {
                let value = kept[node.path.text].map { "\"$\($0)\"" } ?? render(node.value, escapeBackslash: true)
                out += "xenstore-write \(render(node.path)) \(value)\n"
                out += "xenstore-chmod \(render(node.path))" + node.perms.map { " " + render("\($0.access.rawValue)\($0.domid)") }.joined() + "\n"
            }
            out += "# then introduce it: xs_introduce_domain(\(domain.introduce.domid), \(domain.introduce.ringRef), \(domain.introduce.port))\n"
        }
        return out
    }

    static func variable(_ placeholder: XenstorePlaceholder) -> String {
        let kind = placeholder.kind.rawValue.uppercased().replacing("-", with: "_")
        let domain = String(placeholder.domain.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        return "\(kind)_\(domain)"
    }

    /// One shell word: literal parts single-quoted, placeholders as "${VAR}".
    /// `xenstore-write` unescapes `\` sequences in values, so a value's `\` is doubled.
    func render(_ template: XenstoreTemplate, escapeBackslash: Bool = false) -> String {
        var word = ""
        for segment in template.segments {
            switch segment {
            case .literal(let literal):
                let text = escapeBackslash ? literal.replacing("\\", with: "\\\\") : literal
                word += Self.shellQuote(text)
            case .placeholder(let placeholder):
                word += "\"${\(Self.variable(placeholder))}\""
            }
        }
        return word.isEmpty ? "''" : word
    }

    static func shellQuote(_ text: String) -> String {
        "'" + text.replacing("'", with: "'\\''") + "'"
    }
}

extension Dictionary {
    fileprivate func sort(by areInIncreasingOrder: ((key: Key, value: Value), (key: Key, value: Value)) -> Bool) -> [(key: Key, value: Value)] {
        sorted(by: areInIncreasingOrder)
    }
}
