//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
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
///
/// A verifier hashes many small inputs (a replay step hashes 2 × 32 bytes), so each digest
/// is fetched once per process (`EVP_MD_fetch`) instead of OpenSSL 3's implicit fetch per
/// call; a fetched `EVP_MD` is immutable and safe to share between threads.
public struct OpenSSLHashing: AttestationHashing {
    public init() {}

    public func hash(_ bytes: [UInt8], with algorithm: HashAlgorithm) -> [UInt8]? {
        guard let md = FetchedDigests.shared.md(for: algorithm) else { return nil }
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { raw in
            EVP_Digest(raw.baseAddress, raw.count, &output, &length, md, nil)
        }
        guard ok == 1 else { return nil }
        return Array(output.prefix(Int(length)))
    }
}

/// The digests domb uses, fetched once.
final class FetchedDigests: @unchecked Sendable {
    static let shared = FetchedDigests()
    private let digests: [HashAlgorithm: OpaquePointer]

    private init() {
        var digests: [HashAlgorithm: OpaquePointer] = [:]
        for (algorithm, name) in [(HashAlgorithm.sha1, "SHA1"), (.sha256, "SHA256"), (.sha384, "SHA384"), (.sha512, "SHA512"), (.sm3_256, "SM3")] {
            if let md = EVP_MD_fetch(nil, name, nil) { digests[algorithm] = md }
        }
        self.digests = digests
    }

    func md(for algorithm: HashAlgorithm) -> OpaquePointer? { digests[algorithm] }
}

extension QuoteVerifier {
    /// A verifier that checks signatures with `key` and hashes with OpenSSL.
    public static func openSSL(key: PublicKey) -> QuoteVerifier {
        QuoteVerifier(signatureVerifier: AttestationKeyVerifier(key), hashing: OpenSSLHashing())
    }
}
