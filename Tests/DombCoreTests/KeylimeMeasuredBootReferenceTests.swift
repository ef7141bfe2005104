//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Testing

/// The refstate of the domb-launch Keylime policy; the Keylime side (the policy module under
/// the real verifier, on a real log) is exercised by `make keylime`.
@Suite struct KeylimeMeasuredBootReferenceTests {
    static func digests(_ byte: UInt8) -> DigestSet {
        DigestSet([TaggedDigest(.sha256, [UInt8](repeating: byte, count: 32)), TaggedDigest(.sha384, [UInt8](repeating: byte, count: 48))])
    }
    static let module = ModuleRecord(domain: "dom1", role: "kernel", size: 4096, label: "images/k", digests: digests(0xAA))
    static let cmdline = ConfigurationRecord(kind: "cmdline", subject: "dom1", content: Array("console=hvc0".utf8))

    static func launch() throws -> [GoldenEvent] {
        [
            GoldenEvent(pcr: 12, eventType: .ipl, digests: digests(1), data: try cmdline.serialized(), label: "dom1 cmdline"),
            GoldenEvent(pcr: 13, eventType: .eventTag, digests: digests(0xAA), data: try module.serialized(), label: "dom1 kernel"),
            GoldenEvent(pcr: 12, eventType: .separator, digests: digests(2), data: DombEvents.separatorData, label: "separator"),
            GoldenEvent(pcr: 13, eventType: .separator, digests: digests(2), data: DombEvents.separatorData, label: "separator"),
        ]
    }

    @Test func everyLaunchEventInLogOrderPerPCRWithEveryBank() throws {
        let json = try KeylimeMeasuredBootReference(events: try Self.launch()).json
        let launch = try #require(json["domb_launch"])
        #expect(launch["version"] == .integer(1))
        guard case .array(let pcr12)? = launch["pcrs"]?["12"], case .array(let pcr13)? = launch["pcrs"]?["13"] else {
            Issue.record("no PCR 12/13 lists in \(json.canonicalString)")
            return
        }
        #expect(pcr12.map { $0["event_type"]?.stringValue } == ["EV_IPL", "EV_SEPARATOR"])
        #expect(pcr13.map { $0["event_type"]?.stringValue } == ["EV_EVENT_TAG", "EV_SEPARATOR"])
        #expect(pcr12[0]["header"] == .string("domb:cmdline:dom1"))
        #expect(pcr12[0]["text"] == .string("console=hvc0"))
        #expect(pcr12[0]["digests"]?["sha256"] == .string(String(repeating: "01", count: 32)))
        #expect(pcr12[0]["digests"]?["sha384"] == .string(String(repeating: "01", count: 48)))
        // The module record as tpm2_eventlog prints EV_EVENT_TAG data: the whole record in hex.
        #expect(pcr13[0]["event"] == .string(try Self.module.serialized().hexString))
        #expect(pcr13[0]["description"] == .string("dom1 kernel"))
        #expect(pcr12[1]["event"] == nil && pcr12[1]["header"] == nil)
    }

    @Test func binaryOrLongContentIsNotRepeatedAsText() throws {
        let dtb = ConfigurationRecord(kind: "launch-dtb", subject: "launch.dtb", content: [0xD0, 0x0D, 0xFE, 0xED, 0, 0x7F])
        let long = ConfigurationRecord(kind: "xenstore-plan", subject: "", content: Array(String(repeating: "x", count: 201).utf8))
        let json = try KeylimeMeasuredBootReference(events: [
            GoldenEvent(pcr: 12, eventType: .ipl, digests: Self.digests(3), data: try dtb.serialized(), label: "dtb"),
            GoldenEvent(pcr: 12, eventType: .ipl, digests: Self.digests(4), data: try long.serialized(), label: "plan"),
        ]).json
        guard case .array(let events)? = json["domb_launch"]?["pcrs"]?["12"] else {
            Issue.record("no PCR 12 list")
            return
        }
        #expect(events[0]["header"] == .string("domb:launch-dtb:launch.dtb"))
        #expect(events[1]["header"] == .string("domb:xenstore-plan:"))
        #expect(events[0]["text"] == nil && events[1]["text"] == nil)
    }

    @Test func refusesWhatThePolicyCannotCheck() throws {
        let valid = try Self.launch()
        func reason(_ events: [GoldenEvent]) -> String? {
            do {
                _ = try KeylimeMeasuredBootReference(events: events)
                return nil
            } catch { return error.description }
        }
        var onPCR14 = valid
        onPCR14[1].pcr = 14
        #expect(reason(onPCR14)?.contains("golden event 2 (dom1 kernel) is on PCR 14") == true)
        var noData = valid
        noData[0].data = nil
        #expect(reason(noData)?.contains("golden event 1 (dom1 cmdline) has no event data") == true)
        var foreignIPL = valid
        foreignIPL[0].data = Array("grub_cmd linux".utf8)
        #expect(reason(foreignIPL)?.contains("not a domb configuration record") == true)
        var postCode = valid
        postCode[2].eventType = .postCode
        #expect(reason(postCode)?.contains("EV_POST_CODE") == true)
        var noDigest = valid
        noDigest[3].digests = DigestSet()
        #expect(reason(noDigest)?.contains("golden event 4 (separator) has no digest") == true)
        var unprintable = valid
        unprintable[0].data = Array("domb:cmdline:d\u{7}m1".utf8) + [0] + Array("x".utf8)
        #expect(reason(unprintable)?.contains("not printable ASCII") == true)
        #expect(reason([])?.contains("no golden events") == true)
        #expect(reason(valid) == nil)
    }
}
