//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombCrypto
import DombLaunch
import DombTPM
import DombFiles
import Foundation

extension EndorsementKeyType: ExpressibleByArgument {}

/// The EK a host command uses.
struct EndorsementOptions: ParsableArguments {
    @Option(help: "The EK: rsa2048 (NV cert 0x01c00002), ecc-p256 (0x01c0000a) or ecc-p384 (0x01c00016, read from its persistent handle only).")
    var ek: EndorsementKeyType = .rsa2048
    @Option(help: "Persistent handle of the EK (default: the TCG reserved one: 0x81010001, 0x81010002, 0x81010016); if nothing is there, the EK is created from the TCG template.")
    var ekHandle: String?

    func handle() throws -> UInt32? { try ekHandle.map(AttestationIO.parseHandle) }
}

extension AKCommand {
    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an enrolment request: the EK, its certificate from NV, and the AK's public area and name.",
            discussion: """
                Send the request to the verifier (`domb attest enroll-challenge`), run `domb ak activate` \
                on its challenge and send the response back (`domb attest enroll-complete`). The TPM is \
                only read.
                """ + "\n\n" + ExitStatus.help(success: "the request was written", refused: "the TPM refused"))

        @OptionGroup var tpm: TPMOptions
        @OptionGroup var endorsement: EndorsementOptions
        @Option(help: "Persistent handle of the AK (`domb ak create --handle`).") var handle: String = TPM.defaultAttestationKeyHandleText
        @Option(name: .shortAndLong, help: "Where to write the request (JSON).") var output: String

        func run() async throws {
            let connection = try tpm.open()
            defer { connection.close() }
            let request = try EnrollmentHost.request(
                tpm: connection, ekType: endorsement.ek, ekHandle: try endorsement.handle(), akHandle: try AttestationIO.parseHandle(handle))
            try AtomicFile.write(try request.jsonBytes(), to: output)
            print("enrolment request for AK \(request.akName)")
            print("  EK \(request.ekType), certificate \(request.ekCertificate == nil ? "ABSENT (a verifier will refuse)" : "from NV")")
            print("  written to \(output)")
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Answer a verifier's enrolment challenge with TPM2_ActivateCredential.",
            discussion: "The TPM releases the secret only to the AK the challenge names, loaded with the EK it was made for." + "\n\n" + ExitStatus.help(success: "the response was written", refused: "the TPM refused to release the secret (not this AK, not this EK)"))

        @OptionGroup var tpm: TPMOptions
        @Option(help: "Persistent handle of the EK, if not the TCG reserved one.") var ekHandle: String?
        @Option(help: "Persistent handle of the AK.") var handle: String = TPM.defaultAttestationKeyHandleText
        @Argument(help: "The challenge (JSON) from `domb attest enroll-challenge`.") var challenge: String
        @Option(name: .shortAndLong, help: "Where to write the response (JSON).") var output: String

        func run() async throws {
            let bytes = try AttestationIO.readFile(challenge, limit: EnrollmentFormat.maximumFileSize, what: "challenge")
            let parsed = try ContextError.wrap(challenge) { try EnrollmentChallenge(json: bytes) }
            let connection = try tpm.open()
            defer { connection.close() }
            let response = try EnrollmentHost.activate(
                tpm: connection, challenge: parsed, akHandle: try AttestationIO.parseHandle(handle),
                ekHandle: try ekHandle.map(AttestationIO.parseHandle))
            try AtomicFile.write(try response.jsonBytes(), to: output, inputs: [challenge])
            print("activated the credential for AK \(response.akName); response written to \(output)")
        }
    }
}

extension AttestCommand {
    struct EnrollChallenge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enroll-challenge",
            abstract: "Check an enrolment request and make its challenge (no TPM needed).",
            discussion: """
                Refuses unless: the EK certificate chains to a CA in --ca (every certificate there is \
                trusted as an anchor, as Keylime's tpm_cert_store) and certifies exactly the EK sent; \
                the EK is a restricted decryption key with AES-CFB; the AK is restricted, sign, \
                fixedTPM, fixedParent, sensitiveDataOrigin and not decrypt; the AK name is the name of \
                the AK sent. Then makes a credential (TPM2_MakeCredential in software, TPM 2.0 Part 1 \
                §24) over a random 32-byte secret for the AK name under the EK, and records the \
                challenge (the secret's SHA-256 only) in DIR/pending/.
                Exit status: 0 challenged, 1 refused, 2 unusable input.
                """ + "\n\n" + ExitStatus.help(success: "the challenge was written", refused: "the request was refused (every reason is printed)"))

        @Argument(help: "The request (JSON) from `domb ak enroll`.") var request: String
        @Option(help: "Directory (or file) of trusted EK manufacturer CA certificates (*.pem, *.crt).") var ca: String
        @Option(help: "The verifier's enrolment directory.") var enrolled: String
        @Option(name: .shortAndLong, help: "Where to write the challenge (JSON) for the host.") var output: String

        func run() async throws {
            let parsed: EnrollmentRequest
            let anchors: [X509Certificate]
            do {
                let bytes = try AttestationIO.readFile(request, limit: EnrollmentFormat.maximumFileSize, what: "enrolment request")
                parsed = try ContextError.wrap(request) { try EnrollmentRequest(json: bytes) }
                anchors = try ContextError.wrap(ca) { try TrustAnchors.load(path: ca) }
            } catch {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                throw ExitCode(2)
            }
            let challenge: EnrollmentChallenge
            let pending: PendingEnrollment
            do {
                (challenge, pending) = try EnrollmentVerifier.challenge(parsed, anchors: anchors)
            } catch let refusal as EnrollmentRefusal {
                print("REFUSED: enrolment request \(request): \(refusal.reasons.count) reason\(refusal.reasons.count == 1 ? "" : "s")")
                for reason in refusal.reasons { print("  - \(reason)") }
                throw ExitCode(1)
            }
            try EnrollmentStore(directory: enrolled).savePending(pending)
            try AtomicFile.write(try challenge.jsonBytes(), to: output, inputs: [request])
            print("CHALLENGED: AK \(challenge.akName) under the \(challenge.ekType) EK; challenge written to \(output)")
        }
    }

    struct EnrollComplete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enroll-complete",
            abstract: "Check a host's answer to an enrolment challenge and record the AK as enrolled.",
            discussion: """
                The returned secret must be the challenge's (compared by SHA-256, in constant time). \
                Either way the outstanding challenge is removed, so a wrong answer cannot be retried \
                against the same secret. The record DIR/<AK name>.json is what `domb attest verify \
                --enrolled DIR` trusts.
                """ + "\n\n" + ExitStatus.help(success: "the AK was enrolled", refused: "the response was refused"))

        @Argument(help: "The response (JSON) from `domb ak activate`.") var response: String
        @Option(help: "The verifier's enrolment directory.") var enrolled: String

        func run() async throws {
            let store = EnrollmentStore(directory: enrolled)
            let parsed: EnrollmentResponse
            let name: [UInt8]
            let pending: PendingEnrollment
            do {
                let bytes = try AttestationIO.readFile(response, limit: EnrollmentFormat.maximumFileSize, what: "enrolment response")
                parsed = try ContextError.wrap(response) { try EnrollmentResponse(json: bytes) }
                name = try EnrollmentFormat.name(parsed.akName, field: "akName")
                pending = try store.pending(akName: name)
            } catch {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                throw ExitCode(2)
            }
            defer { store.removePending(akName: name) }
            let key: EnrolledKey
            do {
                key = try EnrollmentVerifier.complete(parsed, pending: pending)
            } catch let refusal as EnrollmentRefusal {
                print("REFUSED: \(refusal)")
                throw ExitCode(1)
            }
            try store.saveEnrolled(key)
            print("ENROLLED: AK \(key.akName)")
            print("  EK \(key.ekType), certificate \(key.ekCertificateSubject) issued by \(key.ekCertificateIssuer)")
            print("  record \(enrolled)/\(key.akName).json")
        }
    }
}
