//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// The attestation key, for ``QuoteVerifier``: signatures checked with OpenSSL.
public struct AttestationKeyVerifier: QuoteSignatureVerifying {
    public let key: PublicKey

    public init(_ key: PublicKey) { self.key = key }

    public func failureToVerify(_ signature: QuoteSignature, over message: [UInt8]) -> String? {
        key.failureToVerify(signature: signature.bytes, over: message, hash: signature.hash, scheme: signature.scheme)
    }
}

/// OpenSSL's digests, for ``QuoteVerifier`` (PCR digest, event replay).
public struct OpenSSLHashing: AttestationHashing {
    public init() {}

    public func hash(_ bytes: [UInt8], with algorithm: HashAlgorithm) -> [UInt8]? {
        guard MultiHasher.supports(algorithm) else { return nil }
        return (try? MultiHasher.digest(bytes, algorithms: [algorithm]))?[algorithm]
    }
}

extension QuoteVerifier {
    /// A verifier that checks signatures with `key` and hashes with OpenSSL.
    public static func openSSL(key: PublicKey) -> QuoteVerifier {
        QuoteVerifier(signatureVerifier: AttestationKeyVerifier(key), hashing: OpenSSLHashing())
    }
}
