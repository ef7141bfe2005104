//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The public part of a TPM key as the TPM reports it (`TPMT_PUBLIC.unique` and parameters,
/// TPM 2.0 Part 2, §12.2.4), without C types, so DombCrypto can turn it into a PEM key.
public enum AttestationKeyPublic: Hashable, Sendable {
    /// An ECC point on `curve`.
    case ecc(curve: ECCCurve, x: [UInt8], y: [UInt8])
    /// An RSA modulus; exponent 0 in the TPM means the default 65537.
    case rsa(modulus: [UInt8], exponent: UInt32)

    /// `TPM_ECC_CURVE` values (Part 2, §6.4) domb supports.
    public enum ECCCurve: UInt16, Hashable, Sendable {
        case nistP256 = 0x0003
        case nistP384 = 0x0004
        case nistP521 = 0x0005

        /// Coordinate size in bytes.
        public var coordinateSize: Int {
            switch self {
            case .nistP256: 32
            case .nistP384: 48
            case .nistP521: 66
            }
        }
    }
}
