//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Testing

/// The agent's request parser: what Keylime sends parses; everything else is an HTTP error
/// with a status from a small set, never a crash.
@Suite struct AgentRequestTests {
    @Test func whatKeylimeSendsParses() throws {
        // cloud_verifier_tornado.invoke_get_quote: nonce from tpm_util.random_password(20), the mask as hex.
        let integrity = try KeylimeAgentRequest(
            method: "GET", target: "/v2.5/quotes/integrity?nonce=Ab3dEf9hIjKlMn0pQrSt&mask=0x3000&partial=0&ima_ml_entry=0")
        #expect(integrity == .integrityQuote(api: .init(2, 5), nonce: "Ab3dEf9hIjKlMn0pQrSt", mask: 0x3000, partial: false, imaEntry: 0))
        let partial = try KeylimeAgentRequest(method: "GET", target: "/v2.1/quotes/integrity?nonce=x&mask=0x10000&partial=1&ima_ml_entry=17")
        #expect(partial == .integrityQuote(api: .init(2, 1), nonce: "x", mask: 0x10000, partial: true, imaEntry: 17))
        // tenant.do_quote
        #expect(try KeylimeAgentRequest(method: "GET", target: "/v2.5/quotes/identity?nonce=abc") == .identityQuote(api: .init(2, 5), nonce: "abc"))
        #expect(try KeylimeAgentRequest(method: "GET", target: "/version") == .version)
        #expect(try KeylimeAgentRequest(method: "GET", target: "/v2.2/agent/info") == .info(api: .init(2, 2)))
        #expect(try KeylimeAgentRequest(method: "GET", target: "/v2.3/keys/pubkey") == .publicKey(api: .init(2, 3)))
        #expect(try KeylimeAgentRequest(method: "POST", target: "/v2.3/keys/vkey") == .unsupported(api: .init(2, 3), what: "keys/vkey"))
    }

    static func status(_ method: String, _ target: String) -> Int? {
        do {
            _ = try KeylimeAgentRequest(method: method, target: target)
            return nil
        } catch {
            return error.status
        }
    }

    @Test func badRequestsGetTheRightStatus() {
        let long = "/v2.5/quotes/identity?nonce=" + String(repeating: "a", count: 3000)
        let cases: [(String, String, Int)] = [
            ("GET", long, 414),
            ("GET", "/v2.5/quotes/identity?nonce=" + String(repeating: "a", count: 65), 400),
            ("GET", "/v2.5/quotes/identity?nonce=a-b", 400),
            ("GET", "/v2.5/quotes/identity?nonce=%zz", 400),
            ("GET", "/v2.5/quotes/identity?nonce=a&nonce=b", 400),
            ("GET", "/v2.5/quotes/identity", 400),
            ("GET", "/v2.5/quotes/integrity?nonce=a&mask=0x1ffffff&partial=0", 400),
            ("GET", "/v2.5/quotes/integrity?nonce=a&mask=zz&partial=0", 400),
            ("GET", "/v2.5/quotes/integrity?nonce=a&mask=0x1&partial=2", 400),
            ("GET", "/v2.5/quotes/integrity?nonce=a&mask=0x1&partial=0&ima_ml_entry=-1", 400),
            ("GET", "/v9.9/quotes/identity?nonce=a", 400),
            ("GET", "/v2.0/quotes/identity?nonce=a", 400),
            ("GET", "/v2.1/agent/info", 404),
            ("GET", "/v2.5/quotes/other?nonce=a", 404),
            ("GET", "/etc/passwd", 404),
            ("GET", "/", 404),
            ("GET", "relative", 400),
            ("DELETE", "/v2.5/quotes/identity?nonce=a", 405),
            ("POST", "/version", 405),
            ("GET", "/v2.5/quotes/identity?nonce=\u{7F}", 400),
            ("GET", "/v2.5/quotes/identity?" + (0..<20).map { "k\($0)=v" }.joined(separator: "&"), 400),
        ]
        for (method, target, expected) in cases {
            #expect(Self.status(method, target) == expected, "\(method) \(target.prefix(80))")
        }
        // Keylime's verifier renegotiates on exactly this phrase.
        do {
            _ = try KeylimeAgentRequest(method: "GET", target: "/v3.0/quotes/identity?nonce=a")
            Issue.record("v3.0 accepted")
        } catch {
            #expect(error.message.hasPrefix("API version not supported"))
        }
    }

    /// A property test: any printable target, any method, yields a route or a 4xx — no crash,
    /// no other status. Targets are built from the alphabet requests use, so many are
    /// near-misses of valid ones.
    @Test func anyTargetYieldsARouteOrAClientError() {
        var generator = SystemRandomNumberGenerator()
        let pieces = [
            "/", "v", "2", ".", "5", "1", "quotes", "identity", "integrity", "version", "keys", "pubkey", "agent", "info", "?", "&",
            "=", "nonce", "mask", "partial", "0x", "ff", "%", "%4", "%41", "+", "ima_ml_entry", "0", "1", "abc", "ZZ", "-", "~", "%00",
        ]
        let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "G\u{0}T", ""]
        var routed = 0
        let valid = [
            "/version", "/v2.5/quotes/identity?nonce=abc", "/v2.1/quotes/integrity?nonce=Ab1&mask=0x3000&partial=0&ima_ml_entry=0",
            "/v2.3/keys/pubkey", "/v2.4/agent/info",
        ]
        for _ in 0..<20_000 {
            var target: String
            if Bool.random(using: &generator) {
                // A valid target with 0 to 2 random pieces inserted at random places.
                target = valid.randomElement(using: &generator) ?? "/version"
                for _ in 0..<Int.random(in: 0...2, using: &generator) {
                    let offset = Int.random(in: 0...target.count, using: &generator)
                    let index = target.index(target.startIndex, offsetBy: offset)
                    target.insert(contentsOf: pieces.randomElement(using: &generator) ?? "", at: index)
                }
            } else {
                let count = Int.random(in: 0...14, using: &generator)
                target = (0..<count).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            }
            let method = methods.randomElement(using: &generator) ?? "GET"
            if let status = Self.status(method, target) {
                #expect([400, 404, 405, 414].contains(status), "\(method) \(target) → \(status)")
            } else {
                routed += 1
            }
        }
        // Random bytes outside printable ASCII are refused too.
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 1...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let target = "/" + String(decoding: bytes, as: UTF8.self)
            if let status = Self.status("GET", target) { #expect([400, 404, 414].contains(status)) }
        }
        #expect(routed > 0)
    }

    @Test func quoteStringRoundTripsAndPCRBlobHasTpm2ToolsLayout() throws {
        let values = (0..<10).map { index in [UInt8](repeating: UInt8(index), count: 32) }
        let pcrs = [0, 1, 2, 3, 4, 5, 6, 7, 12, 16]
        let blob = KeylimeQuote.pcrBlob(bank: .sha256, pcrs: pcrs, values: values)
        // 132-byte TPML_PCR_SELECTION, a count, two 532-byte TPML_DIGESTs (8 + 2 values).
        #expect(blob.count == 132 + 4 + 2 * 532)
        #expect(Array(blob[0..<4]) == [1, 0, 0, 0])
        #expect(Array(blob[4..<12]) == [0x0B, 0x00, 3, 0xFF, 0x10, 0x01, 0, 0])
        let signature = KeylimeQuote.Signature(scheme: .rsassa, hash: .sha256, value: .rsa([UInt8](repeating: 7, count: 256)))
        let text = KeylimeQuote.encode(attest: [1, 2, 3], signature: signature, pcrBlob: blob)
        #expect(text.hasPrefix("r"))
        let decoded = try KeylimeQuote.decode(text)
        #expect(decoded.attest == [1, 2, 3])
        #expect(decoded.signature == signature)
        #expect(decoded.selection == PCRSelection([.init(.sha256, pcrs)]))
        for (pcr, value) in zip(pcrs, values) { #expect(decoded.pcrValues[.sha256, pcr] == value) }
        #expect(KeylimeQuote.pcrs(mask: 0x3000) == [12, 13, 16])
        #expect(KeylimeQuote.pcrs(mask: 0x10001) == [0, 16])
        // Every truncation of a valid string is refused, not crashed on.
        for cut in stride(from: 0, to: text.count, by: 7) {
            #expect(throws: ParseError.self) { try KeylimeQuote.decode(String(text.prefix(cut))) }
        }
    }
}
