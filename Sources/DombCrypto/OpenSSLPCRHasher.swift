//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

/// The core's ``PCRHashing`` over OpenSSL EVP, for replay and prediction.
///
/// Small inputs dominate replay (a PCR extend hashes 2 × 32 bytes), so the digests are
/// fetched once (`EVP_MD_fetch`, avoiding OpenSSL 3's implicit fetch per call) and one
/// context per bank is reused. Not thread-safe: use one per thread.
public final class OpenSSLPCRHasher: PCRHashing {
    private var entries: [(HashAlgorithm, md: OpaquePointer, context: OpaquePointer)] = []

    public init() {}

    deinit {
        for entry in entries {
            EVP_MD_CTX_free(entry.context)
            EVP_MD_free(entry.md)
        }
    }

    private func entry(for algorithm: HashAlgorithm) throws(CryptoError) -> (md: OpaquePointer, context: OpaquePointer) {
        if let found = entries.first(where: { $0.0 == algorithm }) { return (found.md, found.context) }
        let name: String
        switch algorithm {
        case .sha1: name = "SHA1"
        case .sha256: name = "SHA256"
        case .sha384: name = "SHA384"
        case .sha512: name = "SHA512"
        case .sm3_256: name = "SM3"
        default: throw CryptoError("digest", "domb cannot hash algorithm \(algorithm)")
        }
        guard let md = EVP_MD_fetch(nil, name, nil) else {
            throw CryptoError.openSSL("EVP_MD_fetch(\(name)): OpenSSL has no implementation of \(algorithm)")
        }
        guard let context = EVP_MD_CTX_new() else {
            EVP_MD_free(md)
            throw CryptoError.openSSL("EVP_MD_CTX_new")
        }
        entries.append((algorithm, md, context))
        return (md, context)
    }

    private func hash(_ algorithm: HashAlgorithm, _ parts: UnsafeRawBufferPointer...) throws(CryptoError) -> [UInt8] {
        let (md, context) = try entry(for: algorithm)
        guard EVP_DigestInit_ex2(context, md, nil) == 1 else { throw CryptoError.openSSL("EVP_DigestInit_ex2(\(algorithm))") }
        for part in parts where part.count > 0 {
            guard EVP_DigestUpdate(context, part.baseAddress, part.count) == 1 else {
                throw CryptoError.openSSL("EVP_DigestUpdate(\(algorithm))")
            }
        }
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &output, &length) == 1 else {
            throw CryptoError.openSSL("EVP_DigestFinal_ex(\(algorithm))")
        }
        output.removeLast(output.count - Int(length))
        return output
    }

    public func digest(_ algorithm: HashAlgorithm, _ data: ArraySlice<UInt8>) throws -> [UInt8] {
        let result = data.withUnsafeBytes { raw in Result { () throws(CryptoError) in try hash(algorithm, raw) } }
        return try result.get()
    }

    public func extend(_ algorithm: HashAlgorithm, register: inout [UInt8], with digest: ArraySlice<UInt8>) throws {
        let (md, context) = try entry(for: algorithm)
        var length: UInt32 = 0
        var ok = EVP_DigestInit_ex2(context, md, nil) == 1
        ok = ok && register.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) } == 1
        ok = ok && digest.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, $0.count) } == 1
        guard ok, Int(EVP_MD_get_size(md)) == register.count else {
            throw CryptoError.openSSL("extend(\(algorithm)): register of \(register.count) bytes")
        }
        // The register is uniquely owned here: the digest is written over it in place.
        ok = register.withUnsafeMutableBytes { raw in
            EVP_DigestFinal_ex(context, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), &length) == 1
        }
        guard ok, Int(length) == register.count else { throw CryptoError.openSSL("EVP_DigestFinal_ex(\(algorithm))") }
    }

    public func extend(_ algorithm: HashAlgorithm, _ old: [UInt8], with digest: [UInt8]) throws -> [UInt8] {
        let result = old.withUnsafeBytes { first in
            digest.withUnsafeBytes { second in Result { () throws(CryptoError) in try hash(algorithm, first, second) } }
        }
        return try result.get()
    }
}
