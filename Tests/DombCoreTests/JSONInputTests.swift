//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation
import Testing

/// Every JSON document domb reads says what is wrong in words — the place in the document
/// and the problem — and never passes on Foundation's `DecodingError` or
/// `NSCocoaErrorDomain` text (issue 14, "Errors a person can act on").
@Suite struct JSONInputTests {
    /// The readers of user-given JSON, each with the start of its message.
    static let readers: [(String, @Sendable ([UInt8]) throws -> Void)] = [
        ("PCR policy", { _ = try PCRPolicy(json: $0) }),
        ("not a domb quote file (JSON)", { _ = try QuoteFile(json: $0) }),
        ("not a domb attestation state file (JSON)", { _ = try AttestationState(json: $0) }),
        ("enrolment request (JSON with a \"format\" field)", { _ = try EnrollmentRequest(json: $0) }),
        ("not a Xenstore plan", { _ = try JSONInput.decode(XenstorePlan.self, from: $0, what: "not a Xenstore plan") }),
    ]

    static func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func textThatIsNotJSONSaysWhereItStops() throws {
        for (what, read) in Self.readers {
            let text = try #require(Self.message { try read(Array("hello, this is not JSON\n".utf8)) }, "\(what) accepted text")
            #expect(text.hasPrefix("\(what): not valid JSON"), "\(text)")
            #expect(text.hasSuffix("invalid value around character 0"), "where it stops: \(text)")
            for dump in ["Error Domain", "NSCocoaErrorDomain", "UserInfo", "DecodingError", "Context(", "codingPath"] {
                #expect(!text.contains(dump), "\(what): \(dump) in \(text)")
            }
        }
    }

    @Test func brokenJSONSaysWhere() throws {
        let text = try #require(Self.message { _ = try PCRPolicy(json: Array(#"{"version": 1,,}"#.utf8)) })
        #expect(text == "PCR policy: not valid JSON: invalid value around character 14", "\(text)")
    }

    @Test func aMissingKeyAndAWrongTypeAreNamedByTheirPlace() throws {
        let missing = try #require(Self.message { _ = try PCRPolicy(json: Array(#"{"version":1}"#.utf8)) })
        #expect(missing == #"PCR policy: missing key "pcrs""#, "\(missing)")
        let nested = try #require(
            Self.message { _ = try PCRPolicy(json: Array(#"{"version":1,"pcrs":{"configuration":"17"}}"#.utf8)) })
        #expect(nested.hasPrefix("PCR policy: .pcrs.configuration: Expected to decode"), "\(nested)")
        let indexed = try #require(
            Self.message {
                _ = try JSONInput.decode([[String: Int]].self, from: Array(#"[{"a":1},{"a":"x"}]"#.utf8), what: "list")
            })
        #expect(indexed.hasPrefix("list: [1].a: "), "\(indexed)")
    }
}
