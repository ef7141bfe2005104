//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombLaunch
import DombTPM
import Foundation
import Logging

/// What `domb agent` needs to know.
public struct KeylimeAgentConfiguration: Sendable {
    /// The agent's UUID as registered (Keylime's `agent_uuid`).
    public var uuid: String
    public var tcti: TCTIConfiguration
    /// Persistent handle of the AK (RSA for a default Keylime: its `accept_tpm_signing_algs`
    /// is `ecschnorr, rsassa`).
    public var akHandle: UInt32
    public var ekType: EndorsementKeyType
    public var ekHandle: UInt32?
    /// The PCR bank quoted (Keylime's `tpm_hash_alg`).
    public var bank: HashAlgorithm
    /// The measured-boot log served when the mask selects PCR 0 (`mb_measurement_list`).
    public var measuredBootLog: String?

    public init(
        uuid: String, tcti: TCTIConfiguration, akHandle: UInt32, ekType: EndorsementKeyType, ekHandle: UInt32?,
        bank: HashAlgorithm = .sha256, measuredBootLog: String?
    ) {
        self.uuid = uuid
        self.tcti = tcti
        self.akHandle = akHandle
        self.ekType = ekType
        self.ekHandle = ekHandle
        self.bank = bank
        self.measuredBootLog = measuredBootLog
    }
}

/// An HTTP answer: status and JSON body in Keylime's envelope `{code, status, results}`.
public struct AgentResponse: Sendable {
    public var status: Int
    public var body: [UInt8]

    static func json(_ status: Int, _ message: String, _ results: [String: any Sendable] = [:]) -> AgentResponse {
        let object: [String: Any] = ["code": status, "status": message, "results": results]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return AgentResponse(status: status, body: Array(data))
    }
}

/// The Keylime pull-model agent's behaviour, without the HTTP transport: answers parsed
/// requests with TPM quotes, and registers with the registrar.
///
/// Every TPM command goes through DombTPM on a connection opened per request and closed
/// after it, under one lock: a TPM simulator or `/dev/tpm0` serves one client at a time,
/// and other tools (an operator's `tpm2_pcrread`) must get their turn between quotes.
public final class KeylimeAgent: @unchecked Sendable {
    public let configuration: KeylimeAgentConfiguration
    public let key: AgentKey
    /// The exact PEM text bound into PCR 16.
    public let publicKeyPEM: String
    let logger: Logger
    private let lock = NSLock()
    private var activated = false
    /// Quotes served, for benchmarks and the agent's log.
    public private(set) var quotesServed = 0

    public init(configuration: KeylimeAgentConfiguration, key: AgentKey, logger: Logger) {
        self.configuration = configuration
        self.key = key
        self.publicKeyPEM = key.publicPEM
        self.logger = logger
    }

    /// Whether registration and activation with the registrar have succeeded; quotes are
    /// refused (503) until then, as no verifier could know the AK yet.
    public var isActivated: Bool {
        lock.lock()
        defer { lock.unlock() }
        return activated
    }

    public func markActivated() {
        lock.lock()
        activated = true
        lock.unlock()
    }

    /// Runs `body` with a TPM connection, serialised with every other TPM use of the agent.
    public func withTPM<T>(_ body: (TPM) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let tpm = try TPM(configuration.tcti)
        defer { tpm.close() }
        return try body(tpm)
    }

    /// Answers one request target.
    public func respond(method: String, target: String) -> AgentResponse {
        let request: KeylimeAgentRequest
        do {
            request = try KeylimeAgentRequest(method: method, target: target)
        } catch {
            return .json(error.status, error.message)
        }
        switch request {
        case .version:
            return .json(
                200, "Success",
                [
                    "supported_version": KeylimeAgentRequest.supportedVersions.last?.description ?? "2.5",
                    "supported_versions": KeylimeAgentRequest.supportedVersions.map(\.description),
                ])
        case .unsupported(_, let what):
            return .json(501, "\(what) is not implemented by domb agent: it serves attestation only (no payload delivery, no revocation actions)")
        case .publicKey:
            return .json(200, "Success", ["pubkey": publicKeyPEM])
        case .info:
            return .json(
                200, "Success",
                [
                    "agent_uuid": configuration.uuid, "tpm_hash_alg": configuration.bank.name, "tpm_enc_alg": encryptionAlgorithm,
                    "tpm_sign_alg": "", "ak_handle": Int(configuration.akHandle),
                ])
        case .identityQuote(_, let nonce):
            return quoteResponse(nonce: nonce, mask: 0, includeKey: true, logRequested: false)
        case .integrityQuote(_, let nonce, let mask, let partial, _):
            return quoteResponse(nonce: nonce, mask: mask, includeKey: !partial, logRequested: mask & 1 != 0)
        }
    }

    var encryptionAlgorithm: String { configuration.ekType == .rsa2048 ? "rsa" : "ecc" }

    /// A quote in Keylime's format over the mask's PCRs and PCR 16, which is first reset and
    /// extended with H(public key PEM) (rust-keylime `build_pcr_list`).
    func quoteResponse(nonce: String, mask: UInt32, includeKey: Bool, logRequested: Bool) -> AgentResponse {
        guard isActivated else { return .json(503, "the agent has not completed registration with the registrar yet") }
        var mbLog: String?
        if logRequested, let path = configuration.measuredBootLog {
            guard let data = FileManager.default.contents(atPath: path), data.count <= QuoteFile.maximumEventLogSize else {
                logger.error("cannot read the measured-boot log", metadata: ["path": "\(path)"])
                return .json(500, "Unable to read the measured boot log")
            }
            mbLog = data.base64EncodedString()
        }
        do {
            let quote = try makeQuote(nonce: Array(nonce.utf8), pcrs: KeylimeQuote.pcrs(mask: mask))
            var results: [String: any Sendable] = [
                "quote": quote.string, "hash_alg": configuration.bank.name, "enc_alg": encryptionAlgorithm,
                "sign_alg": quote.signAlgorithm,
            ]
            if includeKey { results["pubkey"] = publicKeyPEM }
            if let mbLog { results["mb_measurement_list"] = mbLog }
            return .json(200, "Success", results)
        } catch {
            logger.error("quote failed", metadata: ["error": "\(error)"])
            return .json(500, "Unable to retrieve quote")
        }
    }

    /// Quote attempts when the PCRs change between TPM2_Quote and TPM2_PCR_Read.
    static let quoteAttempts = 3

    func makeQuote(nonce: [UInt8], pcrs: [Int]) throws -> (string: String, signAlgorithm: String) {
        let bank = configuration.bank
        let hashing = OpenSSLHashing()
        guard let inner = hashing.hash(Array(publicKeyPEM.utf8), with: bank) else {
            throw AgentError("OpenSSL cannot hash with \(bank)")
        }
        return try withTPM { tpm in
            try tpm.resetPCR(16)
            try tpm.extend(pcr: 16, digests: DigestSet([TaggedDigest(bank, inner)]))
            let selection = PCRSelection([.init(bank, pcrs)])
            for _ in 0..<Self.quoteAttempts {
                let quote = try tpm.quote(attestationKey: configuration.akHandle, nonce: nonce, selection: selection)
                let values = try tpm.readPCRs(pcrs, banks: [bank])
                let ordered = pcrs.compactMap { values[bank, $0] }
                let attest = try TPMSAttest(parsing: quote.attest)
                guard let signedDigest = attest.quote?.pcrDigest, ordered.count == pcrs.count else {
                    throw AgentError("the TPM's quote or PCR read is incomplete")
                }
                // The values sent must be the ones quoted; a measurement in between means retry.
                guard hashing.hash(ordered.flatMap { $0 }, with: quote.hash) == signedDigest else { continue }
                let signature = KeylimeQuote.Signature(tpmQuote: quote)
                quotesServed += 1
                let blob = KeylimeQuote.pcrBlob(bank: bank, pcrs: pcrs, values: ordered)
                return (KeylimeQuote.encode(attest: quote.attest, signature: signature, pcrBlob: blob), signature.scheme.rawValue)
            }
            throw AgentError("the PCRs changed between quote and read \(Self.quoteAttempts) times")
        }
    }
}

extension KeylimeQuote.Signature {
    init(tpmQuote quote: TPMQuote) {
        let value: Value
        switch quote.signature {
        case .ecdsa(let r, let s): value = .ecdsa(r: r, s: s)
        case .rsa(let bytes): value = .rsa(bytes)
        }
        self.init(scheme: quote.scheme, hash: quote.hash, value: value)
    }
}

public struct AgentError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
