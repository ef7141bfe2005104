//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2
import DombCore

/// A sealed data object as `TPM2_Create` returned it: the marshalled `TPM2B_PUBLIC` and
/// `TPM2B_PRIVATE` (what `tpm2_create -u/-r` writes), and the parent it lives under.
public struct SealedObject: Hashable, Sendable {
    public var publicArea: [UInt8]
    public var privateArea: [UInt8]
    /// The name of the storage root key it was created under.
    public var parentName: [UInt8]
}

extension TPM {
    /// The name of the storage root key (``StorageRootKey/eccP256``) on this TPM.
    /// The corresponding C function is `Esys_CreatePrimary`.
    public func storageRootKeyName() throws(TPMError) -> [UInt8] {
        let (handle, name) = try createStorageRootKey()
        flush(handle)
        return name
    }

    /// Seals `secret` into a data object under the storage root key whose only authorisation
    /// is `authPolicy` (`TPM2_Create`, TPM 2.0 Part 3 §12.1).
    ///
    /// The object is `fixedTPM | fixedParent` without `userWithAuth`, so only a policy
    /// session satisfying `authPolicy` can unseal it; with a `pin` it gets that authValue
    /// and keeps dictionary-attack protection, without one it is `noDA` (a failed policy is
    /// not a guess). The secret travels to the TPM encrypted: the parent is authorised with
    /// a session salted to the storage root key that encrypts the first parameter.
    /// - Throws: ``TPMError`` for a secret over 128 bytes, a PIN over 32, or a TPM failure.
    public func seal(_ secret: [UInt8], authPolicy: [UInt8], pin: [UInt8]?) throws(TPMError) -> SealedObject {
        guard (1...SealedSecret.maximumSecretSize).contains(secret.count) else {
            throw .usage(
                "seal",
                "the secret is \(secret.count) bytes; a TPM sealed object holds 1 to \(SealedSecret.maximumSecretSize) (seal a key and encrypt larger data with it)")
        }
        if let pin, !(1...SealedSecret.maximumPINSize).contains(pin.count) {
            throw .usage("seal", "the PIN must be 1 to \(SealedSecret.maximumPINSize) bytes")
        }
        guard authPolicy.count == 32 else { throw .usage("seal", "the authPolicy must be a SHA-256 digest") }
        let (parent, parentName) = try createStorageRootKey()
        defer { flush(parent) }
        let session = try startSession(type: UInt8(TPM2_SE_HMAC), saltKey: parent)
        defer { flush(session) }
        try localCall("Esys_TRSess_SetAttributes") { esys in
            Esys_TRSess_SetAttributes(
                esys, session, TPMA_SESSION(TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION), 0xFF)
        }

        var sensitive = TPM2B_SENSITIVE_CREATE()
        sensitive.sensitive.data.size = UInt16(secret.count)
        withUnsafeMutableBytes(of: &sensitive.sensitive.data.buffer) { $0.copyBytes(from: secret) }
        if let pin {
            sensitive.sensitive.userAuth.size = UInt16(pin.count)
            withUnsafeMutableBytes(of: &sensitive.sensitive.userAuth.buffer) { $0.copyBytes(from: pin) }
        }
        defer { _ = withUnsafeMutableBytes(of: &sensitive) { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        var template = TPM2B_PUBLIC()
        template.publicArea.type = UInt16(TPM2_ALG_KEYEDHASH)
        template.publicArea.nameAlg = UInt16(TPM2_ALG_SHA256)
        template.publicArea.objectAttributes = UInt32(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT)
            | (pin == nil ? UInt32(TPMA_OBJECT_NODA) : 0)
        template.publicArea.authPolicy.size = UInt16(authPolicy.count)
        withUnsafeMutableBytes(of: &template.publicArea.authPolicy.buffer) { $0.copyBytes(from: authPolicy) }
        template.publicArea.parameters.keyedHashDetail.scheme.scheme = UInt16(TPM2_ALG_NULL)
        var outside = TPM2B_DATA()
        var creationPCR = TPML_PCR_SELECTION()
        var outPrivate: UnsafeMutablePointer<TPM2B_PRIVATE>?
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var creationData: UnsafeMutablePointer<TPM2B_CREATION_DATA>?
        var creationHash: UnsafeMutablePointer<TPM2B_DIGEST>?
        var ticket: UnsafeMutablePointer<TPMT_TK_CREATION>?
        try command("Esys_Create(sealed data object)") { esys in
            Esys_Create(
                esys, parent, session, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &sensitive, &template, &outside,
                &creationPCR, &outPrivate, &outPublic, &creationData, &creationHash, &ticket)
        }
        defer {
            Esys_Free(outPrivate)
            Esys_Free(outPublic)
            Esys_Free(creationData)
            Esys_Free(creationHash)
            Esys_Free(ticket)
        }
        guard let outPrivate, let outPublic else { throw .usage("Esys_Create", "TPM returned no object") }
        return SealedObject(
            publicArea: try Self.marshal(outPublic.pointee, Tss2_MU_TPM2B_PUBLIC_Marshal),
            privateArea: try Self.marshal(outPrivate.pointee, Tss2_MU_TPM2B_PRIVATE_Marshal),
            parentName: parentName)
    }

    /// Creates the storage root key (``StorageRootKey/eccP256``) as a transient object.
    /// - Returns: its handle (the caller flushes it) and its name.
    func createStorageRootKey() throws(TPMError) -> (ESYS_TR, [UInt8]) {
        var template = TPM2B_PUBLIC()
        template.publicArea.type = UInt16(TPM2_ALG_ECC)
        template.publicArea.nameAlg = UInt16(TPM2_ALG_SHA256)
        template.publicArea.objectAttributes = UInt32(
            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH
                | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
        template.publicArea.parameters.eccDetail.symmetric.algorithm = UInt16(TPM2_ALG_AES)
        template.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128
        template.publicArea.parameters.eccDetail.symmetric.mode.aes = UInt16(TPM2_ALG_CFB)
        template.publicArea.parameters.eccDetail.scheme.scheme = UInt16(TPM2_ALG_NULL)
        template.publicArea.parameters.eccDetail.curveID = UInt16(TPM2_ECC_NIST_P256)
        template.publicArea.parameters.eccDetail.kdf.scheme = UInt16(TPM2_ALG_NULL)
        let (handle, _) = try createPrimary(
            hierarchy: UInt32(ESYS_TR_RH_OWNER), template: template, what: "storage root key, owner hierarchy")
        do {
            return (handle, try name(of: handle))
        } catch {
            flush(handle)
            throw error
        }
    }

    /// Loads a sealed object under `parent` (`TPM2_Load`). The caller flushes the handle.
    func loadSealedObject(_ publicArea: [UInt8], _ privateArea: [UInt8], parent: ESYS_TR) throws(TPMError) -> ESYS_TR {
        var inPublic = try Self.unmarshal(publicArea, as: TPM2B_PUBLIC(), "TPM2B_PUBLIC", Tss2_MU_TPM2B_PUBLIC_Unmarshal)
        var inPrivate = try Self.unmarshal(privateArea, as: TPM2B_PRIVATE(), "TPM2B_PRIVATE", Tss2_MU_TPM2B_PRIVATE_Unmarshal)
        var handle: ESYS_TR = UInt32(ESYS_TR_NONE)
        try command("Esys_Load(sealed object)") { esys in
            Esys_Load(
                esys, parent, UInt32(ESYS_TR_PASSWORD), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &inPrivate, &inPublic,
                &handle)
        }
        return handle
    }

    /// The name ESAPI holds for `handle` (`Esys_TR_GetName`).
    func name(of handle: ESYS_TR) throws(TPMError) -> [UInt8] {
        var name: UnsafeMutablePointer<TPM2B_NAME>?
        try localCall("Esys_TR_GetName") { esys in Esys_TR_GetName(esys, handle, &name) }
        defer { Esys_Free(name) }
        guard let name else { throw .usage("Esys_TR_GetName", "no name") }
        return Self.bytes(name.pointee.size, name.pointee.name)
    }

    /// Flushes a transient object or session, ignoring failure (cleanup only).
    func flush(_ handle: ESYS_TR) {
        guard handle != UInt32(ESYS_TR_NONE) else { return }
        try? command("Esys_FlushContext") { esys in Esys_FlushContext(esys, handle) }
    }

    /// Marshals a TSS structure with its tss2-mu function.
    static func marshal<T>(
        _ value: T, _ function: (UnsafePointer<T>?, UnsafeMutablePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?) -> UInt32
    ) throws(TPMError) -> [UInt8] {
        var copy = value
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<T>.size + 16)
        var offset = 0
        let rc = buffer.withUnsafeMutableBufferPointer { out in function(&copy, out.baseAddress, out.count, &offset) }
        guard rc == 0 else { throw TPMError(returnCode: rc, operation: "Tss2_MU marshal") }
        return Array(buffer.prefix(offset))
    }

    /// Unmarshals `bytes` into a TSS structure, refusing trailing bytes.
    static func unmarshal<T>(
        _ bytes: [UInt8], as initial: T, _ what: String,
        _ function: (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Int>?, UnsafeMutablePointer<T>?) -> UInt32
    ) throws(TPMError) -> T {
        var value = initial
        var offset = 0
        let rc = bytes.withUnsafeBufferPointer { input in function(input.baseAddress, input.count, &offset, &value) }
        guard rc == 0 else {
            var error = TPMError(returnCode: rc, operation: "unmarshal \(what)")
            error.message = "not a valid \(what) (\(error.message))"
            throw error
        }
        guard offset == bytes.count else { throw .usage("unmarshal \(what)", "\(bytes.count - offset) bytes after the \(what)") }
        return value
    }
}
