//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Prints a tree as device-tree source (`/dts-v1/`), tab-indented as dtc prints it,
/// with labels and `&label` references kept.
public enum DTSWriter {
    public static func render(_ root: DTNode, header: [String] = []) -> String {
        var out = "/dts-v1/;\n"
        for line in header { out += "// \(line)\n" }
        out += "\n"
        render(root, depth: 0, isRoot: true, into: &out)
        return out
    }

    private static func render(_ node: DTNode, depth: Int, isRoot: Bool, into out: inout String) {
        let indent = String(repeating: "\t", count: depth)
        let label = node.label.map { "\($0): " } ?? ""
        out += "\(indent)\(label)\(isRoot ? "/" : node.name) {\n"
        for property in node.properties {
            out += "\(indent)\t\(property.name)\(value(property.value));\n"
        }
        for (index, child) in node.children.enumerated() {
            if index > 0 || !node.properties.isEmpty { out += "\n" }
            render(child, depth: depth + 1, isRoot: false, into: &out)
        }
        out += "\(indent)};\n"
    }

    private static func value(_ value: DTValue) -> String {
        switch value {
        case .empty:
            return ""
        case .strings(let list):
            return " = " + list.map(quote).joined(separator: ", ")
        case .cells(let cells):
            let text = cells.map { cell -> String in
                switch cell {
                case .value(let v): return v < 1024 ? String(v) : "0x" + String(v, radix: 16)
                case .reference(let label): return "&\(label)"
                }
            }
            return " = <" + text.joined(separator: " ") + ">"
        case .bytes(let bytes):
            return " = [" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ") + "]"
        }
    }

    /// A DTS string literal: dtc understands C escapes.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
