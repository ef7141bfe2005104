//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2
import DombCore

/// Everything an authorised unseal needs (docs/secrets.md, "Unsealing"): the sealed object,
/// the PCR-policy key, the signed policy for one bank, and the PIN if the object has one.
public struct AuthorizedUnsealRequest: Sendable {
    /// The marshalled `TPM2B_PUBLIC` / `TPM2B_PRIVATE` of the sealed object.
    public var publicArea: [UInt8]
    public var privateArea: [UInt8]
    /// The storage root key's name at seal time: a different one means another TPM (or a
    /// cleared one), reported as such instead of an integrity failure.
    public var parentName: [UInt8]
    /// The key's marshalled `TPMT_PUBLIC` (``ExternalSigningKey/tpmtPublic``) and the name
    /// the sealed object is bound to.
    public var policyKey: [UInt8]
    public var policyKeyName: [UInt8]
    /// `TPM2_PolicyPCR`'s selection and the digest of the values the signed policy approves.
    public var selection: PCRSelection
    public var pcrDigest: [UInt8]
    /// The signed `approvedPolicy`, its `policyRef`, and `aHash` over both.
    public var approvedPolicy: [UInt8]
    public var policyRef: [UInt8]
    public var approvalDigest: [UInt8]
    /// The key's signature over `aHash`, as `TPMT_SIGNATURE` carries it.
    public var signatureScheme: QuoteSignatureScheme
    public var signature: TPMSignatureValue
    public var pin: [UInt8]?

    public init(
        publicArea: [UInt8], privateArea: [UInt8], parentName: [UInt8], policyKey: [UInt8], policyKeyName: [UInt8],
        selection: PCRSelection, pcrDigest: [UInt8], approvedPolicy: [UInt8], policyRef: [UInt8], approvalDigest: [UInt8],
        signatureScheme: QuoteSignatureScheme, signature: TPMSignatureValue, pin: [UInt8]?
    ) {
        self.publicArea = publicArea
        self.privateArea = privateArea
        self.parentName = parentName
        self.policyKey = policyKey
        self.policyKeyName = policyKeyName
        self.selection = selection
        self.pcrDigest = pcrDigest
        self.approvedPolicy = approvedPolicy
        self.policyRef = policyRef
        self.approvalDigest = approvalDigest
        self.signatureScheme = signatureScheme
        self.signature = signature
        self.pin = pin
    }
}

/// Why an authorised unseal stopped, naming the TPM step and what it means.
public struct UnsealFailure: Error, CustomStringConvertible, Sendable {
    /// The step that failed (`TPM2_PolicyPCR`, …) and the ones that had succeeded.
    public var step: String
    public var completed: [String]
    public var reason: String
    public var tpmError: TPMError?

    public var description: String {
        "\(step) failed: \(reason)" + (completed.isEmpty ? "" : " (after \(completed.joined(separator: ", ")))")
    }
}

extension TPM {
    /// Starts a session salted to `saltKey` with AES-128-CFB parameter encryption and
    /// SHA-256 (`TPM2_StartAuthSession`, Part 3 §11.1). The caller flushes it.
    func startSession(type: UInt8, saltKey: ESYS_TR) throws(TPMError) -> ESYS_TR {
        var symmetric = TPMT_SYM_DEF()
        symmetric.algorithm = UInt16(TPM2_ALG_AES)
        symmetric.keyBits.aes = 128
        symmetric.mode.aes = UInt16(TPM2_ALG_CFB)
        var session: ESYS_TR = UInt32(ESYS_TR_NONE)
        try command("Esys_StartAuthSession(\(type == UInt8(TPM2_SE_POLICY) ? "policy" : "HMAC"))") { esys in
            Esys_StartAuthSession(
                esys, saltKey, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), nil,
                TPM2_SE(type), &symmetric, UInt16(TPM2_ALG_SHA256), &session)
        }
        return session
    }

    /// Loads a public key to verify signatures with (`TPM2_LoadExternal` in the owner
    /// hierarchy: a ticket from the null hierarchy would not satisfy `PolicyAuthorize`),
    /// returning its handle (the caller flushes it) and the name the TPM gave it.
    func loadExternalKey(_ tpmtPublic: [UInt8]) throws(TPMError) -> (ESYS_TR, [UInt8]) {
        var inPublic = TPM2B_PUBLIC()
        inPublic.publicArea = try Self.unmarshal(tpmtPublic, as: TPMT_PUBLIC(), "TPMT_PUBLIC", Tss2_MU_TPMT_PUBLIC_Unmarshal)
        inPublic.size = UInt16(tpmtPublic.count)
        var handle: ESYS_TR = UInt32(ESYS_TR_NONE)
        try command("Esys_LoadExternal(PCR-policy key)") { esys in
            Esys_LoadExternal(
                esys, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), nil, &inPublic,
                UInt32(ESYS_TR_RH_OWNER), &handle)
        }
        do {
            return (handle, try name(of: handle))
        } catch {
            flush(handle)
            throw error
        }
    }

    /// Whether this TPM can load and verify with the PCR-policy key: `TPM2_LoadExternal`
    /// then `TPM2_FlushContext`. Returns the name the TPM computed (to compare with domb's).
    public func checkPolicyKey(_ tpmtPublic: [UInt8]) throws(TPMError) -> [UInt8] {
        let (handle, name) = try loadExternalKey(tpmtPublic)
        flush(handle)
        return name
    }

    /// Unseals a sealed object with `PolicyPCR → VerifySignature → PolicyAuthorize
    /// [→ PolicyAuthValue] → Unseal` (Part 3 §23.7, §20.1, §23.16, §23.17, §12.7).
    /// The batch form below, for one request.
    /// - Throws: ``UnsealFailure`` naming the step and what its TPM error means.
    public func unsealAuthorized(_ request: AuthorizedUnsealRequest) throws(UnsealFailure) -> [UInt8] {
        guard let result = unsealAuthorized([request]).first else {
            throw UnsealFailure(step: "unseal", completed: [], reason: "no result", tpmError: nil)
        }
        return try result.get()
    }

    /// Unseals several sealed objects, each with its own policy session, sharing what can be
    /// shared: the storage root key is created once, and each distinct signed policy is
    /// checked once (`TPM2_LoadExternal`, `TPM2_VerifySignature`, flush: the ticket names the
    /// key, so the key need not stay loaded, and a ticket is valid for every session until the
    /// owner hierarchy changes). Per object: `TPM2_Load`, a policy session salted to the
    /// storage root key (the unsealed data comes back encrypted on the bus), `PolicyPCR`,
    /// `PolicyAuthorize` with the ticket, [`PolicyAuthValue`], `Unseal`, two flushes. At most
    /// two transient objects are loaded at once (a TPM without a resource manager has three
    /// slots), and everything is flushed, whatever happens.
    /// - Returns: one result per request, in order.
    public func unsealAuthorized(_ requests: [AuthorizedUnsealRequest]) -> [Result<[UInt8], UnsealFailure>] {
        var completed: [String] = []
        func step<T>(_ name: String, _ explain: (TPMError) -> String, _ body: () throws(TPMError) -> T) throws(UnsealFailure) -> T {
            do {
                let value = try body()
                completed.append(name)
                return value
            } catch {
                throw UnsealFailure(step: name, completed: completed, reason: explain(error), tpmError: error)
            }
        }
        func plain(_ error: TPMError) -> String { error.description }

        let parent: ESYS_TR
        let parentName: [UInt8]
        do {
            (parent, parentName) = try step("TPM2_CreatePrimary (storage root key)", plain) { () throws(TPMError) in
                try createStorageRootKey()
            }
        } catch {
            return requests.map { _ in .failure(error) }
        }
        defer { flush(parent) }
        let prefix = completed

        /// A signed policy the TPM has checked: the key's name and the ticket.
        struct Approval {
            var key: [UInt8]
            var approvedPolicy: [UInt8]
            var policyRef: [UInt8]
            var signature: TPMSignatureValue
            var keyName: [UInt8]
            var ticket: TPMT_TK_VERIFIED
        }
        var approvals: [Approval] = []

        func approval(for request: AuthorizedUnsealRequest) throws(UnsealFailure) -> Approval {
            if let known = approvals.first(where: {
                $0.key == request.policyKey && $0.approvedPolicy == request.approvedPolicy && $0.policyRef == request.policyRef
                    && $0.signature == request.signature
            }) {
                completed.append("(the same signed policy, checked once)")
                return known
            }
            let (key, keyName) = try step("TPM2_LoadExternal (PCR-policy key)", { error in
                "the TPM cannot load the PCR-policy key (\(error)); an EC P-256 key works on every TPM"
            }) { () throws(TPMError) in try loadExternalKey(request.policyKey) }
            defer { flush(key) }
            guard keyName == request.policyKeyName else {
                throw UnsealFailure(
                    step: "PCR-policy key", completed: completed,
                    reason: "the TPM names the key \(keyName.hexString), not \(request.policyKeyName.hexString)", tpmError: nil)
            }
            var digest = TPM2B_DIGEST(request.approvalDigest)
            var signature: TPMT_SIGNATURE
            do {
                signature = try Self.signature(request)
            } catch {
                throw UnsealFailure(step: "TPMT_SIGNATURE", completed: completed, reason: error.description, tpmError: error)
            }
            var ticket: UnsafeMutablePointer<TPMT_TK_VERIFIED>?
            try step("TPM2_VerifySignature", { error in
                error.isCode(ResponseCode.signature)
                    ? "the signature over the policy is not the PCR-policy key's (another key signed it, or it was altered)"
                    : error.description
            }) { () throws(TPMError) in
                try command("Esys_VerifySignature") { esys in
                    Esys_VerifySignature(
                        esys, key, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &digest, &signature, &ticket)
                }
            }
            defer { Esys_Free(ticket) }
            guard let ticket else {
                throw UnsealFailure(step: "TPM2_VerifySignature", completed: completed, reason: "the TPM returned no ticket", tpmError: nil)
            }
            let made = Approval(
                key: request.policyKey, approvedPolicy: request.approvedPolicy, policyRef: request.policyRef,
                signature: request.signature, keyName: keyName, ticket: ticket.pointee)
            approvals.append(made)
            return made
        }

        func unseal(_ request: AuthorizedUnsealRequest) throws(UnsealFailure) -> [UInt8] {
            guard parentName == request.parentName else {
                throw UnsealFailure(
                    step: "storage root key", completed: completed,
                    reason: "this TPM's storage root key is \(parentName.hexString), the secret was sealed under \(request.parentName.hexString): it was sealed on another TPM, or this one was cleared since",
                    tpmError: nil)
            }
            var checked = try approval(for: request)
            let object = try step("TPM2_Load (sealed object)", { error in
                error.isCode(ResponseCode.integrity)
                    ? "the sealed object does not belong under this storage root key (\(error))" : error.description
            }) { () throws(TPMError) in try loadSealedObject(request.publicArea, request.privateArea, parent: parent) }
            defer { flush(object) }
            let session = try step("TPM2_StartAuthSession (policy)", plain) { () throws(TPMError) in
                try startSession(type: UInt8(TPM2_SE_POLICY), saltKey: parent)
            }
            defer { flush(session) }

            var selection = TPML_PCR_SELECTION(request.selection)
            var pcrDigest = TPM2B_DIGEST(request.pcrDigest)
            try step("TPM2_PolicyPCR (\(request.selection))", { error in
                error.isCode(ResponseCode.value)
                    ? "PCRs \(request.selection) do not hold the values the signed policy approves: this is not the launch the bundle predicts, or a PCR was extended after it"
                    : error.description
            }) { () throws(TPMError) in
                try command("Esys_PolicyPCR") { esys in
                    Esys_PolicyPCR(esys, session, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &pcrDigest, &selection)
                }
            }
            var approved = TPM2B_DIGEST(request.approvedPolicy)
            var policyRef = TPM2B_NONCE(request.policyRef)
            var name = TPM2B_NAME()
            name.size = UInt16(min(checked.keyName.count, MemoryLayout.size(ofValue: name.name)))
            withUnsafeMutableBytes(of: &name.name) { $0.copyBytes(from: checked.keyName.prefix($0.count)) }
            try step("TPM2_PolicyAuthorize", { error in
                error.isCode(ResponseCode.value)
                    ? "the session's policy is not the approved one (the PCRs read are not those signed)" : error.description
            }) { () throws(TPMError) in
                try command("Esys_PolicyAuthorize") { esys in
                    Esys_PolicyAuthorize(
                        esys, session, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &approved, &policyRef,
                        &name, &checked.ticket)
                }
            }
            if let pin = request.pin {
                try step("TPM2_PolicyAuthValue", plain) { () throws(TPMError) in
                    try command("Esys_PolicyAuthValue") { esys in
                        Esys_PolicyAuthValue(esys, session, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE))
                    }
                    var auth = TPM2B_AUTH(pin)
                    try localCall("Esys_TR_SetAuth") { esys in Esys_TR_SetAuth(esys, object, &auth) }
                }
            }

            var data: UnsafeMutablePointer<TPM2B_SENSITIVE_DATA>?
            try step("TPM2_Unseal", { error in
                if error.isCode(ResponseCode.policyFail) {
                    "the object's authPolicy is not PolicyAuthorize(this key, this policyRef): it was sealed to another key or reference"
                } else if error.isCode(ResponseCode.authFail) || error.isCode(ResponseCode.badAuth) {
                    "wrong PIN (the TPM counts this toward dictionary-attack lockout)"
                } else if error.baseCode == ResponseCode.lockout {
                    "the TPM is locked out after wrong PINs (tpm2_dictionarylockout, or wait)"
                } else {
                    error.description
                }
            }) { () throws(TPMError) in
                try localCall("Esys_TRSess_SetAttributes") { esys in
                    Esys_TRSess_SetAttributes(esys, session, TPMA_SESSION(TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION), 0xFF)
                }
                try command("Esys_Unseal") { esys in
                    Esys_Unseal(esys, object, session, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &data)
                }
            }
            defer {
                if let data { _ = withUnsafeMutableBytes(of: &data.pointee) { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
                Esys_Free(data)
            }
            guard let data else {
                throw UnsealFailure(step: "TPM2_Unseal", completed: completed, reason: "the TPM returned no data", tpmError: nil)
            }
            return Self.bytes(data.pointee.size, data.pointee.buffer)
        }

        var results: [Result<[UInt8], UnsealFailure>] = []
        for request in requests {
            completed = prefix
            do {
                results.append(.success(try unseal(request)))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }

    /// The request's signature as a `TPMT_SIGNATURE` over SHA-256 (Part 2, §11.3.4).
    static func signature(_ request: AuthorizedUnsealRequest) throws(TPMError) -> TPMT_SIGNATURE {
        var signature = TPMT_SIGNATURE()
        switch (request.signatureScheme, request.signature) {
        case (.ecdsa, .ecdsa(let r, let s)):
            guard r.count <= 66, s.count <= 66 else { throw .usage("TPMT_SIGNATURE", "r or s is longer than 66 bytes") }
            signature.sigAlg = UInt16(TPM2_ALG_ECDSA)
            signature.signature.ecdsa.hash = UInt16(TPM2_ALG_SHA256)
            signature.signature.ecdsa.signatureR.size = UInt16(r.count)
            withUnsafeMutableBytes(of: &signature.signature.ecdsa.signatureR.buffer) { $0.copyBytes(from: r) }
            signature.signature.ecdsa.signatureS.size = UInt16(s.count)
            withUnsafeMutableBytes(of: &signature.signature.ecdsa.signatureS.buffer) { $0.copyBytes(from: s) }
        case (.rsapss, .rsa(let bytes)), (.rsassa, .rsa(let bytes)):
            guard bytes.count <= 512 else { throw .usage("TPMT_SIGNATURE", "an RSA signature longer than 512 bytes") }
            signature.sigAlg = UInt16(request.signatureScheme == .rsapss ? TPM2_ALG_RSAPSS : TPM2_ALG_RSASSA)
            signature.signature.rsapss.hash = UInt16(TPM2_ALG_SHA256)
            signature.signature.rsapss.sig.size = UInt16(bytes.count)
            withUnsafeMutableBytes(of: &signature.signature.rsapss.sig.buffer) { $0.copyBytes(from: bytes) }
        default:
            throw .usage("TPMT_SIGNATURE", "a \(request.signatureScheme) signature with the wrong kind of value")
        }
        return signature
    }
}

extension TPM2B_DIGEST {
    /// A digest buffer holding `bytes` (at most `sizeof(TPMU_HA)`, 64).
    init(_ bytes: [UInt8]) {
        self.init()
        size = UInt16(min(bytes.count, MemoryLayout.size(ofValue: buffer)))
        withUnsafeMutableBytes(of: &buffer) { $0.copyBytes(from: bytes.prefix($0.count)) }
    }
}

/// `TPM_RC` values the unseal steps explain (TPM 2.0 Part 2, §6.6.3; tss2's `TPM2_RC_*`
/// macros are casts Swift does not import).
enum ResponseCode {
    static let value: UInt32 = 0x084
    static let authFail: UInt32 = 0x08E
    static let signature: UInt32 = 0x09B
    static let policyFail: UInt32 = 0x09D
    static let integrity: UInt32 = 0x09F
    static let badAuth: UInt32 = 0x0A2
    /// A warning (format zero): dictionary-attack lockout.
    static let lockout: UInt32 = 0x921
}

extension TPMError {
    /// Whether this is the format-one response code `code` from the TPM, whatever handle,
    /// session or parameter it names (bits 6 and 8–11 carry those).
    func isCode(_ code: UInt32) -> Bool {
        layer == 0 && baseCode & 0x80 != 0 && baseCode & 0xBF == code
    }
}
