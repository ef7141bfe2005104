//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One file of a bundle as the manifest records it: where it is, its size, and its
/// digest in every bank the manifest names.
public struct BundleMember: Hashable, Sendable {
    public var path: String
    public var size: UInt64
    public var digests: DigestSet

    public init(path: String, size: UInt64, digests: DigestSet) {
        self.path = path
        self.size = size
        self.digests = digests
    }
}

/// A boot module of a domain in the manifest.
public struct BundleModule: Hashable, Sendable {
    /// `kernel`, `ramdisk`, `device-tree`, `config`, `firmware`; a second module of the
    /// same kind gets a `-1`, `-2`… suffix.
    public var role: String
    public var member: BundleMember

    public init(role: String, member: BundleMember) {
        self.role = role
        self.member = member
    }
}

/// A domain and its modules, in boot-module order.
public struct BundleDomain: Hashable, Sendable {
    public var name: String
    public var modules: [BundleModule]

    public init(name: String, modules: [BundleModule]) {
        self.name = name
        self.modules = modules
    }
}

/// The signed description of a launch bundle (docs/bundle.md, "Manifest").
///
/// Serialised only as canonical JSON (``JSONValue/canonicalBytes``); the signature covers
/// exactly those bytes.
public struct BundleManifest: Hashable, Sendable {
    /// The value of the `format` key.
    public static let format = JSONFormat.launchBundle.name
    /// The only `formatVersion` this build reads and writes.
    public static let currentFormatVersion = JSONFormat.launchBundle.version

    public var formatVersion: Int64 = currentFormatVersion
    /// Monotonically increasing release number; verifiers refuse one below their minimum
    /// (rollback protection, which signatures alone do not give).
    public var generation: UInt64
    /// The PCR banks every member is hashed in; always includes sha256.
    public var banks: [HashAlgorithm]
    public var domains: [BundleDomain]
    public var launchDTB: BundleMember?
    public var xenstorePlan: BundleMember?
    public var predictedEventLog: BundleMember?
    /// `signer.pem` in CMS mode (covered like any member; not a trust anchor).
    public var signerCertificates: BundleMember?
    /// `pcr-policy.json`: the PCR policy signed for the predicted PCRs (docs/secrets.md).
    public var signedPCRPolicy: BundleMember?
    /// Which PCR each class of measurement goes to (e.g. `configuration`: 12, `images`: 13).
    public var pcrPolicy: [String: Int]
    /// The PCR values expected after the launch, per bank.
    public var predictedPCRs: PCRValues

    public init(
        generation: UInt64, banks: [HashAlgorithm], domains: [BundleDomain], launchDTB: BundleMember? = nil,
        xenstorePlan: BundleMember? = nil, predictedEventLog: BundleMember? = nil,
        signerCertificates: BundleMember? = nil, pcrPolicy: [String: Int] = [:], predictedPCRs: PCRValues = PCRValues()
    ) {
        self.generation = generation
        self.banks = banks
        self.domains = domains
        self.launchDTB = launchDTB
        self.xenstorePlan = xenstorePlan
        self.predictedEventLog = predictedEventLog
        self.signerCertificates = signerCertificates
        self.pcrPolicy = pcrPolicy
        self.predictedPCRs = predictedPCRs
    }

    /// Every member the manifest lists, in archive order (modules first, then metadata).
    public var members: [BundleMember] {
        domains.flatMap { $0.modules.map(\.member) }
            + [launchDTB, xenstorePlan, predictedEventLog, signerCertificates, signedPCRPolicy].compactMap { $0 }
    }

    // MARK: JSON

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "format": .string(Self.format),
            "formatVersion": .integer(formatVersion),
            "generation": .integer(Int64(clamping: generation)),
            "banks": .array(banks.map { .string($0.name) }),
            "domains": .array(
                domains.map { domain in
                    .object([
                        "name": .string(domain.name),
                        "modules": .array(
                            domain.modules.map { module in
                                var entry = Self.memberJSON(module.member)
                                entry["role"] = .string(module.role)
                                return .object(entry)
                            }),
                    ])
                }),
            "pcrPolicy": .object(pcrPolicy.mapValues { .integer(Int64($0)) }),
            "predictedPCRs": .object(
                Dictionary(
                    uniqueKeysWithValues: predictedPCRs.algorithms.map { bank in
                        (
                            bank.name,
                            JSONValue.object(
                                Dictionary(
                                    uniqueKeysWithValues: predictedPCRs.pcrs(in: bank).map { pcr in
                                        (String(pcr), JSONValue.string((predictedPCRs[bank, pcr] ?? []).hexString))
                                    }))
                        )
                    })),
        ]
        if let launchDTB { object["launchDTB"] = .object(Self.memberJSON(launchDTB)) }
        if let xenstorePlan { object["xenstorePlan"] = .object(Self.memberJSON(xenstorePlan)) }
        if let predictedEventLog { object["predictedEventLog"] = .object(Self.memberJSON(predictedEventLog)) }
        if let signerCertificates { object["signerCertificates"] = .object(Self.memberJSON(signerCertificates)) }
        if let signedPCRPolicy { object["signedPCRPolicy"] = .object(Self.memberJSON(signedPCRPolicy)) }
        return .object(object)
    }

    /// The bytes that are signed.
    public var canonicalBytes: [UInt8] { json.canonicalBytes }

    private static func memberJSON(_ member: BundleMember) -> [String: JSONValue] {
        [
            "path": .string(member.path),
            "size": .integer(Int64(clamping: member.size)),
            "digests": .object(
                Dictionary(uniqueKeysWithValues: member.digests.digests.map { ($0.algorithm.name, .string($0.bytes.hexString)) })),
        ]
    }

    /// Decodes and validates a manifest that must be in canonical form.
    ///
    /// Unknown keys are refused (a verifier must not ignore something the signer meant).
    /// - Throws: ``ParseError`` naming the key path that is wrong.
    public init(canonicalBytes bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= BundleLayout.maximumManifestSize else {
            throw .limit("manifest is \(bytes.count) bytes, more than \(BundleLayout.maximumManifestSize)")
        }
        try self.init(json: try JSONValue(canonical: bytes))
    }

    public init(json: JSONValue) throws(ParseError) {
        let root = try Self.object(json, "manifest")
        try Self.onlyKeys(
            root,
            required: ["format", "formatVersion", "generation", "banks", "domains", "pcrPolicy", "predictedPCRs"],
            optional: ["launchDTB", "xenstorePlan", "predictedEventLog", "signerCertificates", "signedPCRPolicy"], at: "manifest")
        guard root["format"]?.stringValue == Self.format else {
            throw .invalid("manifest.format is not \"\(Self.format)\"")
        }
        let version = try Self.integer(root["formatVersion"], "manifest.formatVersion")
        guard version == Self.currentFormatVersion else {
            throw ParseError(.unsupported, "manifest.formatVersion \(version) is not supported (this domb reads \(Self.currentFormatVersion))")
        }
        formatVersion = version
        let generation = try Self.integer(root["generation"], "manifest.generation")
        guard generation >= 0 else { throw .invalid("manifest.generation is negative") }
        self.generation = UInt64(generation)

        guard let bankList = root["banks"]?.arrayValue, !bankList.isEmpty else {
            throw .invalid("manifest.banks must be a non-empty array")
        }
        var banks: [HashAlgorithm] = []
        for (index, item) in bankList.enumerated() {
            guard let name = item.stringValue, let bank = HashAlgorithm(name: name), bank.digestSize != nil,
                bank.name == name
            else { throw .invalid("manifest.banks[\(index)] is not a known bank name") }
            guard !banks.contains(bank) else { throw .invalid("manifest.banks lists \(name) twice") }
            banks.append(bank)
        }
        guard banks == banks.sorted() else { throw .invalid("manifest.banks is not in TPM_ALG_ID order") }
        guard banks.contains(.sha256) else { throw .invalid("manifest.banks must include sha256") }
        self.banks = banks

        guard let domainList = root["domains"]?.arrayValue else { throw .invalid("manifest.domains must be an array") }
        var domains: [BundleDomain] = []
        var domainNames: Set<String> = []
        for (index, item) in domainList.enumerated() {
            let at = "manifest.domains[\(index)]"
            let domain = try Self.object(item, at)
            try Self.onlyKeys(domain, required: ["name", "modules"], optional: [], at: at)
            guard let name = domain["name"]?.stringValue, BundleLayout.isSafeComponent(name) else {
                throw .invalid("\(at).name is missing or not a safe name")
            }
            guard domainNames.insert(name).inserted else { throw .invalid("\(at): domain \(name) is listed twice") }
            guard let moduleList = domain["modules"]?.arrayValue else { throw .invalid("\(at).modules must be an array") }
            var modules: [BundleModule] = []
            for (moduleIndex, moduleItem) in moduleList.enumerated() {
                let moduleAt = "\(at).modules[\(moduleIndex)]"
                let module = try Self.object(moduleItem, moduleAt)
                try Self.onlyKeys(module, required: ["role", "path", "size", "digests"], optional: [], at: moduleAt)
                guard let role = module["role"]?.stringValue, BundleLayout.isSafeComponent(role) else {
                    throw .invalid("\(moduleAt).role is missing or not a safe name")
                }
                let member = try Self.member(module, banks: banks, at: moduleAt)
                guard member.path == BundleLayout.modulePath(domain: name, role: role) else {
                    throw .invalid("\(moduleAt).path is \(member.path), expected \(BundleLayout.modulePath(domain: name, role: role))")
                }
                modules.append(BundleModule(role: role, member: member))
            }
            domains.append(BundleDomain(name: name, modules: modules))
        }
        self.domains = domains

        func optionalMember(_ key: String, path: String) throws(ParseError) -> BundleMember? {
            guard let value = root[key] else { return nil }
            let object = try Self.object(value, "manifest.\(key)")
            try Self.onlyKeys(object, required: ["path", "size", "digests"], optional: [], at: "manifest.\(key)")
            let member = try Self.member(object, banks: banks, at: "manifest.\(key)")
            guard member.path == path else { throw .invalid("manifest.\(key).path must be \(path)") }
            return member
        }
        launchDTB = try optionalMember("launchDTB", path: BundleLayout.launchDTB)
        xenstorePlan = try optionalMember("xenstorePlan", path: BundleLayout.xenstorePlan)
        predictedEventLog = try optionalMember("predictedEventLog", path: BundleLayout.predictedEventLog)
        signerCertificates = try optionalMember("signerCertificates", path: BundleLayout.signerCertificates)
        signedPCRPolicy = try optionalMember("signedPCRPolicy", path: BundleLayout.signedPCRPolicy)

        var policy: [String: Int] = [:]
        for (key, value) in try Self.object(root["pcrPolicy"] ?? .null, "manifest.pcrPolicy") {
            let pcr = try Self.integer(value, "manifest.pcrPolicy.\(key)")
            guard (0..<Int64(PCRValues.pcrCount)).contains(pcr) else {
                throw .invalid("manifest.pcrPolicy.\(key) = \(pcr) is not a PCR index 0-23")
            }
            policy[key] = Int(pcr)
        }
        pcrPolicy = policy

        var predicted = PCRValues()
        for (bankName, value) in try Self.object(root["predictedPCRs"] ?? .null, "manifest.predictedPCRs") {
            let at = "manifest.predictedPCRs.\(bankName)"
            guard let bank = HashAlgorithm(name: bankName), bank.name == bankName, banks.contains(bank),
                let size = bank.digestSize
            else { throw .invalid("\(at): not one of manifest.banks") }
            for (pcrText, digestValue) in try Self.object(value, at) {
                guard let pcr = Int(pcrText), String(pcr) == pcrText, (0..<PCRValues.pcrCount).contains(pcr) else {
                    throw .invalid("\(at): \"\(pcrText)\" is not a PCR index 0-23")
                }
                guard let text = digestValue.stringValue, let digest = [UInt8](hex: text), digest.count == size,
                    text == digest.hexString
                else { throw .invalid("\(at).\(pcrText) is not a lower-case \(size)-byte hex digest") }
                predicted[bank, pcr] = digest
            }
        }
        predictedPCRs = predicted

        var seen = Set<String>()
        for member in members where !seen.insert(member.path).inserted {
            throw .invalid("manifest lists \(member.path) twice")
        }
        guard seen.count <= BundleLayout.maximumMembers else {
            throw .limit("manifest lists \(seen.count) members, more than \(BundleLayout.maximumMembers)")
        }
    }

    private static func object(_ value: JSONValue, _ at: String) throws(ParseError) -> [String: JSONValue] {
        guard let object = value.objectValue else { throw .invalid("\(at) must be an object") }
        return object
    }

    private static func integer(_ value: JSONValue?, _ at: String) throws(ParseError) -> Int64 {
        guard let number = value?.integerValue else { throw .invalid("\(at) must be an integer") }
        return number
    }

    private static func onlyKeys(
        _ object: [String: JSONValue], required: Set<String>, optional: Set<String>, at: String
    ) throws(ParseError) {
        for key in required.sorted() where object[key] == nil { throw .invalid("\(at).\(key) is missing") }
        for key in object.keys.sorted() where !required.contains(key) && !optional.contains(key) {
            throw .invalid("\(at) has an unknown key \"\(key)\"")
        }
    }

    private static func member(_ object: [String: JSONValue], banks: [HashAlgorithm], at: String) throws(ParseError)
        -> BundleMember
    {
        guard let path = object["path"]?.stringValue, BundleLayout.isSafePath(path) else {
            throw .invalid("\(at).path is missing or not a safe relative path")
        }
        let size = try integer(object["size"], "\(at).size")
        guard size >= 0, UInt64(size) <= BundleLayout.sizeLimit(for: path) else {
            throw .limit("\(at).size \(size) is outside 0…\(BundleLayout.sizeLimit(for: path))")
        }
        let digestObject = try Self.object(object["digests"] ?? .null, "\(at).digests")
        var digests = DigestSet()
        for bank in banks {
            guard let text = digestObject[bank.name]?.stringValue, let bytes = [UInt8](hex: text),
                bytes.count == bank.digestSize, text == bytes.hexString
            else { throw .invalid("\(at).digests.\(bank.name) is missing or not a lower-case hex digest") }
            digests[bank] = bytes
        }
        guard digestObject.count == banks.count else {
            throw .invalid("\(at).digests has banks that manifest.banks does not list")
        }
        return BundleMember(path: path, size: UInt64(size), digests: digests)
    }
}
