//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// Keys and certificates made with the openssl CLI, once per test process: a CA, signers
/// with the codeSigning EKU for every supported key type, an expired signer, a signer of
/// another CA (untrusted), a TLS-server-only signer (wrong purpose), and refused keys.
public final class TestPKI: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public var path: String { directory.path }

    /// The trusted CA certificate (PEM) and a directory holding only it.
    public var caCertificate: String { directory.file("ca.pem") }
    public var trustDirectory: String { directory.file("trust") }
    /// The untrusted CA that issued `untrusted`.
    public var otherCACertificate: String { directory.file("otherca.pem") }

    /// `name.key`, `name.pem`, `name.pub` for a signer.
    public func key(_ name: String) -> String { directory.file("\(name).key") }
    public func certificate(_ name: String) -> String { directory.file("\(name).pem") }
    public func publicKey(_ name: String) -> String { directory.file("\(name).pub") }

    /// Signers issued by the CA with codeSigning: "p256", "p384", "rsa3072", "ed25519".
    public static let signerNames = ["p256", "p384", "rsa3072", "ed25519"]

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cached: TestPKI?

    /// The process-wide PKI, made on first use.
    public static func shared() throws -> TestPKI {
        try lock.withLock {
            if let cached { return cached }
            let made = try TestPKI()
            cached = made
            return made
        }
    }

    private static let keyArguments: [String: [String]] = [
        "p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "p384": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "p521": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        "rsa3072": ["-newkey", "rsa:3072"],
        "rsa2048": ["-newkey", "rsa:2048"],
        "ed25519": ["-newkey", "ed25519"],
    ]

    private init() throws {
        directory = try TemporaryDirectory(prefix: "domb-pki")
        let codeSigning = try directory.write("codesign.ext", "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n")
        let serverAuth = try directory.write("server.ext", "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        try makeCA("ca", subject: "/CN=domb test CA")
        try makeCA("otherca", subject: "/CN=domb untrusted CA")
        try FileManager.default.createDirectory(atPath: trustDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: caCertificate, toPath: "\(trustDirectory)/ca.pem")
        for name in Self.signerNames {
            try makeSigner(name, algorithm: name, ca: "ca", extensions: codeSigning)
        }
        try makeSigner("untrusted", algorithm: "p256", ca: "otherca", extensions: codeSigning)
        try makeSigner("tlsserver", algorithm: "p256", ca: "ca", extensions: serverAuth)
        try makeSigner("p256b", algorithm: "p256", ca: "ca", extensions: codeSigning)
        try makeSigner("expired", algorithm: "p256", ca: "ca", extensions: codeSigning, expired: true)
        for name in ["rsa2048", "p521"] {
            try Tools.run("openssl", ["req", "-new", "-nodes", "-subj", "/CN=\(name)", "-keyout", key(name), "-out", directory.file("\(name).csr")] + (Self.keyArguments[name] ?? []))
        }
    }

    private func makeCA(_ name: String, subject: String) throws {
        try Tools.run(
            "openssl",
            [
                "req", "-x509", "-new", "-nodes", "-subj", subject, "-days", "3650", "-keyout", key(name), "-out",
                certificate(name), "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ] + (Self.keyArguments["p256"] ?? []))
    }

    private func makeSigner(_ name: String, algorithm: String, ca: String, extensions: String, expired: Bool = false) throws {
        let csr = directory.file("\(name).csr")
        try Tools.run(
            "openssl",
            ["req", "-new", "-nodes", "-subj", "/CN=domb test signer \(name)", "-keyout", key(name), "-out", csr]
                + (Self.keyArguments[algorithm] ?? []))
        if expired {
            // `openssl x509 -req` cannot backdate in OpenSSL 3.0; `openssl ca` can.
            let caDirectory = directory.file("ca-db")
            try FileManager.default.createDirectory(atPath: "\(caDirectory)/new", withIntermediateDirectories: true)
            _ = try directory.write("ca-db/index.txt", "")
            _ = try directory.write("ca-db/serial", "1000\n")
            let config = try directory.write(
                "ca-db/ca.cnf",
                """
                [ca]
                default_ca = test
                [test]
                database = \(caDirectory)/index.txt
                new_certs_dir = \(caDirectory)/new
                serial = \(caDirectory)/serial
                default_md = sha256
                policy = any
                [any]
                commonName = supplied

                """)
            try Tools.run(
                "openssl",
                [
                    "ca", "-batch", "-config", config, "-cert", certificate(ca), "-keyfile", key(ca), "-in", csr, "-out",
                    certificate(name), "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-extfile", extensions,
                    "-notext",
                ])
        } else {
            try Tools.run(
                "openssl",
                [
                    "x509", "-req", "-in", csr, "-CA", certificate(ca), "-CAkey", key(ca), "-CAcreateserial", "-days", "365",
                    "-extfile", extensions, "-out", certificate(name),
                ])
        }
        try Tools.run("openssl", ["pkey", "-in", key(name), "-pubout", "-out", publicKey(name)])
    }
}
