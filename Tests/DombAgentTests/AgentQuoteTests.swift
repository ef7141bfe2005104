//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombAgent
import DombCore
import DombCrypto
import DombTPM
import DombTestSupport
import Foundation
import Logging
import Testing

/// The agent's quotes on a real swtpm, checked by tpm2_checkquote (the quote string's three
/// parts are exactly tpm2-tools' -m/-s/-f files), and its HTTP server driven by curl.
@Suite(.serialized) struct AgentQuoteTests {
    static let akHandle: UInt32 = 0x8100_0100

    final class Host {
        let swtpm: Swtpm
        let agent: KeylimeAgent
        let akPEM: String

        init() throws {
            swtpm = try ProvisionedSwtpm.start()
            let tcti = try TCTIConfiguration(parsing: swtpm.tcti)
            let tpm = try TPM(tcti)
            let ak = try tpm.createAttestationKey(algorithm: .rsa(bits: 2048), hierarchy: .endorsement, handle: AgentQuoteTests.akHandle)
            akPEM = try PublicKey(ak.publicKey).pem()
            tpm.close()
            agent = KeylimeAgent(
                configuration: KeylimeAgentConfiguration(
                    uuid: "test-agent", tcti: tcti, akHandle: AgentQuoteTests.akHandle, ekType: .rsa2048, ekHandle: nil, measuredBootLog: nil),
                key: try AgentKey.generate(), logger: Logger(label: "test"))
        }

        deinit { swtpm.stop() }
    }

    static func results(_ response: AgentResponse) throws -> [String: Any] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        return try #require(object["results"] as? [String: Any])
    }

    @Test func quotesAreRefusedBeforeActivationAndCheckWithTpm2Checkquote() throws {
        let host = try Host()
        let target = "/v2.5/quotes/integrity?nonce=Nonce20CharactersAb&mask=0x3000&partial=0&ima_ml_entry=0"
        #expect(host.agent.respond(method: "GET", target: target).status == 503)
        host.agent.markActivated()
        try Tools.run("tpm2_pcrextend", ["-T", host.swtpm.tcti, "13:sha256=" + String(repeating: "ab", count: 32)], environment: ["TSS2_LOG": "all+none"])

        let answer = host.agent.respond(method: "GET", target: target)
        #expect(answer.status == 200)
        let results = try Self.results(answer)
        #expect(results["hash_alg"] as? String == "sha256")
        #expect(results["sign_alg"] as? String == "rsassa")
        #expect(results["enc_alg"] as? String == "rsa")
        #expect(results["pubkey"] as? String == host.agent.publicKeyPEM)
        let quote = try #require(results["quote"] as? String)
        let decoded = try KeylimeQuote.decode(quote)
        #expect(decoded.selection == PCRSelection([.init(.sha256, [12, 13, 16])]))
        // Keylime's PCR 16 binding: H(0 ‖ H(pubkey PEM)).
        #expect(decoded.pcrValues[.sha256, 16] == KeylimeQuote.boundPCR16(publicKeyPEM: host.agent.publicKeyPEM, hashing: OpenSSLHashing(), bank: .sha256))

        // tpm2_checkquote reads the three parts as they are.
        let parts = quote.dropFirst().split(separator: ":").map { Data(base64Encoded: String($0)) ?? Data() }
        let work = try TemporaryDirectory(prefix: "domb-agent-quote")
        try parts[0].write(to: URL(fileURLWithPath: work.file("quote.msg")))
        try parts[1].write(to: URL(fileURLWithPath: work.file("quote.sig")))
        try parts[2].write(to: URL(fileURLWithPath: work.file("quote.pcrs")))
        _ = try work.write("ak.pem", host.akPEM)
        let nonceHex = Array("Nonce20CharactersAb".utf8).hexString
        let checked = try Tools.run(
            "tpm2_checkquote",
            ["-u", work.file("ak.pem"), "-m", work.file("quote.msg"), "-s", work.file("quote.sig"), "-f", work.file("quote.pcrs"),
             "-g", "sha256", "-q", nonceHex], environment: ["TSS2_LOG": "all+none"], check: false)
        #expect(checked.status == 0, "\(checked.stderrText)")
        // ... and refuses it for another nonce.
        let wrong = try Tools.run(
            "tpm2_checkquote",
            ["-u", work.file("ak.pem"), "-m", work.file("quote.msg"), "-s", work.file("quote.sig"), "-f", work.file("quote.pcrs"),
             "-g", "sha256", "-q", "00" + nonceHex.dropFirst(2)], environment: ["TSS2_LOG": "all+none"], check: false)
        #expect(wrong.status != 0)

        // partial=1: no public key; identity: PCR 16 only.
        let partial = try Self.results(host.agent.respond(method: "GET", target: "/v2.5/quotes/integrity?nonce=a&mask=0x1000&partial=1"))
        #expect(partial["pubkey"] == nil)
        let identity = try Self.results(host.agent.respond(method: "GET", target: "/v2.1/quotes/identity?nonce=abc"))
        #expect(try KeylimeQuote.decode(try #require(identity["quote"] as? String)).selection == PCRSelection([.init(.sha256, [16])]))
        #expect(identity["pubkey"] as? String == host.agent.publicKeyPEM)
    }

    @Test func theHTTPServerAnswersEveryBadRequestWithAnHTTPError() async throws {
        let host = try Host()
        let server = try await AgentHTTPServer(agent: host.agent, host: "127.0.0.1", port: 0, tls: nil)
        let port = try #require(server.localPort)
        func get(_ target: String, method: String = "GET") throws -> (Int, String) {
            let result = try Tools.run(
                "curl", ["-s", "-X", method, "-o", "-", "-w", "\n%{http_code}", "--path-as-is", "http://127.0.0.1:\(port)\(target)"], check: false)
            let lines = result.stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        let (versionStatus, versionBody) = try get("/version")
        #expect(versionStatus == 200)
        #expect(versionBody.contains("\"supported_versions\":[\"2.1\",\"2.2\",\"2.3\",\"2.4\",\"2.5\"]"))
        #expect(try get("/v2.5/quotes/identity?nonce=abc").0 == 503)  // before registration
        #expect(try get("/v3.0/quotes/identity?nonce=abc").0 == 400)
        #expect(try get("/nothing/here").0 == 404)
        #expect(try get("/v2.5/quotes/identity?nonce=a%2Fb").0 == 400)
        #expect(try get("/v2.5/quotes/identity?nonce=" + String(repeating: "x", count: 5000)).0 == 414)
        #expect(try get("/v2.5/quotes/identity?nonce=abc", method: "DELETE").0 == 405)
        #expect(try get("/v2.5/keys/vkey", method: "POST").0 == 501)
        // A request head far beyond any limit, and garbage bytes: the server survives both.
        let work = try TemporaryDirectory(prefix: "domb-agent-http")
        let headers = try work.write("headers", "X-Big: " + String(repeating: "y", count: 200_000) + "\n")
        let huge = try Tools.run(
            "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "@" + headers, "http://127.0.0.1:\(port)/version"], check: false)
        #expect(huge.stdoutText != "200")
        _ = try Tools.run("/bin/bash", ["-c", "printf 'GARBAGE\\x00\\xff\\r\\n\\r\\n' > /dev/tcp/127.0.0.1/\(port)"], check: false)
        host.agent.markActivated()
        let (status, body) = try get("/v2.5/quotes/integrity?nonce=abc&mask=0x1000&partial=1")
        #expect(status == 200, "\(body)")
        await server.close()
    }
}
