//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombFiles
import DombCore
import DombCrypto
import DombTPM
import Foundation

/// Why a verifier refuses to enrol an AK: every reason found, in plain words.
public struct EnrollmentRefusal: Error, Sendable, CustomStringConvertible {
    public var reasons: [String]
    public init(_ reasons: [String]) { self.reasons = reasons }
    public var description: String {
        reasons.count == 1 ? reasons[0] : reasons.enumerated().map { "(\($0.offset + 1)) \($0.element)" }.joined(separator: "; ")
    }
}

/// The host side of AK enrolment: read the EK and AK, answer a challenge.
public enum EnrollmentHost {
    /// The enrolment request for the AK at `akHandle` and the EK of `ekType`.
    public static func request(tpm: TPM, ekType: EndorsementKeyType, ekHandle: UInt32?, akHandle: UInt32) throws -> EnrollmentRequest {
        let ek = try tpm.readEndorsementKey(ekType, handle: ekHandle)
        let akPublic = try tpm.publicArea(persistent: akHandle)
        let area = try TPMPublicArea(tpm2bPublic: akPublic)
        guard let name = area.name(hashing: OpenSSLHashing()) else {
            throw EnrollmentRefusal(["cannot hash the AK's name with \(area.nameAlgorithm)"])
        }
        let certificate = try ek.certificate.map { try EndorsementCertificate.trimmedDER($0) }
        return EnrollmentRequest(ekType: ekType.rawValue, ekPublic: ek.publicArea, ekCertificate: certificate, akPublic: akPublic, akName: name)
    }

    /// Runs TPM2_ActivateCredential on a challenge and returns the response to send back.
    public static func activate(
        tpm: TPM, challenge: EnrollmentChallenge, akHandle: UInt32, ekHandle: UInt32?
    ) throws -> EnrollmentResponse {
        guard let ekType = EndorsementKeyType(rawValue: challenge.ekType) else {
            throw EnrollmentRefusal(["the challenge names EK type \(EnrollmentFormat.quoted(challenge.ekType)); domb knows rsa2048, ecc-p256, ecc-p384"])
        }
        let name = try EnrollmentFormat.name(challenge.akName, field: "challenge akName")
        let (credential, encrypted) = try challenge.blobs()
        let secret = try tpm.activateCredential(
            attestationKey: akHandle, endorsementKey: ekType, endorsementHandle: ekHandle, credential: credential,
            encryptedSecret: encrypted)
        return EnrollmentResponse(akName: name, secret: secret)
    }
}

/// The verifier side of AK enrolment, with no TPM: check the request, make the challenge,
/// check the answer. Records live in a directory (``EnrollmentStore``).
public enum EnrollmentVerifier {
    /// The secret's size: one SHA-256 digest, the largest every EK nameAlg accepts.
    public static let secretSize = 32

    /// Every reason `request` cannot be challenged, empty if it can: the EK is an EK; its
    /// certificate is present, chains to `anchors` and certifies that EK; the AK has the
    /// attestation-key attributes; the AK name the host sent is the name of the AK sent.
    public static func problems(with request: EnrollmentRequest, anchors: [X509Certificate], time: Int64? = nil) -> [String] {
        var problems: [String] = []
        if EndorsementKeyType(rawValue: request.ekType) == nil {
            problems.append("EK type \(EnrollmentFormat.quoted(request.ekType)) is not rsa2048, ecc-p256 or ecc-p384")
        }
        var ek: TPMPublicArea?
        do {
            let area = try request.ekPublicArea()
            ek = area
            if let problem = area.endorsementKeyProblem { problems.append("the EK cannot be an endorsement key: \(problem)") }
        } catch {
            problems.append("ekPublic: \(error)")
        }
        do {
            if let der = try request.ekCertificateDER() {
                let certificate = try X509Certificate(der: der)
                if let ek {
                    problems += EndorsementCertificate.failures(certificate: certificate, endorsementKey: ek, anchors: anchors, time: time)
                }
            } else {
                problems.append("the request carries no EK certificate: nothing ties this EK to a TPM manufacturer")
            }
        } catch {
            problems.append("ekCertificate: \(error)")
        }
        do {
            let ak = try request.akPublicArea()
            if let problem = ak.attestationKeyProblem { problems.append("the AK is not an attestation key: \(problem)") }
            let claimed = try EnrollmentFormat.name(request.akName, field: "akName")
            if ak.name(hashing: OpenSSLHashing()) != claimed {
                problems.append("akName \(request.akName) is not the name of the AK sent (\((ak.name(hashing: OpenSSLHashing()) ?? []).hexString))")
            }
        } catch {
            problems.append("akPublic: \(error)")
        }
        return problems
    }

    /// Checks `request` and makes its challenge; the pending record keeps the secret's hash.
    /// - Throws: ``EnrollmentRefusal`` with every problem found.
    public static func challenge(
        _ request: EnrollmentRequest, anchors: [X509Certificate], now: Date = Date(), time: Int64? = nil
    ) throws -> (EnrollmentChallenge, PendingEnrollment) {
        let problems = problems(with: request, anchors: anchors, time: time)
        guard problems.isEmpty else { throw EnrollmentRefusal(problems) }
        let ek = try request.ekPublicArea()
        let name = try EnrollmentFormat.name(request.akName, field: "akName")
        let secret = try CredentialMaker.randomBytes(secretSize)
        let made = try CredentialMaker.makeCredential(endorsementKey: ek, secret: secret, objectName: name)
        guard let digest = OpenSSLHashing().hash(secret, with: .sha256) else { throw EnrollmentRefusal(["cannot hash the secret"]) }
        let challenge = EnrollmentChallenge(ekType: request.ekType, akName: name, credential: made.credential, encryptedSecret: made.encryptedSecret)
        return (challenge, PendingEnrollment(request: request, secretSHA256: digest, challengedAt: Self.timestamp(now)))
    }

    /// Checks the returned secret against the pending record (constant time) and builds the
    /// enrolled record. - Throws: ``EnrollmentRefusal``.
    public static func complete(_ response: EnrollmentResponse, pending: PendingEnrollment, now: Date = Date()) throws -> EnrolledKey {
        guard response.akName == pending.request.akName else {
            throw EnrollmentRefusal([
                "the response is for AK \(EnrollmentFormat.quoted(response.akName)), the challenge was for \(EnrollmentFormat.quoted(pending.request.akName))"
            ])
        }
        guard let secret = [UInt8](hex: response.secret), secret.count <= 64,
            let digest = OpenSSLHashing().hash(secret, with: .sha256), let expected = [UInt8](hex: pending.secretSHA256),
            expected.count == digest.count
        else {
            throw EnrollmentRefusal(["the response's secret is not 1 to 64 bytes of hex"])
        }
        var difference: UInt8 = 0
        for (a, b) in zip(digest, expected) { difference |= a ^ b }
        guard difference == 0 else {
            throw EnrollmentRefusal(["the returned secret is wrong: this AK was not activated by the TPM of the certified EK"])
        }
        let request = pending.request
        let ak = try request.akPublicArea()
        let pem = try PublicKey(ak.key).pem()
        guard let der = try request.ekCertificateDER() else { throw EnrollmentRefusal(["the pending request has no EK certificate"]) }
        let certificate = try X509Certificate(der: der)
        guard let certificateDigest = OpenSSLHashing().hash(der, with: .sha256) else { throw EnrollmentRefusal(["cannot hash the EK certificate"]) }
        return EnrolledKey(
            akName: try EnrollmentFormat.name(request.akName, field: "akName"), akPublic: request.akPublic, akPublicKeyPEM: pem,
            ekType: request.ekType, ekPublic: request.ekPublic, ekCertificateSHA256: certificateDigest,
            ekCertificateSubject: certificate.subject, ekCertificateIssuer: certificate.issuer, enrolledAt: Self.timestamp(now))
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// A verifier's enrolment directory: `<akName>.json` per enrolled AK, `pending/<akName>.json`
/// per outstanding challenge. File names are the hex AK name, so a lookup can never
/// traverse out of the directory.
public struct EnrollmentStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    func path(_ name: [UInt8], pending: Bool) -> String {
        pending ? "\(directory)/pending/\(name.hexString).json" : "\(directory)/\(name.hexString).json"
    }

    public func savePending(_ pending: PendingEnrollment) throws {
        let name = try EnrollmentFormat.name(pending.request.akName, field: "akName")
        try Directory.create("\(directory)/pending")
        try AtomicFile.write(try pending.jsonBytes(), to: path(name, pending: true))
    }

    public func pending(akName: [UInt8]) throws -> PendingEnrollment {
        let file = path(akName, pending: true)
        guard let bytes = try Self.read(file) else {
            throw EnrollmentRefusal(["no outstanding challenge for AK \(akName.hexString) in \(directory)/pending"])
        }
        return try ContextError.wrap(file) { try PendingEnrollment(json: bytes) }
    }

    public func removePending(akName: [UInt8]) {
        try? FileManager.default.removeItem(atPath: path(akName, pending: true))
    }

    public func saveEnrolled(_ key: EnrolledKey) throws {
        let name = try EnrollmentFormat.name(key.akName, field: "akName")
        try Directory.create(directory)
        try AtomicFile.write(try key.jsonBytes(), to: path(name, pending: false))
    }

    /// The enrolled record of `akName`, checked: its AK public area hashes to that name.
    public func enrolled(akName: [UInt8]) throws -> EnrolledKey {
        let file = path(akName, pending: false)
        guard let bytes = try Self.read(file) else {
            throw EnrollmentRefusal(["AK \(akName.hexString) is not enrolled in \(directory)"])
        }
        let key = try ContextError.wrap(file) { try EnrolledKey(json: bytes) }
        let area = try ContextError.wrap(file) { try key.akPublicArea() }
        guard area.name(hashing: OpenSSLHashing()) == akName else {
            throw EnrollmentRefusal(["\(file): the recorded AK public area does not have the name \(akName.hexString)"])
        }
        return key
    }

    static func read(_ path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw EnrollmentRefusal(["cannot open \(path)"]) }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: EnrollmentFormat.maximumFileSize + 1) ?? Data()
        guard data.count <= EnrollmentFormat.maximumFileSize else { throw EnrollmentRefusal(["\(path) is larger than \(EnrollmentFormat.maximumFileSize) bytes"]) }
        return Array(data)
    }
}
