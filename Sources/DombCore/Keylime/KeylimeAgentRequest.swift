//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A request to `domb agent`, parsed from the method and request target exactly as far as
/// Keylime's pull-model agent API (v2.1–2.5) defines it: rust-keylime
/// `keylime-agent/src/{api,quotes_handler,keys_handler,agent_handler}.rs`, called by
/// keylime 7.14 `tenant.py` (`/quotes/identity`) and `cloud_verifier_tornado.py`
/// (`/quotes/integrity`).
///
/// Parsing is pure and total: any byte string yields a route or a ``KeylimeAgentRequest/Rejection``
/// with the HTTP status to answer, never a crash (`FuzzTesting/`, property tests).
public enum KeylimeAgentRequest: Hashable, Sendable {
    /// `GET /version`.
    case version
    /// `GET /v<api>/quotes/identity?nonce=…`: a quote over PCR 16 only, with the agent's key.
    case identityQuote(api: KeylimeAPIVersion, nonce: String)
    /// `GET /v<api>/quotes/integrity?nonce=…&mask=0x…&partial=0|1[&ima_ml_entry=N]`.
    case integrityQuote(api: KeylimeAPIVersion, nonce: String, mask: UInt32, partial: Bool, imaEntry: UInt64)
    /// `GET /v<api>/keys/pubkey`: the agent's (NK) public key.
    case publicKey(api: KeylimeAPIVersion)
    /// `GET /v<api>/agent/info` (API 2.2 and later).
    case info(api: KeylimeAPIVersion)
    /// `POST /v<api>/keys/ukey|vkey`, `GET /v<api>/keys/verify`, `POST
    /// /v<api>/notifications/revocation`: payload delivery and revocation, which domb does
    /// not implement (answered 501 with a reason; Keylime sends them only when the tenant
    /// delivers a payload with -f/-k/--cert or a revocation is configured).
    case unsupported(api: KeylimeAPIVersion, what: String)

    /// The API versions domb speaks: those of rust-keylime 0.2.9 (`SUPPORTED_API_VERSIONS`).
    public static let supportedVersions: [KeylimeAPIVersion] = [
        .init(2, 1), .init(2, 2), .init(2, 3), .init(2, 4), .init(2, 5),
    ]
    /// The longest request target accepted (a verifier's is about 150 bytes).
    public static let maximumTargetLength = 2048
    /// At most this many query parameters.
    public static let maximumParameters = 16
    /// rust-keylime `tpm::MAX_NONCE_SIZE`: the nonce becomes TPM2_Quote's qualifyingData.
    public static let maximumNonceLength = 64

    /// Why a request is refused, and with which status.
    public struct Rejection: Error, Hashable, Sendable, CustomStringConvertible {
        public var status: Int
        public var message: String
        public init(_ status: Int, _ message: String) {
            self.status = status
            self.message = message
        }
        public var description: String { "\(status) \(message)" }
    }

    /// Parses `method` and the request `target` (path and query, as in the request line).
    public init(method: String, target: String) throws(Rejection) {
        guard target.utf8.count <= Self.maximumTargetLength else {
            throw Rejection(414, "request target longer than \(Self.maximumTargetLength) bytes")
        }
        guard target.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw Rejection(400, "request target contains bytes outside printable ASCII")
        }
        let pathPart: Substring
        let queryPart: Substring
        if let question = target.firstIndex(of: "?") {
            pathPart = target[..<question]
            queryPart = target[target.index(after: question)...]
        } else {
            pathPart = target[...]
            queryPart = ""
        }
        guard pathPart.hasPrefix("/") else { throw Rejection(400, "request target is not an absolute path") }
        let segments = pathPart.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if segments == ["version"] {
            guard method == "GET" else { throw Rejection(405, "only GET is allowed on /version") }
            self = .version
            return
        }
        guard let first = segments.first else { throw Rejection(404, "no such resource: /") }
        guard first.hasPrefix("v"), let api = KeylimeAPIVersion(parsing: String(first.dropFirst())) else {
            throw Rejection(404, "no such resource (paths are /version and /v<major>.<minor>/…)")
        }
        guard Self.supportedVersions.contains(api) else {
            // Keylime's verifier looks for exactly this phrase to renegotiate the version.
            throw Rejection(400, "API version not supported: \(api); supported: \(Self.supportedVersions.map(\.description).joined(separator: ", "))")
        }
        let rest = Array(segments.dropFirst())
        let query = try Self.parseQuery(queryPart)
        switch (method, rest) {
        case ("GET", ["quotes", "identity"]):
            self = .identityQuote(api: api, nonce: try Self.nonce(query))
        case ("GET", ["quotes", "integrity"]):
            let nonce = try Self.nonce(query)
            guard let maskText = query["mask"] else { throw Rejection(400, "mask is missing") }
            let digits = maskText.hasPrefix("0x") || maskText.hasPrefix("0X") ? String(maskText.dropFirst(2)) : maskText
            guard !digits.isEmpty, digits.count <= 8, let mask = UInt32(digits, radix: 16) else {
                throw Rejection(400, "mask should be a hex encoded 32-bit integer")
            }
            guard mask & 0xFF00_0000 == 0 else { throw Rejection(400, "mask selects a PCR above 23") }
            let partial: Bool
            switch query["partial"] {
            case "0": partial = false
            case "1": partial = true
            default: throw Rejection(400, "uri must contain key 'partial' and value '0' or '1'")
            }
            var entry: UInt64 = 0
            if let text = query["ima_ml_entry"], !text.isEmpty {
                guard let value = UInt64(text) else { throw Rejection(400, "ima_ml_entry must be a decimal count") }
                entry = value
            }
            self = .integrityQuote(api: api, nonce: nonce, mask: mask, partial: partial, imaEntry: entry)
        case ("GET", ["keys", "pubkey"]):
            self = .publicKey(api: api)
        case ("GET", ["agent", "info"]):
            guard api >= KeylimeAPIVersion(2, 2) else { throw Rejection(404, "/agent/info exists from API 2.2 on") }
            self = .info(api: api)
        case ("POST", ["keys", "ukey"]), ("POST", ["keys", "vkey"]), ("GET", ["keys", "verify"]),
            ("POST", ["notifications", "revocation"]):
            self = .unsupported(api: api, what: rest.joined(separator: "/"))
        case (_, ["quotes", "identity"]), (_, ["quotes", "integrity"]), (_, ["keys", "pubkey"]), (_, ["agent", "info"]),
            (_, ["keys", "verify"]):
            throw Rejection(405, "method \(Self.sanitized(method)) is not allowed here")
        case (_, ["keys", "ukey"]), (_, ["keys", "vkey"]), (_, ["notifications", "revocation"]):
            throw Rejection(405, "method \(Self.sanitized(method)) is not allowed here")
        default:
            throw Rejection(404, "no such resource")
        }
    }

    /// Query parameters: `key=value` pairs joined by `&`, percent-decoded; a key given twice
    /// is refused (which value counts would be ambiguous).
    static func parseQuery(_ query: Substring) throws(Rejection) -> [String: String] {
        var result: [String: String] = [:]
        guard !query.isEmpty else { return result }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: true)
        guard pairs.count <= maximumParameters else { throw Rejection(400, "more than \(maximumParameters) query parameters") }
        for pair in pairs {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try percentDecoded(parts[0])
            let value = parts.count > 1 ? try percentDecoded(parts[1]) : ""
            guard result[key] == nil else { throw Rejection(400, "query parameter \(sanitized(key)) is given twice") }
            result[key] = value
        }
        return result
    }

    static func percentDecoded(_ text: Substring) throws(Rejection) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { throw Rejection(400, "malformed percent-encoding in the query") }
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw Rejection(400, "query is not UTF-8") }
        return decoded
    }

    /// The nonce: 1 to 64 ASCII letters and digits (rust-keylime refuses anything else).
    static func nonce(_ query: [String: String]) throws(Rejection) -> String {
        guard let nonce = query["nonce"], !nonce.isEmpty else { throw Rejection(400, "nonce is missing") }
        guard nonce.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw Rejection(400, "nonce should be strictly alphanumeric")
        }
        guard nonce.utf8.count <= maximumNonceLength else {
            throw Rejection(400, "Nonce is too long (max size \(maximumNonceLength)): \(nonce.utf8.count)")
        }
        return nonce
    }

    /// Text from the request for a message: printable ASCII only, at most 40 characters.
    static func sanitized(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(40).map { (0x20...0x7E).contains($0.value) ? $0 : "?" }))
    }
}

/// A Keylime API version, `major.minor`.
public struct KeylimeAPIVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// Parses "2.1" (small decimal numbers only).
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let major = Int(parts[0]), let minor = Int(parts[1])
        else { return nil }
        self.init(major, minor)
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}
