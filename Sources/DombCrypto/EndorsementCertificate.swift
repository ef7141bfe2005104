//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import DombCore

/// Checks of an EK certificate (TCG EK Credential Profile §3): that a manufacturer CA the
/// verifier trusts issued it, and that it certifies exactly the EK the host presented.
public enum EndorsementCertificate {
    /// The DER certificate at the start of an NV index's contents. TPMs size the index for
    /// the largest certificate and may pad after the DER; the padding is dropped here using
    /// the outer SEQUENCE's length (X.690 §8.1.3), which must fit in the input.
    public static func trimmedDER(_ contents: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard contents.count >= 2, contents[0] == 0x30 else {
            throw CryptoError("EK certificate", "the NV contents do not start with a DER SEQUENCE")
        }
        let first = Int(contents[1])
        var length = 0
        var header = 2
        if first < 0x80 {
            length = first
        } else {
            let count = first & 0x7F
            guard (1...3).contains(count), contents.count >= 2 + count else {
                throw CryptoError("EK certificate", "DER length of \(count) bytes is not a certificate's")
            }
            for byte in contents[2..<(2 + count)] { length = length << 8 | Int(byte) }
            header += count
        }
        guard header + length <= contents.count else {
            throw CryptoError("EK certificate", "DER says \(header + length) bytes, the NV index holds \(contents.count)")
        }
        return Array(contents.prefix(header + length))
    }

    /// Every reason `certificate` does not vouch for `endorsementKey`; empty if it does.
    ///
    /// - The chain must verify (signatures, validity at `time` or now) up to one of
    ///   `anchors`. Every anchor is trusted as given (OpenSSL's partial-chain mode), so a
    ///   directory holding only a manufacturer's intermediate CA works, as Keylime's
    ///   `tpm_cert_store` does.
    /// - Its subject public key must equal the EK's public key.
    public static func failures(
        certificate: X509Certificate, endorsementKey: TPMPublicArea, anchors: [X509Certificate], time: Int64? = nil
    ) -> [String] {
        var failures: [String] = []
        do {
            let certified = try certificate.subjectPublicKeyInfo()
            let presented = try PublicKey(endorsementKey.key).derSubjectPublicKeyInfo()
            if certified != presented {
                failures.append("the EK certificate (\(certificate.subject)) certifies another public key than the EK presented")
            }
        } catch {
            failures.append("the EK certificate's public key cannot be compared: \(error)")
        }
        guard !anchors.isEmpty else { return failures + ["no manufacturer CA certificate to verify the EK certificate against"] }
        guard let store = X509_STORE_new(), let context = X509_STORE_CTX_new() else {
            return failures + ["cannot allocate an X509 store"]
        }
        defer {
            X509_STORE_CTX_free(context)
            X509_STORE_free(store)
        }
        for anchor in anchors { X509_STORE_add_cert(store, anchor.pointer) }
        guard X509_STORE_CTX_init(context, store, certificate.pointer, nil) == 1 else {
            return failures + ["X509_STORE_CTX_init failed: \(CryptoError.openSSL("X509_STORE_CTX_init").message)"]
        }
        X509_STORE_CTX_set_purpose(context, X509_PURPOSE_ANY)
        if let parameters = X509_STORE_CTX_get0_param(context) {
            X509_VERIFY_PARAM_set_flags(parameters, UInt(X509_V_FLAG_PARTIAL_CHAIN))
            if let time { X509_VERIFY_PARAM_set_time(parameters, time_t(time)) }
        }
        if X509_verify_cert(context) != 1 {
            let code = X509_STORE_CTX_get_error(context)
            let depth = X509_STORE_CTX_get_error_depth(context)
            let reason = String(cString: X509_verify_cert_error_string(Int(code)))
            failures.append(
                "the EK certificate (\(certificate.subject), issued by \(certificate.issuer)) does not verify against the trusted manufacturer CAs at depth \(depth): \(reason)")
        }
        return failures
    }
}

extension X509Certificate {
    /// The DER `SubjectPublicKeyInfo` of the certificate's key (`i2d_X509_PUBKEY`).
    public func subjectPublicKeyInfo() throws(CryptoError) -> [UInt8] {
        guard let key = X509_get_X509_PUBKEY(pointer) else { throw CryptoError.openSSL("X509_get_X509_PUBKEY") }
        let length = i2d_X509_PUBKEY(key, nil)
        guard length > 0 else { throw CryptoError.openSSL("i2d_X509_PUBKEY") }
        var output = [UInt8](repeating: 0, count: Int(length))
        let written = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_X509_PUBKEY(key, &cursor)
        }
        guard written == length else { throw CryptoError.openSSL("i2d_X509_PUBKEY") }
        return output
    }
}
