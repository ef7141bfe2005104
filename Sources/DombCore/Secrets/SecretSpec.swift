//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Where an unsealed secret goes (docs/secrets.md, "Delivery and its trade-offs").
public enum SecretDelivery: String, Hashable, Sendable, Codable, CaseIterable {
    /// A root-only file, `<secrets directory>/<domain>/<name>` (mode 0400 in a 0700
    /// directory on a tmpfs): for a backend that runs in the control domain.
    case file
    /// The domain's own Xenstore node `/local/domain/<domid>/domb/secrets/<name>`, base64,
    /// owned by that domain with no access for others: for a guest to read (and delete).
    case xenstore
}

/// One secret a domain receives at launch: the sealed file on this host and how the
/// unsealed bytes reach the domain.
public struct SecretSpec: Hashable, Sendable, Codable {
    /// A path component (`[A-Za-z0-9._-]`, 1–64 bytes): the file or Xenstore node name.
    public var name: String
    /// The `domb seal` output on this host (sealed objects belong to one TPM, so they are
    /// not bundle members).
    public var sealedPath: String
    public var delivery: SecretDelivery

    public init(name: String, sealedPath: String, delivery: SecretDelivery = .file) {
        self.name = name
        self.sealedPath = sealedPath
        self.delivery = delivery
    }

    /// The Xenstore node a ``SecretDelivery/xenstore`` secret is written to.
    public static func xenstorePath(domid: UInt32, name: String) -> String {
        "/local/domain/\(domid)/domb/secrets/\(name)"
    }

    /// Parses `--secret DOMAIN=SEALED[,to=file|xenstore][,name=NAME]`. The name defaults to
    /// the sealed file's base name without its last extension (`disk-key.sealed` → `disk-key`).
    /// - Throws: ``ParseError`` naming what is wrong with the text.
    public static func parseBinding(_ text: String) throws(ParseError) -> (domain: String, secret: SecretSpec) {
        guard let equals = text.firstIndex(of: "=") else {
            throw .invalid("--secret \"\(text)\": expected DOMAIN=SEALED[,to=file|xenstore][,name=NAME]")
        }
        let domain = String(text[..<equals])
        guard BundleLayout.isSafeComponent(domain) else { throw .invalid("--secret \"\(text)\": \"\(domain)\" is not a domain name") }
        return (domain, try SecretSpec(parsing: String(text[text.index(after: equals)...]), context: "--secret \"\(text)\""))
    }

    /// Parses `SEALED[,to=file|xenstore][,name=NAME]`: a `--secret` value after `DOMAIN=`, or
    /// one entry of a domain's `domb,secrets` in the launch description.
    /// - Parameter context: what the text is, for errors (`--secret "…"`, a node's property).
    /// - Throws: ``ParseError`` naming `context` and what is wrong.
    public init(parsing text: String, context: String) throws(ParseError) {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let path = parts.first, !path.isEmpty else { throw .invalid("\(context): no sealed file") }
        parts.removeFirst()
        var delivery = SecretDelivery.file
        let base = path.split(separator: "/").last.map(String.init) ?? path
        var name = base.lastIndex(of: ".").map { String(base[..<$0]) } ?? base
        if name.isEmpty { name = base }
        for option in parts {
            if option.hasPrefix("to="), let chosen = SecretDelivery(rawValue: String(option.dropFirst(3))) {
                delivery = chosen
            } else if option.hasPrefix("name=") {
                name = String(option.dropFirst(5))
            } else {
                throw .invalid("\(context): unknown option \"\(option)\" (to=file, to=xenstore, name=NAME)")
            }
        }
        guard BundleLayout.isSafeComponent(name) else {
            throw .invalid("\(context): the secret name \"\(name)\" must be 1-64 characters of [A-Za-z0-9._-]; give name=NAME")
        }
        self.init(name: name, sealedPath: path, delivery: delivery)
    }

    /// The text ``init(parsing:context:)`` reads back, name and delivery always spelled out.
    public var text: String { "\(sealedPath),to=\(delivery.rawValue),name=\(name)" }
}
