//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// The readers of documents that carry `format` and `formatVersion` (docs/json.md): the
/// Xenstore plan (new form and the one-string form bundles signed before carry) and the
/// PCR prediction `attest verify --expected-pcrs` reads.
@Suite struct JSONFormatTests {
    static func plan(_ header: String) -> [UInt8] {
        Array(
            (#"{"# + header + #""domains":[{"name":"a","domid":"1","remove":[],"introduce":{"domid":"1","ringRef":"2","port":"3"},"#
                + #""nodes":[{"path":"/local/domain/1","value":"","perms":["n0","r1"]}]}]}"#).utf8)
    }

    static func decodePlan(_ bytes: [UInt8]) throws -> XenstorePlan {
        try JSONInput.decode(XenstorePlan.self, from: bytes, what: "not a Xenstore plan")
    }

    /// A plan of the old one-string form reads as the same plan as the new form, and writes
    /// the new form.
    @Test func theOldOneStringPlanFormIsReadAsVersion1() throws {
        let old = try Self.decodePlan(Self.plan(#""format":"domb-xenstore-plan/1","#))
        let new = try Self.decodePlan(Self.plan(#""format":"domb-xenstore-plan","formatVersion":1,"#))
        #expect(old == new)
        #expect(old.domains.map(\.name) == ["a"])
        let written = String(decoding: old.canonicalBytes(), as: UTF8.self)
        #expect(written.hasSuffix(#""format":"domb-xenstore-plan","formatVersion":1}"#), "\(written)")
        #expect(try Self.decodePlan(old.canonicalBytes()) == old)
    }

    @Test func aPlanOfAnotherFormatOrVersionIsRefusedInWords() throws {
        for (header, says) in [
            (#""format":"domb-xenstore-plan","formatVersion":2,"#, "domb-xenstore-plan formatVersion 2 is not supported (this domb reads version 1)"),
            (#""format":"domb-xenstore-plan/2","#, #"format "domb-xenstore-plan/2" is not "domb-xenstore-plan""#),
            (#""format":"domb-launch-spec","formatVersion":1,"#, #"format "domb-launch-spec" is not "domb-xenstore-plan""#),
            (#""format":"domb-xenstore-plan/1","formatVersion":1,"#, #"format "domb-xenstore-plan/1" is not "domb-xenstore-plan""#),
            (#""format":"domb-xenstore-plan","#, #"format "domb-xenstore-plan" without "formatVersion""#),
            ("", #"no "format": not a domb-xenstore-plan document"#),
        ] {
            do {
                _ = try Self.decodePlan(Self.plan(header))
                Issue.record("accepted \(header)")
            } catch {
                #expect("\(error)" == "not a Xenstore plan: \(says)", "\(header)")
            }
        }
    }

    /// The fuzz target's seeds (FuzzTesting/Seeds/FuzzXenstore) are plans the reader takes,
    /// in both forms, so fuzzing starts from accepted inputs.
    @Test func theFuzzSeedPlansAreRead() throws {
        let seeds = Repository.root + "/FuzzTesting/Seeds/FuzzXenstore"
        for (seed, header) in [("plan.json", #"{"format":"domb-xenstore-plan","formatVersion":1,"#), ("plan-legacy.json", #"{"format":"domb-xenstore-plan/1","#)] {
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: "\(seeds)/\(seed)")))
            #expect(String(decoding: bytes.prefix(header.utf8.count), as: UTF8.self) == header, "\(seed)")
            let plan = try Self.decodePlan(bytes)
            try plan.validate()
            #expect(!plan.domains.isEmpty, "\(seed)")
        }
    }

    /// `predict --json` writes what `attest verify --expected-pcrs` reads; the bare map
    /// (written by hand) is read too; another format, version or key is refused.
    @Test func thePredictionIsReadAsGoldenValues() throws {
        var values = PCRValues()
        values[.sha256, 12] = [UInt8](repeating: 0xAB, count: 32)
        values[.sha1, 13] = [UInt8](repeating: 0x01, count: 20)
        let prediction = values.predictionJSON.canonicalString
        #expect(prediction.hasPrefix(#"{"format":"domb-pcr-prediction","formatVersion":1,"pcrs":{"sha1":{"13":"#), "\(prediction)")
        #expect(try PCRValues(goldenJSON: Array(prediction.utf8)) == values)
        #expect(try PCRValues(goldenJSON: values.goldenJSON.canonicalBytes) == values)
        let pcrs = values.goldenJSON.canonicalString
        for (document, says) in [
            (#"{"format":"domb-pcr-prediction","formatVersion":2,"pcrs":\#(pcrs)}"#, "formatVersion 2 is not supported"),
            (#"{"format":"domb-boot-report","formatVersion":1,"pcrs":\#(pcrs)}"#, #"format "domb-boot-report" is not "domb-pcr-prediction""#),
            (#"{"format":"domb-pcr-prediction","formatVersion":1,"pcrs":\#(pcrs),"x":1}"#, #"holds "pcrs" and nothing else"#),
            (#"{"format":"domb-pcr-prediction","formatVersion":"1","pcrs":\#(pcrs)}"#, #""formatVersion" is not an integer"#),
        ] {
            do {
                _ = try PCRValues(goldenJSON: Array(document.utf8))
                Issue.record("accepted \(document)")
            } catch {
                #expect("\(error)".hasPrefix("expected PCRs: ") && "\(error)".contains(says), "\(error)")
            }
        }
    }
}
