//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2
import DombCore

/// The endorsement key types domb reads, with where the TCG puts them.
///
/// Handles follow the TCG "Registry of Reserved TPM 2.0 Handles and Localities" (§2.3.1),
/// certificate indices and templates the TCG EK Credential Profile 2.x (§2.2.1.4, Annex B).
public enum EndorsementKeyType: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// RSA 2048, template L-1, certificate at NV 0x01c00002.
    case rsa2048 = "rsa2048"
    /// ECC NIST P-256, template L-2, certificate at NV 0x01c0000a.
    case eccP256 = "ecc-p256"
    /// ECC NIST P-384 (high range, template H-3), certificate at NV 0x01c00016. swtpm
    /// provisions this one; domb reads it from its persistent handle but does not create it.
    case eccP384 = "ecc-p384"

    public var description: String { rawValue }

    /// The reserved persistent handle of this EK.
    public var persistentHandle: UInt32 {
        switch self {
        case .rsa2048: 0x8101_0001
        case .eccP256: 0x8101_0002
        case .eccP384: 0x8101_0016
        }
    }

    /// The NV index of this EK's certificate.
    public var certificateIndex: UInt32 {
        switch self {
        case .rsa2048: 0x01C0_0002
        case .eccP256: 0x01C0_000A
        case .eccP384: 0x01C0_0016
        }
    }
}

/// Where an EK came from.
public enum EndorsementKeySource: Hashable, Sendable, CustomStringConvertible {
    /// Read from a persistent handle (as provisioned by the manufacturer or `tpm2_createek -c 0x81010001`).
    case persistent(UInt32)
    /// Recreated with `TPM2_CreatePrimary` from the EK Credential Profile template; the same
    /// TPM always yields the same key from it.
    case template

    public var description: String {
        switch self {
        case .persistent(let handle): "persistent handle 0x\(String(handle, radix: 16))"
        case .template: "created from the TCG EK template"
        }
    }
}

/// An endorsement key as read from the TPM.
public struct EndorsementKey: Hashable, Sendable {
    public var type: EndorsementKeyType
    public var source: EndorsementKeySource
    /// The marshalled `TPM2B_PUBLIC` (Keylime's `ek_tpm`).
    public var publicArea: [UInt8]
    /// The DER certificate from the type's NV index, if the index is defined.
    public var certificate: [UInt8]?
}

extension TPM {
    /// The TCG "policy A" (EK Credential Profile §B.6): `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)`
    /// digested with SHA-256; the authPolicy of the low-range EK templates.
    static let endorsementPolicyA: [UInt8] = [
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
        0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
    ]

    /// Reads the EK of `type`: from `handle` (default: the type's reserved persistent
    /// handle) when something is there, else recreated from the template (RSA 2048 and
    /// ECC P-256 only); and its certificate from NV when the index is defined.
    ///
    /// Throws when a key at the handle is not a restricted decryption key with AES-CFB, so a
    /// mistyped handle never turns an AK into an "EK".
    public func readEndorsementKey(_ type: EndorsementKeyType, handle: UInt32? = nil) throws(TPMError) -> EndorsementKey {
        let persistent = handle ?? type.persistentHandle
        let loaded = try loadEndorsementKey(type, handle: persistent)
        defer { loaded.release(self) }
        let certificate = try readNVIndexIfDefined(type.certificateIndex)
        return EndorsementKey(type: type, source: loaded.source, publicArea: loaded.publicArea, certificate: certificate)
    }

    /// An EK loaded for use: the ESYS handle, its public area, and whether it must be flushed.
    struct LoadedEndorsementKey {
        var object: ESYS_TR
        var source: EndorsementKeySource
        var publicArea: [UInt8]
        var attributes: UInt32
        var nameAlgorithm: UInt16

        func release(_ tpm: TPM) {
            if case .template = source {
                try? tpm.command("Esys_FlushContext(EK)") { esys in Esys_FlushContext(esys, object) }
            }
        }
    }

    func loadEndorsementKey(_ type: EndorsementKeyType, handle: UInt32) throws(TPMError) -> LoadedEndorsementKey {
        if try persistentHandleExists(handle) {
            let object = try objectHandle(persistent: handle)
            let (area, marshalled) = try readPublic(object, what: "EK 0x\(String(handle, radix: 16))")
            let attributes = area.objectAttributes
            let wanted = UInt32(TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
            guard attributes & wanted == wanted, attributes & UInt32(TPMA_OBJECT_SIGN_ENCRYPT) == 0 else {
                throw .usage(
                    "ek", "the key at 0x\(String(handle, radix: 16)) is not an endorsement key (not a restricted decryption key)")
            }
            let matchesType: Bool
            switch type {
            case .rsa2048: matchesType = area.type == UInt16(TPM2_ALG_RSA) && area.parameters.rsaDetail.keyBits == 2048
            case .eccP256: matchesType = area.type == UInt16(TPM2_ALG_ECC) && area.parameters.eccDetail.curveID == UInt16(TPM2_ECC_NIST_P256)
            case .eccP384: matchesType = area.type == UInt16(TPM2_ALG_ECC) && area.parameters.eccDetail.curveID == UInt16(TPM2_ECC_NIST_P384)
            }
            guard matchesType else {
                throw .usage("ek", "the key at 0x\(String(handle, radix: 16)) is not an \(type) EK")
            }
            return LoadedEndorsementKey(
                object: object, source: .persistent(handle), publicArea: marshalled, attributes: attributes,
                nameAlgorithm: area.nameAlg)
        }
        guard let template = Self.endorsementKeyTemplate(type) else {
            throw .usage(
                "ek",
                "no \(type) EK at 0x\(String(handle, radix: 16)), and domb creates only the RSA 2048 and ECC P-256 EKs from their templates")
        }
        let (transient, outPublic) = try createPrimary(
            hierarchy: UInt32(ESYS_TR_RH_ENDORSEMENT), template: template, what: "endorsement, \(type) EK template")
        let marshalled: [UInt8]
        do {
            marshalled = try Self.marshal(outPublic)
        } catch {
            flush(transient)
            throw error
        }
        return LoadedEndorsementKey(
            object: transient, source: .template, publicArea: marshalled,
            attributes: outPublic.publicArea.objectAttributes, nameAlgorithm: outPublic.publicArea.nameAlg)
    }

    /// The marshalled `TPM2B_PUBLIC` of the key at a persistent handle (Keylime's `aik_tpm`).
    public func publicArea(persistent handle: UInt32) throws(TPMError) -> [UInt8] {
        let object = try objectHandle(persistent: handle)
        return try readPublic(object, what: "key 0x\(String(handle, radix: 16))").1
    }

    func readPublic(_ object: ESYS_TR, what: String) throws(TPMError) -> (TPMT_PUBLIC, [UInt8]) {
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var name: UnsafeMutablePointer<TPM2B_NAME>?
        var qualified: UnsafeMutablePointer<TPM2B_NAME>?
        try command("Esys_ReadPublic(\(what))") { esys in
            Esys_ReadPublic(esys, object, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &outPublic, &name, &qualified)
        }
        defer {
            Esys_Free(outPublic)
            Esys_Free(name)
            Esys_Free(qualified)
        }
        guard let outPublic else { throw .usage("Esys_ReadPublic", "TPM returned no public area for \(what)") }
        return (outPublic.pointee.publicArea, try Self.marshal(outPublic.pointee))
    }

    /// `Tss2_MU_TPM2B_PUBLIC_Marshal`.
    static func marshal(_ value: TPM2B_PUBLIC) throws(TPMError) -> [UInt8] {
        var copy = value
        var buffer = [UInt8](repeating: 0, count: MemoryLayout<TPM2B_PUBLIC>.size + 2)
        var offset = 0
        let rc = buffer.withUnsafeMutableBufferPointer { out in
            Tss2_MU_TPM2B_PUBLIC_Marshal(&copy, out.baseAddress, out.count, &offset)
        }
        guard rc == 0 else { throw TPMError(returnCode: rc, operation: "Tss2_MU_TPM2B_PUBLIC_Marshal") }
        return Array(buffer.prefix(offset))
    }

    /// Whether anything lives at a persistent handle (`TPM2_GetCapability(TPM_CAP_HANDLES)`).
    func persistentHandleExists(_ handle: UInt32) throws(TPMError) -> Bool {
        var more: UInt8 = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        try command("Esys_GetCapability(TPM2_CAP_HANDLES)") { esys in
            Esys_GetCapability(
                esys, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                UInt32(TPM2_CAP_HANDLES), handle, 1, &more, &data)
        }
        defer { Esys_Free(data) }
        guard let data, data.pointee.data.handles.count > 0 else { return false }
        return data.pointee.data.handles.handle.0 == handle
    }

    /// Largest NV index domb reads: EK certificates are 1–2 KiB; chains rarely exceed 8 KiB.
    public static let maximumNVReadSize = 16 << 10

    /// Reads a whole NV index, or nil if it is not defined. Read with owner authorisation
    /// (as `tpm2_nvread -C o`), falling back to the index's own authorisation; in chunks of
    /// at most 512 bytes (below every TPM's `TPM_PT_NV_BUFFER_MAX`).
    /// The corresponding C functions are `Esys_NV_ReadPublic` and `Esys_NV_Read`.
    public func readNVIndexIfDefined(_ index: UInt32) throws(TPMError) -> [UInt8]? {
        var more: UInt8 = 0
        var capability: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        try command("Esys_GetCapability(TPM2_CAP_HANDLES, NV)") { esys in
            Esys_GetCapability(
                esys, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                UInt32(TPM2_CAP_HANDLES), index, 1, &more, &capability)
        }
        let defined = capability.map { $0.pointee.data.handles.count > 0 && $0.pointee.data.handles.handle.0 == index } ?? false
        Esys_Free(capability)
        guard defined else { return nil }

        var object: ESYS_TR = UInt32(ESYS_TR_NONE)
        try command("Esys_TR_FromTPMPublic(NV 0x\(String(index, radix: 16)))") { esys in
            Esys_TR_FromTPMPublic(esys, index, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &object)
        }
        var nvPublic: UnsafeMutablePointer<TPM2B_NV_PUBLIC>?
        var nvName: UnsafeMutablePointer<TPM2B_NAME>?
        try command("Esys_NV_ReadPublic(0x\(String(index, radix: 16)))") { esys in
            Esys_NV_ReadPublic(esys, object, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &nvPublic, &nvName)
        }
        let size = Int(nvPublic?.pointee.nvPublic.dataSize ?? 0)
        let attributes = nvPublic?.pointee.nvPublic.attributes ?? 0
        Esys_Free(nvPublic)
        Esys_Free(nvName)
        guard size <= Self.maximumNVReadSize else {
            throw .usage("NV_Read", "NV index 0x\(String(index, radix: 16)) holds \(size) bytes, more than \(Self.maximumNVReadSize)")
        }
        let authHandle: ESYS_TR = attributes & UInt32(TPMA_NV_OWNERREAD) != 0 ? UInt32(ESYS_TR_RH_OWNER) : object
        var result: [UInt8] = []
        result.reserveCapacity(size)
        while result.count < size {
            let chunk = UInt16(min(512, size - result.count))
            let offset = UInt16(result.count)
            var data: UnsafeMutablePointer<TPM2B_MAX_NV_BUFFER>?
            try command("Esys_NV_Read(0x\(String(index, radix: 16)), offset \(offset))") { esys in
                Esys_NV_Read(
                    esys, authHandle, object, UInt32(ESYS_TR_PASSWORD), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                    chunk, offset, &data)
            }
            defer { Esys_Free(data) }
            guard let data, data.pointee.size > 0 else {
                throw .usage("Esys_NV_Read", "TPM returned no data for NV 0x\(String(index, radix: 16)) at offset \(offset)")
            }
            result += Self.bytes(data.pointee.size, data.pointee.buffer)
        }
        return Array(result.prefix(size))
    }

    /// The EK Credential Profile low-range templates (Annex B.3.3 L-1, B.3.4 L-2): restricted
    /// decryption keys with policy A, AES-128-CFB, SHA-256 names and zero-filled `unique`.
    static func endorsementKeyTemplate(_ type: EndorsementKeyType) -> TPM2B_PUBLIC? {
        var template = TPM2B_PUBLIC()
        template.publicArea.nameAlg = UInt16(TPM2_ALG_SHA256)
        template.publicArea.objectAttributes = UInt32(
            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
                | TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
        template.publicArea.authPolicy.size = UInt16(endorsementPolicyA.count)
        withUnsafeMutableBytes(of: &template.publicArea.authPolicy.buffer) { $0.copyBytes(from: endorsementPolicyA) }
        switch type {
        case .rsa2048:
            template.publicArea.type = UInt16(TPM2_ALG_RSA)
            template.publicArea.parameters.rsaDetail.symmetric.algorithm = UInt16(TPM2_ALG_AES)
            template.publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128
            template.publicArea.parameters.rsaDetail.symmetric.mode.aes = UInt16(TPM2_ALG_CFB)
            template.publicArea.parameters.rsaDetail.scheme.scheme = UInt16(TPM2_ALG_NULL)
            template.publicArea.parameters.rsaDetail.keyBits = 2048
            template.publicArea.parameters.rsaDetail.exponent = 0
            template.publicArea.unique.rsa.size = 256
        case .eccP256:
            template.publicArea.type = UInt16(TPM2_ALG_ECC)
            template.publicArea.parameters.eccDetail.symmetric.algorithm = UInt16(TPM2_ALG_AES)
            template.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128
            template.publicArea.parameters.eccDetail.symmetric.mode.aes = UInt16(TPM2_ALG_CFB)
            template.publicArea.parameters.eccDetail.scheme.scheme = UInt16(TPM2_ALG_NULL)
            template.publicArea.parameters.eccDetail.curveID = UInt16(TPM2_ECC_NIST_P256)
            template.publicArea.parameters.eccDetail.kdf.scheme = UInt16(TPM2_ALG_NULL)
            template.publicArea.unique.ecc.x.size = 32
            template.publicArea.unique.ecc.y.size = 32
        case .eccP384:
            return nil
        }
        return template
    }
}
