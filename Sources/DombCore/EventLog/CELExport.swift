//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

extension EventLog {
    /// The log as TCG Canonical Event Log JSON, in the form tpm2-tss FAPI
    /// (`ifapi_json_eventlog_serialize.c`) and `systemd-pcrlock cel` emit: an array of
    /// `{"recnum":n,"pcr":p,"digests":[{"hashAlg":"sha256","digest":"hex"}],
    ///   "content_type":"pcclient_std","content":{"event_type":"EV_…","event_data":"hex"}}`.
    ///
    /// Every record after the Spec ID header is exported, EV_NO_ACTION ones included (their
    /// digests are never extended); `recnum` counts from 0. Unknown event types are written
    /// as their number ("0x0000abcd").
    public func celJSON() -> String {
        var out = "[\n"
        for (index, event) in events.enumerated() {
            let digests = event.digests.digests.map { digest in
                "{\"hashAlg\":\"\(digest.algorithm.name)\",\"digest\":\"\(digest.bytes.hexString)\"}"
            }
            let typeName = event.type.name ?? {
                let digits = String(event.type.rawValue, radix: 16)
                return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
            }()
            out += "  {\"recnum\":\(index),\"pcr\":\(event.pcr),\"digests\":[\(digests.joined(separator: ","))],"
            out += "\"content_type\":\"pcclient_std\",\"content\":{\"event_type\":\"\(typeName)\","
            out += "\"event_data\":\"\(event.data.hexString)\"}}"
            out += index == events.count - 1 ? "\n" : ",\n"
        }
        out += "]\n"
        return out
    }
}
