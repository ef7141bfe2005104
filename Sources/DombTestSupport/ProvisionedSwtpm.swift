//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Foundation

/// A swtpm manufactured as a vendor would: `swtpm_setup --create-ek-cert
/// --create-platform-cert` with `swtpm_localca` as the "manufacturer CA". It leaves an RSA
/// 2048 EK at 0x81010001 with its certificate at NV 0x01c00002, an ECC P-384 EK at
/// 0x81010016 with its certificate at 0x01c00016, and the platform certificate at 0x01c08000.
///
/// Manufacturing takes seconds (RSA key generation in swtpm), so it runs once per test
/// process; each test gets its own copy of the state (``start()``).
public enum ProvisionedSwtpm {
    /// The manufactured state and the local CA, made on first use.
    public struct Manufactured: Sendable {
        /// The swtpm state directory (holds `tpm2-00.permall`).
        public var state: String
        /// A directory with the CA certificates that issued the EK certificates
        /// (`issuercert.pem`, `swtpm-localca-rootca-cert.pem`) — a verifier's trust anchors.
        public var caDirectory: String
        /// The directory of the CA's private keys (never handed to a verifier).
        public var localCA: String
    }

    private static let shared = LockedBox<Result<Manufactured, any Error>?>(nil)
    // Kept alive for the process: the temporary directory is removed on deinit.
    private static let root = LockedBox<TemporaryDirectory?>(nil)

    /// Serialises the first use: two tests manufacturing at once would each replace the
    /// other's directory (``root``), deleting the state the first one returned.
    private static let manufacturing = NSLock()

    /// Manufactures the TPM once per process.
    public static func manufactured() throws -> Manufactured {
        try manufacturing.withLock {
            if let done = shared.value { return try done.get() }
            let result = Result { () throws -> Manufactured in try manufacture() }
            shared.value = result
            return try result.get()
        }
    }

    /// A running swtpm on a copy of the manufactured state.
    public static func start() throws -> Swtpm {
        let made = try manufactured()
        let copy = try TemporaryDirectory(prefix: "domb-swtpm-ek")
        for name in try FileManager.default.contentsOfDirectory(atPath: made.state) where name.hasPrefix("tpm2-") {
            try FileManager.default.copyItem(atPath: "\(made.state)/\(name)", toPath: copy.file(name))
        }
        return try Swtpm(state: copy)
    }

    private static func manufacture() throws -> Manufactured {
        let setup = try Tools.require("swtpm_setup")
        let localcaTool = try Tools.require("swtpm_localca")
        let directory = try TemporaryDirectory(prefix: "domb-swtpm-manufactured")
        root.value = directory
        let state = directory.file("state")
        let localca = directory.file("localca")
        let cas = directory.file("ca")
        for path in [state, localca, cas] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        let localcaConfig = try directory.write(
            "swtpm-localca.conf",
            """
            statedir = \(localca)
            signingkey = \(localca)/signkey.pem
            issuercert = \(localca)/issuercert.pem
            certserial = \(localca)/certserial

            """)
        let options = try directory.write("swtpm-localca.options", "--platform-manufacturer domb-test\n--platform-version 1\n--platform-model swtpm\n")
        let setupConfig = try directory.write(
            "swtpm_setup.conf",
            """
            create_certs_tool = \(localcaTool)
            create_certs_tool_config = \(localcaConfig)
            create_certs_tool_options = \(options)
            active_pcr_banks = sha256

            """)
        _ = try Tools.run(
            setup,
            [
                "--tpm2", "--tpmstate", state, "--config", setupConfig, "--create-ek-cert", "--create-platform-cert",
                "--lock-nvram", "--overwrite", "--logfile", directory.file("setup.log"),
            ])
        for (source, name) in [("issuercert.pem", "swtpm-localca-issuer.pem"), ("swtpm-localca-rootca-cert.pem", "swtpm-localca-rootca.pem")] {
            try FileManager.default.copyItem(atPath: "\(localca)/\(source)", toPath: "\(cas)/\(name)")
        }
        return Manufactured(state: state, caDirectory: cas, localCA: localca)
    }
}
