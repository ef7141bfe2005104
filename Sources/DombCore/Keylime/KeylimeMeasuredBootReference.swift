//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The reference state ("refstate", `keylime_tenant --mb-policy FILE`) of the `domb-launch`
/// measured-boot policy that `policies/keylime/domb_keylime_policy.py` adds to Keylime's
/// verifier: a bundle's golden events on the launch PCRs, in log order, as Keylime's
/// `tpm2_eventlog`-based parser shows them (docs/keylime.md, "Measured boot").
///
/// Shape (canonical JSON):
/// `{"domb_launch": {"version": 1, "pcrs": {"12": [EVENT, …], "13": [EVENT, …]}}}` where EVENT
/// is `{"event_type", "digests": {bank: hex}, "description"}` plus, for an `EV_EVENT_TAG`
/// module record, `"event"` (the whole record in hex: domain, role, size, label and digests,
/// which no digest covers) and, for an `EV_IPL` configuration record, `"header"`
/// (`domb:<kind>:<subject>`) and, when short printable text, `"text"` (for reasons only: the
/// digest, the hash of the event data, covers the content). With a firmware reference state
/// (Keylime's "example" policy, `keylime-policy create measured-boot -e LOG`), it is added as
/// `"firmware"`, and the policy judges the log's other events by it.
public struct KeylimeMeasuredBootReference: Sendable {
    /// The version the policy module reads (`REFSTATE_VERSION` there).
    public static let version = 1
    /// The PCRs the policy judges events on (`LAUNCH_PCRS` there): domb's default PCR policy.
    public static let launchPCRs: Set<Int> = [12, 13]
    /// Longest configuration content repeated as `text`.
    static let maximumText = 200

    /// The refstate.
    public let json: JSONValue

    /// - Parameters:
    ///   - events: the bundle's golden events (``GoldenEvent``, e.g. from the predicted event
    ///     log), in log order.
    ///   - firmware: a reference state of Keylime's "example" policy for the firmware's events
    ///     (a JSON object), or nil to leave them unjudged (they are still replayed).
    /// - Throws: `ParseError` naming the event when the launch cannot be checked by the policy:
    ///   an event on a PCR other than 12 or 13, an event type domb does not write, a missing
    ///   record, or a configuration header Keylime's parser would not show as ASCII text; or
    ///   when `firmware` is not an object.
    public init(events: [GoldenEvent], firmware: JSONValue? = nil) throws(ParseError) {
        var pcrs: [String: [JSONValue]] = [:]
        for (index, event) in events.enumerated() {
            let position = "golden event \(index + 1) (\(event.label))"
            guard Self.launchPCRs.contains(event.pcr) else {
                throw .unsupported("\(position) is on PCR \(event.pcr); the domb-launch Keylime policy checks PCRs 12 and 13 only (domb's default PCR policy)")
            }
            guard let data = event.data else { throw .invalid("\(position) has no event data to compare") }
            guard !event.digests.isEmpty else { throw .invalid("\(position) has no digest") }
            var digests: [String: JSONValue] = [:]
            for digest in event.digests.digests { digests[digest.algorithm.name] = .string(digest.bytes.hexString) }
            var entry: [String: JSONValue] = [
                "event_type": .string(event.eventType.description), "digests": .object(digests),
                "description": .string(event.label),
            ]
            switch event.eventType {
            case .eventTag:
                entry["event"] = .string(data.hexString)
            case .ipl:
                guard let record = ConfigurationRecord(parsing: data) else {
                    throw .invalid("\(position) is an EV_IPL event that is not a domb configuration record")
                }
                let header = Array(data.prefix { $0 != 0 })
                // The policy module keeps a header of printable ASCII as tpm2_eventlog prints it.
                guard header.allSatisfy({ (0x20...0x7E).contains($0) }) else {
                    throw .unsupported("\(position): its record header is not printable ASCII, which Keylime's parser cannot show")
                }
                entry["header"] = .string(String(decoding: header, as: UTF8.self))
                if record.content.count <= Self.maximumText, record.content.allSatisfy({ (0x20...0x7E).contains($0) }) {
                    entry["text"] = .string(String(decoding: record.content, as: UTF8.self))
                }
            case .separator:
                break
            default:
                throw .unsupported("\(position) is \(event.eventType), which domb does not write on the launch PCRs")
            }
            pcrs[String(event.pcr), default: []].append(.object(entry))
        }
        guard !pcrs.isEmpty else { throw .invalid("the bundle has no golden events on PCRs 12 and 13") }
        var refstate: [String: JSONValue] = [
            "domb_launch": .object(["version": .integer(Int64(Self.version)), "pcrs": .object(pcrs.mapValues { .array($0) })])
        ]
        if let firmware {
            guard case .object = firmware else {
                throw .invalid("the firmware reference state is not a JSON object (keylime-policy create measured-boot writes one)")
            }
            refstate["firmware"] = firmware
        }
        json = .object(refstate)
    }
}
