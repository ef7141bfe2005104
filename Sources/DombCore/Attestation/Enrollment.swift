//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// The files of AK enrolment (docs/attestation.md, "Enrolling an AK"): the host's request,
/// the verifier's challenge, the host's answer, and the verifier's records. Binary fields are
/// base64, names and digests lower-case hex. Everything a host sends is UNVERIFIED until the
/// verifier's checks have passed.
public enum EnrollmentFormat {
    /// Largest enrolment file read (an EK certificate chain fits many times over).
    public static let maximumFileSize = 256 << 10

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], format: String, what: String) throws(ParseError) -> T {
        guard bytes.count <= maximumFileSize else {
            throw .limit("\(what) is \(bytes.count) bytes, more than the \(maximumFileSize)-byte limit")
        }
        let header = try JSONInput.decode(FormatHeader.self, from: bytes, what: "\(what) (JSON with a \"format\" field)")
        guard header.format == format else {
            throw ParseError(.unsupported, "\(what) format \"\(header.format)\", expected \"\(format)\"")
        }
        return try JSONInput.decode(T.self, from: bytes, what: what)
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] { try JSONOutput.fileBytes(value) }

    /// Decodes base64 of at most `max` bytes.
    public static func base64(_ text: String, field: String, max: Int) throws(ParseError) -> [UInt8] {
        guard text.utf8.count <= (max + 2) / 3 * 4 + 4 else { throw .limit("\(field) is longer than \(max) bytes") }
        guard let data = Data(base64Encoded: text) else { throw .invalid("\(field) is not base64") }
        guard data.count <= max else { throw .limit("\(field) is longer than \(max) bytes") }
        return Array(data)
    }

    /// Untrusted text for a message: quoted, at most 140 characters, escaped by
    /// ``TerminalText`` (and `"` as `\"`), so a hostile file cannot drive the terminal.
    public static func quoted(_ text: String) -> String {
        let limit = 140
        let escaped = TerminalText.escape(text.prefix(limit)).replacingOccurrences(of: "\"", with: "\\\"")
        return "\"" + escaped + (text.count > limit ? "…\"" : "\"")
    }

    /// Decodes a TPM name in hex: nameAlg ‖ digest of that algorithm's size.
    public static func name(_ text: String, field: String) throws(ParseError) -> [UInt8] {
        guard let bytes = [UInt8](hex: text), bytes.count >= 2,
            let size = HashAlgorithm(rawValue: UInt16(bytes[0]) << 8 | UInt16(bytes[1])).digestSize, bytes.count == 2 + size
        else {
            throw .invalid("\(field) \(quoted(text)) is not a TPM name (nameAlg ‖ digest, hex)")
        }
        return bytes
    }
}

private struct FormatHeader: Decodable { var format: String }

/// `domb ak enroll` → verifier: "this AK lives in the TPM of this EK".
public struct EnrollmentRequest: Codable, Hashable, Sendable {
    public static let formatName = "domb-enrol-request/1"
    public var format = Self.formatName
    /// `rsa2048`, `ecc-p256` or `ecc-p384`.
    public var ekType: String
    /// Base64 `TPM2B_PUBLIC` of the EK.
    public var ekPublic: String
    /// Base64 DER EK certificate from the TPM's NV, if it has one.
    public var ekCertificate: String?
    /// Base64 `TPM2B_PUBLIC` of the AK.
    public var akPublic: String
    /// The AK's name as the host computed it (hex); the verifier recomputes it.
    public var akName: String

    public init(ekType: String, ekPublic: [UInt8], ekCertificate: [UInt8]?, akPublic: [UInt8], akName: [UInt8]) {
        self.ekType = ekType
        self.ekPublic = Data(ekPublic).base64EncodedString()
        self.ekCertificate = ekCertificate.map { Data($0).base64EncodedString() }
        self.akPublic = Data(akPublic).base64EncodedString()
        self.akName = akName.hexString
    }

    public init(json: [UInt8]) throws(ParseError) {
        self = try EnrollmentFormat.decode(Self.self, json, format: Self.formatName, what: "enrolment request")
    }

    public func jsonBytes() throws -> [UInt8] { try EnrollmentFormat.encode(self) }

    public func ekPublicArea() throws(ParseError) -> TPMPublicArea {
        try TPMPublicArea(tpm2bPublic: try EnrollmentFormat.base64(ekPublic, field: "ekPublic", max: TPMPublicArea.maximumSize + 2))
    }

    public func akPublicArea() throws(ParseError) -> TPMPublicArea {
        try TPMPublicArea(tpm2bPublic: try EnrollmentFormat.base64(akPublic, field: "akPublic", max: TPMPublicArea.maximumSize + 2))
    }

    public func ekCertificateDER() throws(ParseError) -> [UInt8]? {
        try ekCertificate.map { text throws(ParseError) in
            try EnrollmentFormat.base64(text, field: "ekCertificate", max: EnrollmentFormat.maximumFileSize)
        }
    }
}

/// Verifier → host: a credential only the TPM holding the EK, with the AK loaded, can open.
public struct EnrollmentChallenge: Codable, Hashable, Sendable {
    public static let formatName = "domb-enrol-challenge/1"
    public var format = Self.formatName
    public var ekType: String
    /// The AK name the credential was made for (hex).
    public var akName: String
    /// Base64 `TPM2B_ID_OBJECT`.
    public var credential: String
    /// Base64 `TPM2B_ENCRYPTED_SECRET` contents.
    public var encryptedSecret: String

    public init(ekType: String, akName: [UInt8], credential: [UInt8], encryptedSecret: [UInt8]) {
        self.ekType = ekType
        self.akName = akName.hexString
        self.credential = Data(credential).base64EncodedString()
        self.encryptedSecret = Data(encryptedSecret).base64EncodedString()
    }

    public init(json: [UInt8]) throws(ParseError) {
        self = try EnrollmentFormat.decode(Self.self, json, format: Self.formatName, what: "enrolment challenge")
    }

    public func jsonBytes() throws -> [UInt8] { try EnrollmentFormat.encode(self) }

    /// The credential and encrypted secret, size-checked.
    public func blobs() throws(ParseError) -> (credential: [UInt8], encryptedSecret: [UInt8]) {
        (
            try EnrollmentFormat.base64(credential, field: "credential", max: 2 + 2 + 64 + 2 + 64),
            try EnrollmentFormat.base64(encryptedSecret, field: "encryptedSecret", max: 512)
        )
    }
}

/// Host → verifier: the secret ActivateCredential released.
public struct EnrollmentResponse: Codable, Hashable, Sendable {
    public static let formatName = "domb-enrol-response/1"
    public var format = Self.formatName
    public var akName: String
    /// Hex.
    public var secret: String

    public init(akName: [UInt8], secret: [UInt8]) {
        self.akName = akName.hexString
        self.secret = secret.hexString
    }

    public init(json: [UInt8]) throws(ParseError) {
        self = try EnrollmentFormat.decode(Self.self, json, format: Self.formatName, what: "enrolment response")
    }

    public func jsonBytes() throws -> [UInt8] { try EnrollmentFormat.encode(self) }
}

/// What the verifier keeps between challenge and response: the request it checked and the
/// SHA-256 of the secret it sent (never the secret itself).
public struct PendingEnrollment: Codable, Hashable, Sendable {
    public static let formatName = "domb-enrol-pending/1"
    public var format = Self.formatName
    public var request: EnrollmentRequest
    /// Hex SHA-256 of the secret.
    public var secretSHA256: String
    /// ISO 8601.
    public var challengedAt: String

    public init(request: EnrollmentRequest, secretSHA256: [UInt8], challengedAt: String) {
        self.request = request
        self.secretSHA256 = secretSHA256.hexString
        self.challengedAt = challengedAt
    }

    public init(json: [UInt8]) throws(ParseError) {
        self = try EnrollmentFormat.decode(Self.self, json, format: Self.formatName, what: "pending enrolment")
    }

    public func jsonBytes() throws -> [UInt8] { try EnrollmentFormat.encode(self) }
}

/// An AK the verifier has proven to live in the TPM of a certified EK.
public struct EnrolledKey: Codable, Hashable, Sendable {
    public static let formatName = "domb-enrolled-ak/1"
    public var format = Self.formatName
    /// Hex; the record's file name is this name too.
    public var akName: String
    /// Base64 `TPM2B_PUBLIC`.
    public var akPublic: String
    /// The same key as PEM `SubjectPublicKeyInfo`, for OpenSSL.
    public var akPublicKeyPEM: String
    public var ekType: String
    /// Base64 `TPM2B_PUBLIC`.
    public var ekPublic: String
    /// Hex SHA-256 of the EK certificate (DER).
    public var ekCertificateSHA256: String
    public var ekCertificateSubject: String
    public var ekCertificateIssuer: String
    /// ISO 8601.
    public var enrolledAt: String

    public init(
        akName: [UInt8], akPublic: String, akPublicKeyPEM: String, ekType: String, ekPublic: String,
        ekCertificateSHA256: [UInt8], ekCertificateSubject: String, ekCertificateIssuer: String, enrolledAt: String
    ) {
        self.akName = akName.hexString
        self.akPublic = akPublic
        self.akPublicKeyPEM = akPublicKeyPEM
        self.ekType = ekType
        self.ekPublic = ekPublic
        self.ekCertificateSHA256 = ekCertificateSHA256.hexString
        self.ekCertificateSubject = ekCertificateSubject
        self.ekCertificateIssuer = ekCertificateIssuer
        self.enrolledAt = enrolledAt
    }

    public init(json: [UInt8]) throws(ParseError) {
        self = try EnrollmentFormat.decode(Self.self, json, format: Self.formatName, what: "enrolled AK record")
    }

    public func jsonBytes() throws -> [UInt8] { try EnrollmentFormat.encode(self) }

    public func akPublicArea() throws(ParseError) -> TPMPublicArea {
        try TPMPublicArea(tpm2bPublic: try EnrollmentFormat.base64(akPublic, field: "akPublic", max: TPMPublicArea.maximumSize + 2))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
