//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CTSS2
import DombCore

/// The algorithm of an attestation key.
public enum AttestationKeyAlgorithm: Hashable, Sendable, CustomStringConvertible {
    /// ECC NIST P-256 with ECDSA-SHA256 (the default: fast on every TPM).
    case eccP256
    /// RSA with RSASSA-PKCS1-v1_5 SHA-256; 2048 or 3072 bits.
    case rsa(bits: Int)

    public var description: String {
        switch self {
        case .eccP256: "ecc-p256"
        case .rsa(let bits): "rsa\(bits)"
        }
    }
}

/// Which hierarchy the attestation key is a primary key of.
public enum AttestationKeyHierarchy: String, Hashable, Sendable {
    /// `TPM_RH_ENDORSEMENT`: the privacy-sensitive hierarchy that also holds the EK.
    case endorsement
    /// `TPM_RH_OWNER`.
    case storage
}

/// A persistent attestation key as the TPM reports it.
public struct AttestationKeyInfo: Hashable, Sendable {
    /// The persistent handle (0x81…).
    public var handle: UInt32
    public var publicKey: AttestationKeyPublic
    /// The TPM name: nameAlg ‖ H(TPMT_PUBLIC).
    public var name: [UInt8]
    /// The name qualified by the hierarchy; the quote's `qualifiedSigner`.
    public var qualifiedName: [UInt8]
    public var scheme: QuoteSignatureScheme
    public var hash: HashAlgorithm
}

/// A raw `TPM2_Quote` response.
public struct TPMQuote: Hashable, Sendable {
    /// The exact `TPMS_ATTEST` bytes the TPM signed.
    public var attest: [UInt8]
    public var scheme: QuoteSignatureScheme
    public var hash: HashAlgorithm
    public var signature: TPMSignatureValue
}

/// The signature part of a `TPMT_SIGNATURE` (TPM 2.0 Part 2, §11.3.4).
public enum TPMSignatureValue: Hashable, Sendable {
    case ecdsa(r: [UInt8], s: [UInt8])
    case rsa([UInt8])
}

extension TPM {
    /// The default persistent handle of domb's attestation key: in the owner range, clear of
    /// the EK handles (0x81010000–0x8101FFFF, where 0x81010002 is the ECC P-256 EK's) and of
    /// the SRK handles 0x81000001/0x81000002 that the TCG "Registry of Reserved TPM 2.0
    /// Handles and Localities" assigns.
    public static let defaultAttestationKeyHandle: UInt32 = 0x8100_0100
    /// ``defaultAttestationKeyHandle`` as the CLI spells handles.
    public static var defaultAttestationKeyHandleText: String { "0x" + String(defaultAttestationKeyHandle, radix: 16) }
    /// `TPM_HT_PERSISTENT` handles are 0x81000000–0x81FFFFFF; owner-evicted ones end at 0x817FFFFF.
    public static let persistentHandleRange: ClosedRange<UInt32> = 0x8100_0000...0x817F_FFFF
    /// `sizeof(TPMU_HA)`: the longest nonce `TPM2_Quote` takes.
    public static let maximumNonceSize = 64

    /// Creates a restricted signing key as a primary key of `hierarchy` and makes it
    /// persistent at `handle` (`TPM2_CreatePrimary`, `TPM2_EvictControl`, `TPM2_FlushContext`).
    ///
    /// The key is `fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted |
    /// sign`, as `tpm2_createak` makes it: it can only sign data the TPM itself produced
    /// (quotes), never an outside digest that starts with `TPM_GENERATED_VALUE`.
    public func createAttestationKey(
        algorithm: AttestationKeyAlgorithm, hierarchy: AttestationKeyHierarchy,
        handle: UInt32 = TPM.defaultAttestationKeyHandle
    ) throws(TPMError) -> AttestationKeyInfo {
        guard Self.persistentHandleRange.contains(handle) else {
            throw .usage("ak create", "handle 0x\(String(handle, radix: 16)) is not an owner persistent handle (0x81000000–0x817fffff)")
        }
        let primary: ESYS_TR = hierarchy == .endorsement ? UInt32(ESYS_TR_RH_ENDORSEMENT) : UInt32(ESYS_TR_RH_OWNER)
        let (transient, _) = try createPrimary(
            hierarchy: primary, template: try Self.attestationKeyTemplate(algorithm), what: "\(hierarchy) AK, \(algorithm)")
        defer { flush(transient) }
        var persistent: ESYS_TR = UInt32(ESYS_TR_NONE)
        do {
            try command("Esys_EvictControl(0x\(String(handle, radix: 16)))") { esys in
                Esys_EvictControl(
                    esys, UInt32(ESYS_TR_RH_OWNER), transient, UInt32(ESYS_TR_PASSWORD), UInt32(ESYS_TR_NONE),
                    UInt32(ESYS_TR_NONE), handle, &persistent)
            }
        } catch {
            // TPM_RC_NV_DEFINED: the handle is taken.
            if error.baseCode == 0x14C {
                throw .usage(
                    "Esys_EvictControl",
                    "persistent handle 0x\(String(handle, radix: 16)) is already in use: pick another --handle, or evict it (tpm2_evictcontrol -c 0x\(String(handle, radix: 16)))")
            }
            throw error
        }
        return try readAttestationKey(handle: handle)
    }

    /// Reads the public part, name and signing scheme of the key at persistent `handle`.
    /// The corresponding C functions are `Esys_TR_FromTPMPublic` and `Esys_ReadPublic`.
    public func readAttestationKey(handle: UInt32) throws(TPMError) -> AttestationKeyInfo {
        let object = try objectHandle(persistent: handle)
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        var name: UnsafeMutablePointer<TPM2B_NAME>?
        var qualified: UnsafeMutablePointer<TPM2B_NAME>?
        try command("Esys_ReadPublic(0x\(String(handle, radix: 16)))") { esys in
            Esys_ReadPublic(esys, object, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &outPublic, &name, &qualified)
        }
        defer {
            Esys_Free(outPublic)
            Esys_Free(name)
            Esys_Free(qualified)
        }
        guard let outPublic, let name, let qualified else {
            throw .usage("Esys_ReadPublic", "TPM returned no public area")
        }
        let area = outPublic.pointee.publicArea
        let attributes = area.objectAttributes
        let required = UInt32(TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM)
        guard attributes & required == required, attributes & UInt32(TPMA_OBJECT_DECRYPT) == 0 else {
            throw .usage(
                "ak", "the key at 0x\(String(handle, radix: 16)) is not a restricted, fixedTPM signing key (attributes 0x\(String(attributes, radix: 16)))")
        }
        let publicKey: AttestationKeyPublic
        let scheme: QuoteSignatureScheme
        let hash: HashAlgorithm
        switch area.type {
        case UInt16(TPM2_ALG_ECC):
            let parameters = area.parameters.eccDetail
            guard let curve = AttestationKeyPublic.ECCCurve(rawValue: parameters.curveID) else {
                throw .usage("ak", "ECC curve 0x\(String(parameters.curveID, radix: 16)) is not supported")
            }
            guard parameters.scheme.scheme == UInt16(TPM2_ALG_ECDSA) else {
                throw .usage("ak", "ECC scheme 0x\(String(parameters.scheme.scheme, radix: 16)) is not ECDSA")
            }
            scheme = .ecdsa
            hash = HashAlgorithm(rawValue: parameters.scheme.details.ecdsa.hashAlg)
            publicKey = .ecc(
                curve: curve, x: Self.bytes(area.unique.ecc.x.size, area.unique.ecc.x.buffer),
                y: Self.bytes(area.unique.ecc.y.size, area.unique.ecc.y.buffer))
        case UInt16(TPM2_ALG_RSA):
            let parameters = area.parameters.rsaDetail
            switch parameters.scheme.scheme {
            case UInt16(TPM2_ALG_RSASSA): scheme = .rsassa
            case UInt16(TPM2_ALG_RSAPSS): scheme = .rsapss
            default: throw .usage("ak", "RSA scheme 0x\(String(parameters.scheme.scheme, radix: 16)) is not RSASSA or RSAPSS")
            }
            hash = HashAlgorithm(rawValue: parameters.scheme.details.anySig.hashAlg)
            publicKey = .rsa(modulus: Self.bytes(area.unique.rsa.size, area.unique.rsa.buffer), exponent: parameters.exponent)
        default:
            throw .usage("ak", "key type 0x\(String(area.type, radix: 16)) is neither RSA nor ECC")
        }
        return AttestationKeyInfo(
            handle: handle, publicKey: publicKey, name: Self.bytes(name.pointee.size, name.pointee.name),
            qualifiedName: Self.bytes(qualified.pointee.size, qualified.pointee.name), scheme: scheme, hash: hash)
    }

    /// `TPM2_Quote` over `selection` with `nonce` as qualifying data, signed with the key's
    /// own scheme. The corresponding C function is `Esys_Quote`.
    public func quote(attestationKey handle: UInt32, nonce: [UInt8], selection: PCRSelection) throws(TPMError) -> TPMQuote {
        guard !nonce.isEmpty, nonce.count <= Self.maximumNonceSize else {
            throw .usage("TPM2_Quote", "the nonce must be 1 to \(Self.maximumNonceSize) bytes, got \(nonce.count)")
        }
        guard !selection.banks.isEmpty, selection.banks.count <= Int(TPM2_NUM_PCR_BANKS) else {
            throw .usage("TPM2_Quote", "select 1 to \(TPM2_NUM_PCR_BANKS) banks")
        }
        let object = try objectHandle(persistent: handle)
        var qualifying = TPM2B_DATA()
        qualifying.size = UInt16(nonce.count)
        withUnsafeMutableBytes(of: &qualifying.buffer) { $0.copyBytes(from: nonce) }
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = UInt16(TPM2_ALG_NULL)  // the key's own scheme
        var pcrSelection = TPML_PCR_SELECTION(selection)
        var quoted: UnsafeMutablePointer<TPM2B_ATTEST>?
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>?
        try command("Esys_Quote(\(selection))") { esys in
            Esys_Quote(
                esys, object, UInt32(ESYS_TR_PASSWORD), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE),
                &qualifying, &scheme, &pcrSelection, &quoted, &signature)
        }
        defer {
            Esys_Free(quoted)
            Esys_Free(signature)
        }
        guard let quoted, let signature else { throw .usage("Esys_Quote", "TPM returned no quote") }
        let attest = Self.bytes(quoted.pointee.size, quoted.pointee.attestationData)
        let sig = signature.pointee
        switch sig.sigAlg {
        case UInt16(TPM2_ALG_ECDSA):
            let ecdsa = sig.signature.ecdsa
            return TPMQuote(
                attest: attest, scheme: .ecdsa, hash: HashAlgorithm(rawValue: ecdsa.hash),
                signature: .ecdsa(
                    r: Self.bytes(ecdsa.signatureR.size, ecdsa.signatureR.buffer),
                    s: Self.bytes(ecdsa.signatureS.size, ecdsa.signatureS.buffer)))
        case UInt16(TPM2_ALG_RSASSA), UInt16(TPM2_ALG_RSAPSS):
            let rsa = sig.sigAlg == UInt16(TPM2_ALG_RSASSA) ? sig.signature.rsassa : sig.signature.rsapss
            return TPMQuote(
                attest: attest, scheme: sig.sigAlg == UInt16(TPM2_ALG_RSASSA) ? .rsassa : .rsapss,
                hash: HashAlgorithm(rawValue: rsa.hash), signature: .rsa(Self.bytes(rsa.sig.size, rsa.sig.buffer)))
        default:
            throw .usage("Esys_Quote", "signature algorithm 0x\(String(sig.sigAlg, radix: 16)) is not supported")
        }
    }

    /// The ESYS_TR for a persistent handle. The corresponding C function is `Esys_TR_FromTPMPublic`.
    func objectHandle(persistent handle: UInt32) throws(TPMError) -> ESYS_TR {
        var object: ESYS_TR = UInt32(ESYS_TR_NONE)
        do {
            try command("Esys_TR_FromTPMPublic(0x\(String(handle, radix: 16)))") { esys in
                Esys_TR_FromTPMPublic(esys, handle, UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), UInt32(ESYS_TR_NONE), &object)
            }
        } catch {
            // TPM_RC_HANDLE (0x8B) with a parameter/handle number: nothing at that handle.
            if error.baseCode & 0xBF == 0x8B {
                throw .usage("ak", "no key at persistent handle 0x\(String(handle, radix: 16)): create one with `domb ak create`")
            }
            throw error
        }
        return object
    }

    static func attestationKeyTemplate(_ algorithm: AttestationKeyAlgorithm) throws(TPMError) -> TPM2B_PUBLIC {
        var template = TPM2B_PUBLIC()
        template.publicArea.nameAlg = UInt16(TPM2_ALG_SHA256)
        template.publicArea.objectAttributes = UInt32(
            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
                | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)
        switch algorithm {
        case .eccP256:
            template.publicArea.type = UInt16(TPM2_ALG_ECC)
            template.publicArea.parameters.eccDetail.symmetric.algorithm = UInt16(TPM2_ALG_NULL)
            template.publicArea.parameters.eccDetail.scheme.scheme = UInt16(TPM2_ALG_ECDSA)
            template.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = UInt16(TPM2_ALG_SHA256)
            template.publicArea.parameters.eccDetail.curveID = UInt16(TPM2_ECC_NIST_P256)
            template.publicArea.parameters.eccDetail.kdf.scheme = UInt16(TPM2_ALG_NULL)
        case .rsa(let bits):
            guard bits == 2048 || bits == 3072 else {
                throw .usage("ak create", "RSA keys are 2048 or 3072 bits, not \(bits)")
            }
            template.publicArea.type = UInt16(TPM2_ALG_RSA)
            template.publicArea.parameters.rsaDetail.symmetric.algorithm = UInt16(TPM2_ALG_NULL)
            template.publicArea.parameters.rsaDetail.scheme.scheme = UInt16(TPM2_ALG_RSASSA)
            template.publicArea.parameters.rsaDetail.scheme.details.rsassa.hashAlg = UInt16(TPM2_ALG_SHA256)
            template.publicArea.parameters.rsaDetail.keyBits = UInt16(bits)
            template.publicArea.parameters.rsaDetail.exponent = 0
        }
        return template
    }

    /// Copies the first `size` bytes of a TSS fixed array (imported as a tuple).
    static func bytes<T>(_ size: UInt16, _ buffer: T) -> [UInt8] {
        withUnsafeBytes(of: buffer) { Array($0.prefix(min(Int(size), $0.count))) }
    }
}

extension TPML_PCR_SELECTION {
    /// A selection with per-bank PCR lists, banks in the given order.
    init(_ selection: PCRSelection) {
        self.init()
        count = UInt32(min(selection.banks.count, Int(TPM2_NUM_PCR_BANKS)))
        withUnsafeMutableBytes(of: &pcrSelections) { raw in
            let selections = raw.bindMemory(to: TPMS_PCR_SELECTION.self)
            for (index, bank) in selection.banks.prefix(Int(TPM2_NUM_PCR_BANKS)).enumerated() {
                var item = TPMS_PCR_SELECTION()
                item.hash = bank.algorithm.rawValue
                item.sizeofSelect = 3
                withUnsafeMutableBytes(of: &item.pcrSelect) { bits in
                    for pcr in bank.pcrs where pcr >= 0 && pcr < PCRValues.pcrCount { bits[pcr / 8] |= UInt8(1 << (pcr % 8)) }
                }
                selections[index] = item
            }
        }
    }
}
