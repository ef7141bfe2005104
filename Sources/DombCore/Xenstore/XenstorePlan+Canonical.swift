//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension XenstorePlan {
    /// The plan as a JSON value, with the keys `JSONDecoder` reads back.
    public var jsonValue: JSONValue {
        Self.format.document([
            "domains": .array(
                domains.map { domain in
                    .object([
                        "name": .string(domain.name),
                        "domid": .string(domain.domid.text),
                        "introduce": .object([
                            "domid": .string(domain.introduce.domid.text),
                            "ringRef": .string(domain.introduce.ringRef.text),
                            "port": .string(domain.introduce.port.text),
                        ]),
                        "remove": .array(domain.remove.map { .string($0.text) }),
                        "nodes": .array(
                            domain.nodes.map { node in
                                var object: [String: JSONValue] = [
                                    "path": .string(node.path.text),
                                    "value": .string(node.value.text),
                                    "perms": .array(node.perms.map { .string($0.description) }),
                                ]
                                // Only where set (``XenstorePlan/Node/keep``).
                                if node.keep { object["keep"] = .bool(true) }
                                return .object(object)
                            }),
                    ])
                }),
        ])
    }

    /// The plan's canonical bytes: domb's one canonical JSON form (``JSONValue``,
    /// docs/bundle.md "Canonical JSON": sorted keys, no whitespace, minimal escapes). Equal
    /// plans give equal bytes, so the bundle can carry the plan and the manifest its digest.
    public func canonicalBytes() -> [UInt8] { jsonValue.canonicalBytes }

    /// The digests of `canonicalBytes()` in the given banks, computed by `hash` (the bundle
    /// passes DombCrypto's multi-bank hasher): the hook that measures the plan as
    /// configuration.
    public func digests(_ hash: ([UInt8]) throws -> DigestSet) rethrows -> DigestSet {
        try hash(canonicalBytes())
    }
}
