//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension XenstorePlan {
    /// The plan's canonical bytes: JSON (RFC 8259) with a fixed key order, one node per
    /// line, only `"`, `\` and control characters escaped (as `\"`, `\\`, `\n`, `\t`,
    /// `\u00XX`), UTF-8, ending in a newline. Equal plans give equal bytes, so the bundle
    /// can carry the plan and the manifest its digest; `JSONDecoder` reads it back.
    public func canonicalBytes() -> [UInt8] {
        var out = "{\"format\":\(Self.quote(format)),\"domains\":["
        for (index, domain) in domains.enumerated() {
            out += index == 0 ? "\n" : ",\n"
            out += "{\"name\":\(Self.quote(domain.name)),\"domid\":\(Self.quote(domain.domid.text)),"
            out += "\"introduce\":{\"domid\":\(Self.quote(domain.introduce.domid.text)),"
            out += "\"ringRef\":\(Self.quote(domain.introduce.ringRef.text)),\"port\":\(Self.quote(domain.introduce.port.text))},"
            out += "\"remove\":[" + domain.remove.map { Self.quote($0.text) }.joined(separator: ",") + "],"
            out += "\"nodes\":["
            for (nodeIndex, node) in domain.nodes.enumerated() {
                out += nodeIndex == 0 ? "\n" : ",\n"
                out += "{\"path\":\(Self.quote(node.path.text)),\"value\":\(Self.quote(node.value.text)),"
                out += "\"perms\":[" + node.perms.map { Self.quote($0.description) }.joined(separator: ",") + "]"
                // Only where set, so plans without kept nodes keep their bytes.
                out += node.keep ? ",\"keep\":true}" : "}"
            }
            out += "]}"
        }
        out += "]}\n"
        return Array(out.utf8)
    }

    /// The digests of `canonicalBytes()` in the given banks, computed by `hash` (the bundle
    /// passes DombCrypto's multi-bank hasher): the hook that measures the plan as
    /// configuration.
    public func digests(_ hash: ([UInt8]) throws -> DigestSet) rethrows -> DigestSet {
        try hash(canonicalBytes())
    }

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
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
