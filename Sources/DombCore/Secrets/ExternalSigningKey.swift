//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The public half of a PCR-policy signing key as a TPM sees it after
/// `TPM2_LoadExternal`: a marshalled `TPMT_PUBLIC` (TPM 2.0 Part 2, §12.2.4) and the name
/// the TPM derives from it.
///
/// `TPM2_PolicyAuthorize` binds a sealed object to the key's *name*, which hashes every
/// byte of the public area — attributes and parameters as well as the key — so the area
/// must be built the same way at seal time, at boot, and by anyone using tpm2-tools. domb
/// uses the area `tpm2_loadexternal -G ecc|rsa -u key.pem` builds (and systemd's
/// `tpm2_tpm2b_public_from_pem`): nameAlg SHA-256, attributes `userWithAuth | decrypt |
/// sign`, empty authPolicy, symmetric and scheme `TPM_ALG_NULL`, ECC kdf `TPM_ALG_NULL`,
/// RSA exponent 0 when it is 65537.
public struct ExternalSigningKey: Hashable, Sendable {
    /// The name algorithm: the hash of the name and of `PolicyAuthorize`'s `aHash`.
    public static let nameAlgorithm = HashAlgorithm.sha256
    /// `TPMA_OBJECT` `userWithAuth | decrypt | sign` (0x00060040).
    public static let objectAttributes: UInt32 = 0x0006_0040

    public let key: AttestationKeyPublic
    /// The marshalled `TPMT_PUBLIC` (no TPM2B size), as `TPM2_LoadExternal` takes it.
    public let tpmtPublic: [UInt8]

    /// Builds the public area for `key`.
    /// - Throws: ``ParseError`` for an RSA modulus outside 1024–4096 bits or ECC coordinates
    ///   longer than the curve's field.
    public init(_ key: AttestationKeyPublic) throws(ParseError) {
        // type, nameAlg, objectAttributes, authPolicy (empty), symmetric and scheme (null);
        // then the type's parameters and unique (Part 2, §12.2.4, §12.2.3.5–6).
        var writer = ByteWriter()
        let null: UInt16 = 0x0010
        func header(type: UInt16) {
            writer.writeBE(type)
            writer.writeBE(Self.nameAlgorithm.rawValue)
            writer.writeBE(Self.objectAttributes)
            writer.writeBE(UInt16(0))
            writer.writeBE(null)
            writer.writeBE(null)
        }
        switch key {
        case .rsa(let modulus, let exponent):
            guard [128, 256, 384, 512].contains(modulus.count) else {
                throw ParseError(.unsupported, "a \(modulus.count * 8)-bit RSA key (a TPM takes 1024 to 4096 bits)")
            }
            header(type: 0x0001)  // TPM_ALG_RSA
            writer.writeBE(UInt16(modulus.count * 8))  // keyBits
            writer.writeBE(exponent == 65537 ? 0 : exponent)
            writer.writeBE(UInt16(modulus.count))
            writer.writeBytes(modulus)
        case .ecc(let curve, let x, let y):
            let size = curve.coordinateSize
            guard !x.isEmpty, !y.isEmpty, x.count <= size, y.count <= size else {
                throw .invalid("ECC coordinates of \(x.count) and \(y.count) bytes for a \(size)-byte curve")
            }
            header(type: 0x0023)  // TPM_ALG_ECC
            writer.writeBE(curve.rawValue)
            writer.writeBE(null)  // kdf
            // Coordinates are fixed-size, left-padded (what OpenSSL and tpm2-tools give).
            for coordinate in [x, y] {
                writer.writeBE(UInt16(size))
                writer.writeZeros(size - coordinate.count)
                writer.writeBytes(coordinate)
            }
        }
        self.key = key
        self.tpmtPublic = writer.bytes
    }

    /// The TPM name: `nameAlg ‖ H_nameAlg(TPMT_PUBLIC)` (Part 1, §16).
    public func name(hashing: some AttestationHashing) throws(ParseError) -> [UInt8] {
        guard let digest = hashing.hash(tpmtPublic, with: Self.nameAlgorithm) else {
            throw ParseError(.unsupported, "cannot hash with \(Self.nameAlgorithm)")
        }
        return [UInt8(Self.nameAlgorithm.rawValue >> 8), UInt8(Self.nameAlgorithm.rawValue & 0xFF)] + digest
    }
}
