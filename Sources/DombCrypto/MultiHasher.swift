//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

/// Streaming digests of the same data in several TPM banks at once, over OpenSSL EVP.
///
/// Each chunk handed to ``update(_:)`` is fed to every bank's context before the next is
/// read, so a file is read once however many banks are active, in bounded memory.
public struct MultiHasher: ~Copyable {
    private var contexts: [(HashAlgorithm, OpaquePointer)] = []

    /// - Throws: ``CryptoError`` if OpenSSL does not provide one of the algorithms
    ///   (sm3 is absent from some OpenSSL builds).
    public init(algorithms: [HashAlgorithm]) throws(CryptoError) {
        for algorithm in Set(algorithms).sorted() {
            guard let md = Self.messageDigest(for: algorithm) else {
                for (_, context) in contexts { EVP_MD_CTX_free(context) }
                throw CryptoError("digest", "OpenSSL has no implementation of \(algorithm)")
            }
            guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, md, nil) == 1 else {
                for (_, context) in contexts { EVP_MD_CTX_free(context) }
                throw CryptoError.openSSL("EVP_DigestInit_ex(\(algorithm))")
            }
            contexts.append((algorithm, context))
        }
    }

    deinit {
        for (_, context) in contexts { EVP_MD_CTX_free(context) }
    }

    /// The OpenSSL digest for a TPM algorithm, or nil if this OpenSSL lacks it.
    static func messageDigest(for algorithm: HashAlgorithm) -> OpaquePointer? {
        switch algorithm {
        case .sha1: EVP_sha1()
        case .sha256: EVP_sha256()
        case .sha384: EVP_sha384()
        case .sha512: EVP_sha512()
        case .sm3_256: EVP_get_digestbyname("SM3")
        default: nil
        }
    }

    /// Whether this OpenSSL can hash `algorithm`.
    public static func supports(_ algorithm: HashAlgorithm) -> Bool { messageDigest(for: algorithm) != nil }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        for (_, context) in contexts { EVP_DigestUpdate(context, base, bytes.count) }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    public mutating func update(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { update($0) } }

    /// Finishes every bank and returns the digests in TPM_ALG_ID order.
    public consuming func finalize() throws(CryptoError) -> DigestSet {
        var result = DigestSet()
        for (algorithm, context) in contexts {
            var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
            var length: UInt32 = 0
            guard EVP_DigestFinal_ex(context, &output, &length) == 1 else {
                throw CryptoError.openSSL("EVP_DigestFinal_ex(\(algorithm))")
            }
            result[algorithm] = Array(output.prefix(Int(length)))
        }
        return result
    }

    /// Digests of `bytes` in every algorithm.
    public static func digest(_ bytes: ArraySlice<UInt8>, algorithms: [HashAlgorithm]) throws(CryptoError) -> DigestSet {
        var hasher = try MultiHasher(algorithms: algorithms)
        hasher.update(bytes)
        return try hasher.finalize()
    }

    public static func digest(_ bytes: [UInt8], algorithms: [HashAlgorithm]) throws(CryptoError) -> DigestSet {
        try digest(bytes[...], algorithms: algorithms)
    }
}
