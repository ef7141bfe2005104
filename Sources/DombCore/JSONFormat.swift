//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The name and version of a JSON document domb writes: the top-level `"format"` (a
/// string) and `"formatVersion"` (an integer) of every `--json` output and of the documents
/// domb signs (docs/json.md). The version rule: removing or renaming a key, or changing a
/// value's type or meaning, bumps the version; adding an optional key does not.
public struct JSONFormat: Hashable, Sendable, CustomStringConvertible {
    /// `domb-…`: what the document is.
    public let name: String
    /// The version this domb writes and the only one it reads.
    public let version: Int64

    public init(_ name: String, _ version: Int64) {
        self.name = name
        self.version = version
    }

    /// `name/version`, as the docs list it.
    public var description: String { "\(name)/\(version)" }

    // MARK: The table (each name and version once; docs/json.md lists the same)

    /// `domb attest verify --json`: the verdict on a quote.
    public static let attestVerdict = JSONFormat("domb-attest-verdict", 1)
    /// `domb boot --json`: the launch report, or the refusal.
    public static let bootReport = JSONFormat("domb-boot-report", 1)
    /// `domb bundle verify --json` and `domb bundle extract --json`: the verdict on a bundle.
    public static let bundleVerdict = JSONFormat("domb-bundle-verdict", 1)
    /// A bundle's signed manifest.json (`domb bundle show --json` prints it).
    public static let launchBundle = JSONFormat("domb-launch-bundle", 1)
    /// `domb config show --json`: the LaunchSpec model, also read as a `.json` description.
    public static let launchSpec = JSONFormat("domb-launch-spec", 1)
    /// `domb inspect --json`: one entry per image.
    public static let imageInspection = JSONFormat("domb-image-inspection", 1)
    /// `domb log show --json`: a TCG event log, record by record.
    public static let eventLog = JSONFormat("domb-event-log", 1)
    /// `domb predict --json`: predicted PCR values, also read by `attest verify --expected-pcrs`.
    public static let pcrPrediction = JSONFormat("domb-pcr-prediction", 1)
    /// `domb tpm info --json`.
    public static let tpmInfo = JSONFormat("domb-tpm-info", 1)
    /// `domb xenstore plan --json` and a bundle's xenstore-plan.json.
    public static let xenstorePlan = JSONFormat("domb-xenstore-plan", 1)
    /// A sealed secret file (`domb seal`).
    public static let sealedSecret = JSONFormat("domb-sealed-secret", 1)
    /// A bundle's pcr-policy.json, the signed PCR policy.
    public static let signedPCRPolicy = JSONFormat("domb-signed-pcr-policy", 1)

    /// The format of each command's `--json` output.
    public static let ofCommand: [String: JSONFormat] = [
        "attest verify": attestVerdict, "boot": bootReport, "bundle verify": bundleVerdict, "bundle extract": bundleVerdict,
        "bundle show": launchBundle, "config show": launchSpec, "inspect": imageInspection, "log show": eventLog,
        "predict": pcrPrediction, "tpm info": tpmInfo, "xenstore plan": xenstorePlan,
    ]

    // MARK: Writing

    /// The two keys.
    public enum Key: String, CodingKey, CaseIterable {
        case format, formatVersion
    }

    /// `members` with the two keys added (they replace members of the same name).
    public func document(_ members: [String: JSONValue]) -> JSONValue {
        .object(members.merging([Key.format.rawValue: .string(name), Key.formatVersion.rawValue: .integer(version)]) { $1 })
    }

    /// Writes the two keys into the encoder's top-level object (the value's own keys go
    /// into the same object).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(name, forKey: .format)
        try container.encode(version, forKey: .formatVersion)
    }

    // MARK: Reading

    /// Checks the two keys of a document being decoded.
    ///
    /// - Parameter optional: a document without either key is accepted (hand-written input,
    ///   or one written before the keys existed).
    /// - Throws: ``ParseError`` (`unsupported`) for another name or another version, or
    ///   when only one of the two keys is there: `format "x" is not "domb-…"`.
    public func check(_ decoder: any Decoder, optional: Bool) throws {
        let container = try decoder.container(keyedBy: Key.self)
        try check(
            name: try container.decodeIfPresent(String.self, forKey: .format),
            version: try container.decodeIfPresent(Int64.self, forKey: .formatVersion), optional: optional)
    }

    /// ``check(_:optional:)`` for a document held as a ``JSONValue`` object.
    public func check(_ members: [String: JSONValue], optional: Bool) throws(ParseError) {
        let name = members[Key.format.rawValue]
        let version = members[Key.formatVersion.rawValue]
        guard name == nil || name?.stringValue != nil else { throw .invalid("\"format\" is not a string") }
        guard version == nil || version?.integerValue != nil else { throw .invalid("\"formatVersion\" is not an integer") }
        try check(name: name?.stringValue, version: version?.integerValue, optional: optional)
    }

    private func check(name given: String?, version givenVersion: Int64?, optional: Bool) throws(ParseError) {
        switch (given, givenVersion) {
        case (nil, nil):
            guard optional else { throw .unsupported("no \"format\": not a \(name) document") }
        case (let given?, nil):
            guard given == name else { throw .unsupported("format \"\(given)\" is not \"\(name)\"") }
            throw .unsupported("format \"\(name)\" without \"formatVersion\"")
        case (nil, _?):
            throw .unsupported("\"formatVersion\" without \"format\" (\"\(name)\")")
        case (let given?, let givenVersion?):
            guard given == name else { throw .unsupported("format \"\(given)\" is not \"\(name)\"") }
            guard givenVersion == version else {
                throw .unsupported("\(name) formatVersion \(givenVersion) is not supported (this domb reads version \(version))")
            }
        }
    }
}

extension JSONOutput {
    /// The document of `value` (whose own keys form an object) with `format`'s two keys
    /// added at the top level, as ``text(_:)`` writes it.
    public static func text(_ value: some Encodable, format: JSONFormat) throws -> String {
        try text(Formatted(format: format, value: value))
    }

    private struct Formatted<Value: Encodable>: Encodable {
        var format: JSONFormat
        var value: Value

        func encode(to encoder: any Encoder) throws {
            // The keyed container first: a value that is not an object cannot be formatted.
            try format.encode(to: encoder)
            try value.encode(to: encoder)
        }
    }
}
