//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One measured-boot log for the whole host: the firmware's crypto-agile log, byte for byte
/// up to its last event, followed by domb's launch events re-encoded in the firmware log's
/// header (TCG PC Client PFP §10.2.2: one `Spec ID Event03` header, then `TCG_PCR_EVENT2`
/// records with a digest for each of its banks). A verifier that reads one log file
/// (Keylime's `tpm2_eventlog`-based parser, `measuredboot_ml_path`) then replays the PCRs of
/// firmware, boot loader and launch from it.
///
/// The launch events must carry digests for exactly the firmware log's banks: domb extends
/// every active bank and the firmware log lists the active banks, so a mismatch means the
/// two logs are not from the same boot (or the same TPM configuration) and is refused.
public enum EventLogCombination {
    public static func combine(firmware firmwareBytes: [UInt8], launch launchBytes: [UInt8]) throws(ParseError) -> [UInt8] {
        let firmware = try EventLog(parsing: firmwareBytes)
        guard firmware.format == .cryptoAgile, let specID = firmware.specID else {
            throw ParseError(.unsupported, "the firmware log is in the SHA-1 (TPM 1.2) format; domb combines only crypto-agile logs")
        }
        let launch = try EventLog(parsing: launchBytes, strict: true)
        let firmwareBanks = Set(specID.banks)
        for event in launch.events where event.isExtended {
            let banks = Set(event.digests.digests.map(\.algorithm))
            guard banks == firmwareBanks else {
                throw ParseError.invalid(
                    "launch event \(event.number) (PCR \(event.pcr)) has digests for \(banks.sorted().map(\.name).joined(separator: ",")), the firmware log's header lists \(specID.banks.map(\.name).joined(separator: ",")): are both logs from this boot?"
                )
            }
            for algorithm in banks where event.digests[algorithm]?.count != algorithm.digestSize {
                throw ParseError.invalid("launch event \(event.number): the \(algorithm.name) digest has the wrong size")
            }
        }
        // The firmware's bytes up to the end of its last record: trailing fill (zero or 0xFF
        // padding of a fixed-size log area) is dropped, everything before is kept as is.
        var end = EventLog.headerRecord(specID).count
        if let last = firmware.events.last {
            let record = firmware.record(last)
            end = last.offset + record.count
            guard end <= firmwareBytes.count, Array(firmwareBytes[last.offset..<end]) == record else {
                throw ParseError.invalid("cannot find the end of the firmware log's last record (event \(last.number) at offset \(last.offset))")
            }
        }
        var combined = Array(firmwareBytes.prefix(end))
        for event in launch.events where event.isExtended {
            combined += EventLog.event2Record(event, specID: specID)
        }
        return combined
    }
}
