//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombAgent
import DombFiles
import DombCore
import DombCrypto
import DombTPM
import Foundation
import Logging

/// `domb agent`: a Keylime pull-model agent, attested by an unmodified Keylime verifier.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Serve Keylime's pull-model agent API (v2.1–2.5) from this host's TPM; register with the registrar.",
        discussion: """
            Registers with the registrar (EK, EK certificate from NV, AK; TPM2_ActivateCredential of \
            the registrar's challenge; HMAC auth tag), then answers GET /version, \
            /v2.x/quotes/identity and /v2.x/quotes/integrity (nonce, mask, partial; PCR 16 bound to \
            the agent's key; the measured-boot log when the mask selects PCR 0) and /v2.x/keys/pubkey. \
            Quotes are refused (503) until activation has succeeded. With mutual TLS (the default, \
            as Keylime expects) the agent presents a self-signed certificate of its key, registered \
            as mtls_cert, and accepts only clients whose certificate chains to --trusted-client-ca \
            (Keylime's cv_ca/cacert.crt); --no-mtls serves plain HTTP and registers mtls_cert \
            "disabled" (the verifier and tenant then need enable_agent_mtls = False). Runs until \
            stopped; see examples/systemd/domb-agent.service and docs/keylime.md.
            """ + "\n\n" + ExitStatus.help(success: "the agent stopped on SIGINT or SIGTERM", refused: "registration or activation was refused"))

    @OptionGroup var tpm: TPMOptions
    @OptionGroup var endorsement: EndorsementOptions
    @Option(help: "Persistent handle of the AK (RSA for a default Keylime, whose accept_tpm_signing_algs is ecschnorr, rsassa).")
    var akHandle: String = TPM.defaultAttestationKeyHandleText
    @Option(help: "The agent's UUID (default: the hex SHA-256 of the EK public area).") var uuid: String?
    @Option(help: "The registrar's plain-HTTP agent endpoint, HOST:PORT.") var registrar: String = "127.0.0.1:8890"
    @Option(help: "Where to listen, HOST:PORT (Keylime's agent port is 9002).") var listen: String = "0.0.0.0:9002"
    @Option(help: "The IP address the verifier reaches the agent at (default: the listen host, or 127.0.0.1 for 0.0.0.0).")
    var contactIp: String?
    @Option(help: "The port the verifier reaches the agent at (default: the listen port).") var contactPort: Int?
    @Option(help: "The agent's own key (key.pem, mode 0600) and certificate (cert.pem) live here; created if missing.")
    var stateDirectory: String = "/var/lib/domb/agent"
    @Option(help: "CA certificate (PEM) that verifier and tenant client certificates must chain to (Keylime: cv_ca/cacert.crt).")
    var trustedClientCa: String?
    @Flag(help: "Serve plain HTTP without mutual TLS (tests; the verifier needs enable_agent_mtls = False).") var noMtls = false
    @Option(help: "The measured-boot log to serve when the mask selects PCR 0 (default: /sys/kernel/security/tpm0/binary_bios_measurements if present).")
    var eventlog: String?
    @Option(help: "Registration attempts while the registrar is unreachable, one second apart.") var registerAttempts: Int = 30
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"

    func validate() throws {
        if noMtls == (trustedClientCa != nil) {
            throw ValidationError("give --trusted-client-ca FILE (mutual TLS, Keylime's default) or --no-mtls, not both or neither")
        }
        _ = try Self.hostPort(registrar, "--registrar")
        _ = try Self.hostPort(listen, "--listen")
        _ = try AttestationIO.parseHandle(akHandle)
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    static func hostPort(_ text: String, _ option: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(option) \(text): expected HOST:PORT")
        }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { throw ValidationError("\(option) \(text): the host is empty") }
        return (host, port)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "domb.agent")
        let tcti = try tpm.resolve()
        let ekHandle = try endorsement.handle()
        let (listenHost, listenPort) = try Self.hostPort(listen, "--listen")
        let (registrarHost, registrarPort) = try Self.hostPort(registrar, "--registrar")

        let key = try Self.loadOrCreateKey(in: stateDirectory)
        var agentUUID = uuid
        if agentUUID == nil {
            let connection = try TPM(tcti)
            defer { connection.close() }
            let ek = try connection.readEndorsementKey(endorsement.ek, handle: ekHandle)
            agentUUID = OpenSSLHashing().hash(ek.publicArea, with: .sha256)?.hexString
        }
        guard let agentUUID else { throw AttestationCLIError("cannot derive the agent UUID from the EK") }
        var logPath = eventlog
        let firmwareLog = "/sys/kernel/security/tpm0/binary_bios_measurements"
        if logPath == nil, FileManager.default.isReadableFile(atPath: firmwareLog) { logPath = firmwareLog }

        let agent = KeylimeAgent(
            configuration: KeylimeAgentConfiguration(
                uuid: agentUUID, tcti: tcti, akHandle: try AttestationIO.parseHandle(akHandle), ekType: endorsement.ek,
                ekHandle: ekHandle, measuredBootLog: logPath),
            key: key, logger: logger)
        let contactHost = contactIp ?? (listenHost == "0.0.0.0" || listenHost == "::" ? "127.0.0.1" : listenHost)
        var tls: AgentTLS?
        var certificatePEM: String?
        if let trustedClientCa {
            let certificate = try Self.loadOrCreateCertificate(in: stateDirectory, key: key, uuid: agentUUID, ip: contactHost)
            certificatePEM = String(decoding: certificate, as: UTF8.self)
            tls = AgentTLS(certificatePEM: certificate, privateKeyPEM: key.privatePEM, trustedClientCA: trustedClientCa)
        }
        let server = try await AgentHTTPServer(agent: agent, host: listenHost, port: listenPort, tls: tls)
        let boundPort = server.localPort ?? listenPort
        logger.info(
            "listening", metadata: ["address": "\(listenHost):\(boundPort)", "mtls": "\(tls != nil)", "uuid": "\(agentUUID)"])

        let client = RegistrarClient(host: registrarHost, port: registrarPort)
        let contact = RegistrarClient.Contact(ip: contactHost, port: contactPort ?? boundPort, mtlsCertificatePEM: certificatePEM)
        var attempt = 0
        while true {
            attempt += 1
            do {
                let api = try await client.register(agent: agent, contact: contact)
                logger.info("registered and activated", metadata: ["registrar": "\(registrar)", "api": "\(api)", "uuid": "\(agentUUID)"])
                break
            } catch {
                // A refusal (HTTP 4xx, a wrong tag) will not change by retrying; an unreachable registrar may.
                let refused = "\(error)".contains("refused the")
                if refused || attempt >= registerAttempts {
                    logger.critical("registration failed", metadata: ["error": "\(error)", "attempts": "\(attempt)"])
                    await server.close()
                    throw ExitCode(1)
                }
                logger.warning("registrar not reachable yet", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                try await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
        try await server.wait()
    }

    /// The agent key from DIR/key.pem, or a new RSA 2048 key written there with mode 0600.
    static func loadOrCreateKey(in directory: String) throws -> AgentKey {
        let path = "\(directory)/key.pem"
        if FileManager.default.fileExists(atPath: path) {
            let bytes = try AttestationIO.readFile(path, limit: 64 << 10, what: "agent key")
            return try ContextError.wrap(path) { try AgentKey(privatePEM: bytes) }
        }
        try Directory.create(directory, mode: 0o700)
        let key = try AgentKey.generate()
        try AtomicFile.write(key.privatePEM, to: path, mode: 0o600)
        return key
    }

    /// DIR/cert.pem if it certifies the key, else a new self-signed certificate (CN = UUID,
    /// subjectAltName = the contact IP) written there.
    static func loadOrCreateCertificate(in directory: String, key: AgentKey, uuid: String, ip: String) throws -> [UInt8] {
        let path = "\(directory)/cert.pem"
        if FileManager.default.fileExists(atPath: path) {
            let bytes = try AttestationIO.readFile(path, limit: 64 << 10, what: "agent certificate")
            let certificates = try X509Certificate.certificates(pem: bytes, source: path)
            if let first = certificates.first, try first.subjectPublicKeyInfo() == key.subjectPublicKeyInfo() { return bytes }
        }
        let pem = try key.selfSignedCertificate(commonName: uuid, ipAddresses: [ip], dnsNames: ["localhost"], days: 3650)
        try AtomicFile.write(pem, to: path)
        return pem
    }
}
