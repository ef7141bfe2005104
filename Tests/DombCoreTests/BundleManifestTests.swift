//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Foundation
import Testing

@Suite struct CanonicalJSONTests {
    @Test func encodesSortedCompactAndMinimallyEscaped() {
        let value = JSONValue.object([
            "b": .array([.integer(-3), .bool(true), .null]),
            "a": .string("tab\there \"q\" \\ / é \u{01}"),
            "B": .object([:]),
            "é": .integer(0),
        ])
        // Keys in UTF-8 byte order: "B" (0x42) < "a" < "b" < "é" (0xC3 0xA9).
        #expect(
            value.canonicalString
                == #"{"B":{},"a":"tab\there \"q\" \\ / é \u0001","b":[-3,true,null],"é":0}"#)
    }

    @Test func roundTripsAndRequiresCanonicalForm() throws {
        let text = #"{"a":[1,2,{"x":"y"}],"b":"\u00e9\n"}"#
        let parsed = try JSONValue(parsing: Array(text.utf8))
        #expect(parsed["b"]?.stringValue == "é\n")
        let canonical = parsed.canonicalBytes
        #expect(try JSONValue(canonical: canonical) == parsed)
        // Valid JSON, same value, not canonical: whitespace, escapes, key order.
        for variant in [
            #"{"a": [1,2,{"x":"y"}],"b":"é\n"}"#, #"{"b":"é\n","a":[1,2,{"x":"y"}]}"#, #"{"a":[1,2,{"x":"y"}],"b":"\u00e9\n"}"#,
            "\(String(decoding: canonical, as: UTF8.self))\n",
        ] {
            #expect(try JSONValue(parsing: Array(variant.utf8)) == parsed)
            #expect(throws: ParseError.self, "\(variant)") { try JSONValue(canonical: Array(variant.utf8)) }
        }
    }

    @Test(arguments: [
        #"{"a":1,"a":2}"#, "1.5", "1e3", "01", "-0", "[1,]", "{\"a\":1,}", "\"\u{01}\"", "\"\\x\"", "tru", "[1] 2",
        "\"\\ud800\"", "99999999999999999999", "{1:2}", "",
    ])
    func refusesInvalidJSON(_ text: String) {
        #expect(throws: ParseError.self, "\(text)") { try JSONValue(parsing: Array(text.utf8)) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: ParseError.self) { try JSONValue(parsing: [0x22, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        let error = #expect(throws: ParseError.self) { try JSONValue(parsing: Array(deep.utf8)) }
        #expect(error?.code == .limitExceeded)
    }
}

@Suite struct BundleManifestTests {
    static func digests(_ seed: UInt8, banks: [HashAlgorithm] = [.sha1, .sha256]) -> DigestSet {
        DigestSet(banks.map { TaggedDigest($0, [UInt8](repeating: seed, count: $0.digestSize ?? 32)) })
    }

    static var sample: BundleManifest {
        var pcrs = PCRValues()
        pcrs[.sha256, 13] = [UInt8](repeating: 0xAB, count: 32)
        pcrs[.sha1, 12] = [UInt8](repeating: 0xCD, count: 20)
        return BundleManifest(
            generation: 7, banks: [.sha1, .sha256],
            domains: [
                BundleDomain(
                    name: "dom0",
                    modules: [
                        BundleModule(role: "kernel", member: BundleMember(path: "modules/dom0/kernel", size: 10, digests: digests(1))),
                        BundleModule(role: "ramdisk", member: BundleMember(path: "modules/dom0/ramdisk", size: 0, digests: digests(2))),
                    ]),
                BundleDomain(name: "idle", modules: []),
            ],
            launchDTB: BundleMember(path: "launch.dtb", size: 100, digests: digests(3)),
            predictedEventLog: BundleMember(path: "eventlog.predicted", size: 5, digests: digests(4)),
            pcrPolicy: ["configuration": 12, "images": 13], predictedPCRs: pcrs)
    }

    @Test func roundTripsThroughCanonicalJSON() throws {
        let manifest = Self.sample
        let bytes = manifest.canonicalBytes
        #expect(try BundleManifest(canonicalBytes: bytes) == manifest)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"banks":["sha1","sha256"],"domains":[{"modules":[{"digests":{"sha1":"0101"#))
        #expect(text.contains(#""predictedPCRs":{"sha1":{"12":"cdcd"#))
        #expect(!text.contains(" ") && !text.contains("\n"))
        #expect(manifest.members.map(\.path) == [
            "modules/dom0/kernel", "modules/dom0/ramdisk", "launch.dtb", "eventlog.predicted",
        ])
    }

    /// Drip-feed: no strict prefix of a valid manifest parses.
    @Test func noStrictPrefixParses() {
        let bytes = Self.sample.canonicalBytes
        for cut in 0..<bytes.count {
            #expect(throws: ParseError.self, "prefix \(cut)") { try BundleManifest(canonicalBytes: Array(bytes.prefix(cut))) }
        }
    }

    @Test(arguments: [
        ("\"formatVersion\":1", "\"formatVersion\":2"),
        ("\"format\":\"domb-launch-bundle\"", "\"format\":\"other\""),
        ("\"generation\":7", "\"generation\":-7"),
        ("\"banks\":[\"sha1\",\"sha256\"]", "\"banks\":[\"sha1\"]"),
        ("\"banks\":[\"sha1\",\"sha256\"]", "\"banks\":[\"sha256\",\"sha1\"]"),
        ("\"path\":\"modules/dom0/kernel\"", "\"path\":\"modules/dom0/../kernel\""),
        ("\"path\":\"modules/dom0/kernel\"", "\"path\":\"modules/dom0/ramdisk\""),
        ("\"path\":\"launch.dtb\"", "\"path\":\"other.dtb\""),
        ("\"name\":\"dom0\"", "\"name\":\"../x\""),
        ("\"images\":13", "\"images\":24"),
        ("\"size\":10}", "\"size\":\"10\"}"),
        ("\"13\":\"abab", "\"99\":\"abab"),
        ("\"sha1\":\"0101", "\"sha1\":\"zz01"),
        ("\"generation\":7", "\"generation\":7,\"unknown\":1"),
    ])
    func refusesInvalidManifests(_ replacement: (String, String)) throws {
        let text = String(decoding: Self.sample.canonicalBytes, as: UTF8.self)
        #expect(text.contains(replacement.0))
        let changed = text.replacingOccurrences(of: replacement.0, with: replacement.1)
        let value = try JSONValue(parsing: Array(changed.utf8))
        #expect(throws: ParseError.self, "\(replacement.1)") { try BundleManifest(json: value) }
    }

    @Test func checkListsEveryFailure() {
        let manifest = Self.sample
        var observed = manifest.members.map { ObservedMember(path: $0.path, size: $0.size, digests: $0.digests) }
        #expect(manifest.check(observed: observed + [ObservedMember(path: "manifest.json", size: 1, digests: DigestSet())]).isEmpty)
        observed[0].digests = Self.digests(9)
        observed[1].size = 1
        observed.remove(at: 2)
        observed.append(ObservedMember(path: "extra", size: 1, digests: DigestSet()))
        let failures = manifest.check(observed: observed, minimumGeneration: 8)
        #expect(failures.map(\.kind) == [.generation, .digestMismatch, .digestMismatch, .digestMismatch, .missingMember, .unexpectedMember])
        #expect(failures.map(\.member) == [nil, "modules/dom0/kernel", "modules/dom0/kernel", "modules/dom0/ramdisk", "launch.dtb", "extra"])
        #expect(failures[3].message.contains("size is 1 bytes, the manifest says 0"))
    }

    @Test func layoutRefusesUnsafeNames() {
        for bad in ["", ".", "..", ".hidden", "-flag", "a/b", "a b", "é", String(repeating: "a", count: 65)] {
            #expect(!BundleLayout.isSafeComponent(bad), "\(bad)")
        }
        for bad in ["/abs", "a//b", "a/../b", "a/", "a/b/c/d/e"] { #expect(!BundleLayout.isSafePath(bad), "\(bad)") }
        #expect(BundleLayout.isSafePath("modules/dom0/kernel-1"))
    }
}
