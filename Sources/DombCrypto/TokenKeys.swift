//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import COpenSSL
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a signing key lives, from the text of `--key` / `--pcr-key` (docs/secrets.md,
/// "Release keys in an HSM or a TPM").
public enum SigningKeyReference: Hashable, Sendable, CustomStringConvertible {
    /// A PEM private key file.
    case file(String)
    /// A key in a PKCS#11 token, by RFC 7512 URI (`pkcs11:token=…;object=…`), used through
    /// libp11's `pkcs11` engine (Debian `libengine-pkcs11-openssl`). The module is
    /// p11-kit's proxy unless `PKCS11_MODULE_PATH` names one; the PIN comes from the URI's
    /// `pin-source`/`pin-value` or a terminal prompt.
    case pkcs11(String)
    /// A TPM key at a persistent handle (`handle:0x81000001`), used through the tpm2-openssl
    /// provider (Debian `tpm2-openssl`); the TPM is `TPM2OPENSSL_TCTI`, else the default TCTI.
    case tpmHandle(String)

    public init(parsing text: String) {
        if text.hasPrefix("pkcs11:") {
            self = .pkcs11(text)
        } else if text.hasPrefix("handle:") {
            self = .tpmHandle(text)
        } else {
            self = .file(text)
        }
    }

    public var description: String {
        switch self {
        case .file(let path): path
        case .pkcs11(let uri): Self.redactingPIN(uri)
        case .tpmHandle(let uri): uri
        }
    }

    /// The file a PKCS#11 URI's `pin-source` names (RFC 7512 §2.4, `pin-source=file:PATH`
    /// or a bare path, percent-encoded; in the path or the query part), or nil.
    static func pinSourcePath(_ uri: String) -> String? {
        guard let range = uri.range(of: "pin-source=") else { return nil }
        let rest = uri[range.upperBound...]
        let value = String(rest[..<(rest.firstIndex { $0 == "&" || $0 == ";" || $0 == "?" } ?? rest.endIndex)])
        let decoded = value.removingPercentEncoding ?? value
        let path = decoded.hasPrefix("file:") ? String(decoded.dropFirst("file:".count)) : decoded
        return path.isEmpty ? nil : path
    }

    /// Refuses a `pin-source` file that ends with a line break. libp11 sends the file's bytes
    /// verbatim as the PIN, so `echo PIN > file` is a wrong PIN, and wrong PINs count toward
    /// the token's lockout: better refused here, before the token is asked. Only a regular
    /// file of at most 4 KiB is read (a FIFO would be consumed); others are libp11's to judge.
    func checkPINSource() throws(CryptoError) {
        guard case .pkcs11(let uri) = self, let path = Self.pinSourcePath(uri) else { return }
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, status.st_size <= 4096,
            let bytes = FileManager.default.contents(atPath: path), let last = bytes.last
        else { return }
        if last == 0x0A || last == 0x0D {
            throw CryptoError(
                "load \(description)",
                "the PIN file \(path) ends with a line break, which the token would take as part of the PIN (a wrong PIN counts toward its lockout); write it without one: printf '%s' \"$PIN\" > \(path)")
        }
    }

    /// The URI without a `pin-value` (never printed).
    static func redactingPIN(_ uri: String) -> String {
        guard let range = uri.range(of: "pin-value=") else { return uri }
        let rest = uri[range.upperBound...]
        let end = rest.firstIndex { $0 == "&" || $0 == ";" } ?? rest.endIndex
        return String(uri[..<range.upperBound]) + "***" + String(rest[end...])
    }
}

/// What keeps a token key usable: the engine's functional reference, or the library context
/// with the tpm2 provider loaded. Released after the key (``SigningKey`` holds it).
final class KeyToken: @unchecked Sendable {
    private var engine: OpaquePointer?
    /// The library context operations on the key run in (nil: OpenSSL's default).
    private(set) var libraryContext: OpaquePointer?
    private var providers: [OpaquePointer] = []
    /// The property query that keeps operations on the key in its provider.
    let propertyQuery: String?

    private init(engine: OpaquePointer?, libraryContext: OpaquePointer?, providers: [OpaquePointer], propertyQuery: String?) {
        self.engine = engine
        self.libraryContext = libraryContext
        self.providers = providers
        self.propertyQuery = propertyQuery
    }

    deinit {
        if let engine { COpenSSL_engine_release(engine) }
        for provider in providers.reversed() { OSSL_PROVIDER_unload(provider) }
        if let libraryContext { OSSL_LIB_CTX_free(libraryContext) }
    }

    /// Loads libp11's engine.
    static func pkcs11Engine() throws(CryptoError) -> KeyToken {
        guard let engine = COpenSSL_engine_acquire("pkcs11") else {
            throw CryptoError(
                "load the pkcs11 engine",
                "\(CryptoError.openSSL("ENGINE_by_id(pkcs11)").message); install libengine-pkcs11-openssl")
        }
        return KeyToken(engine: engine, libraryContext: nil, providers: [], propertyQuery: nil)
    }

    /// A library context of its own with the tpm2 and default providers. The tpm2 provider
    /// also implements digests and ciphers with TPM commands, so it never joins the default
    /// context, where it would serve every hash domb computes.
    static func tpm2Provider() throws(CryptoError) -> KeyToken {
        guard let context = OSSL_LIB_CTX_new() else { throw CryptoError.openSSL("OSSL_LIB_CTX_new") }
        guard let tpm2 = OSSL_PROVIDER_load(context, "tpm2") else {
            let error = CryptoError.openSSL("OSSL_PROVIDER_load(tpm2)")
            OSSL_LIB_CTX_free(context)
            throw CryptoError("load the tpm2 provider", "\(error.message); install tpm2-openssl")
        }
        guard let base = OSSL_PROVIDER_load(context, "default") else {
            let error = CryptoError.openSSL("OSSL_PROVIDER_load(default)")
            OSSL_PROVIDER_unload(tpm2)
            OSSL_LIB_CTX_free(context)
            throw error
        }
        return KeyToken(engine: nil, libraryContext: context, providers: [tpm2, base], propertyQuery: "?provider=tpm2")
    }

    /// The engine's private key `uri`.
    ///
    /// libp11 prints its own diagnostics to standard error, the full URI among them — a
    /// `pin-value` too — so standard error is pointed at /dev/null while it loads the key;
    /// the reason still reaches the user through OpenSSL's error queue (`PIN incorrect`).
    func engineKey(_ uri: String, source: String) throws(CryptoError) -> OpaquePointer {
        let saved = dup(STDERR_FILENO)
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if saved >= 0, null >= 0 { dup2(null, STDERR_FILENO) }
        let loaded = engine.flatMap { COpenSSL_engine_load_private_key($0, uri) }
        if saved >= 0, null >= 0 { dup2(saved, STDERR_FILENO) }
        if saved >= 0 { close(saved) }
        if null >= 0 { close(null) }
        guard let key = loaded else {
            throw CryptoError("load \(source)", "\(CryptoError.openSSL("ENGINE_load_private_key").message)")
        }
        return key
    }

    /// The first private key `OSSL_STORE` finds at `uri` in this context.
    func storeKey(_ uri: String, source: String) throws(CryptoError) -> OpaquePointer {
        guard let store = OSSL_STORE_open_ex(uri, libraryContext, propertyQuery, nil, nil, nil, nil, nil) else {
            throw CryptoError("open \(source)", CryptoError.openSSL("OSSL_STORE_open_ex").message)
        }
        defer { OSSL_STORE_close(store) }
        while OSSL_STORE_eof(store) == 0 {
            guard let info = OSSL_STORE_load(store) else { break }
            defer { OSSL_STORE_INFO_free(info) }
            if OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY, let key = OSSL_STORE_INFO_get1_PKEY(info) {
                return key
            }
        }
        throw CryptoError("load \(source)", "no private key there: \(CryptoError.openSSL("OSSL_STORE_load").message)")
    }
}

extension SigningKey {
    /// Loads the key `reference` names: a PEM file, a PKCS#11 object or a TPM key. A token
    /// key is used where it is; its private part never enters this process.
    ///
    /// - Throws: ``CryptoError`` naming the reference (never a PIN) and OpenSSL's reason.
    public convenience init(reference: SigningKeyReference) throws(CryptoError) {
        switch reference {
        case .file(let path):
            try self.init(path: path)
        case .pkcs11(let uri):
            try reference.checkPINSource()
            // tss2 and libp11 log to stderr; domb reports errors itself.
            let token = try KeyToken.pkcs11Engine()
            try self.init(owning: try token.engineKey(uri, source: reference.description), token: token, source: reference.description)
        case .tpmHandle(let uri):
            setenv("TSS2_LOG", "all+none", 0)
            let token = try KeyToken.tpm2Provider()
            try self.init(owning: try token.storeKey(uri, source: uri), token: token, source: uri)
        }
    }

    /// The key named by the text of a `--key` option.
    public convenience init(referenceText text: String) throws(CryptoError) {
        try self.init(reference: SigningKeyReference(parsing: text))
    }
}
