//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One measurement a launch will make, known before boot: the input of prediction, and
/// what the boot flow replays against the TPM. Module digests are of the module bytes,
/// computed once when the bundle is built.
public enum PlannedMeasurement: Hashable, Sendable {
    /// A module: EV_EVENT_TAG with a ``ModuleRecord``; the record's digests are extended.
    case module(pcr: Int, ModuleRecord)
    /// Configuration carried inline: EV_IPL, digest = H(event data).
    case configuration(pcr: Int, ConfigurationRecord)
    /// EV_SEPARATOR closing the launch on `pcr`.
    case separator(pcr: Int)

    public var pcr: Int {
        switch self {
        case .module(let pcr, _), .configuration(let pcr, _), .separator(let pcr): pcr
        }
    }

    /// The log record this measurement produces in `banks`.
    public func event(banks: [HashAlgorithm], using hasher: some PCRHashing) throws -> UnverifiedEvent {
        switch self {
        case .module(let pcr, let record):
            guard Set(record.digests.algorithms).isSuperset(of: banks) else {
                throw ParseError.invalid(
                    "module \(record.label) of \(record.domain.isEmpty ? "no domain" : record.domain) has digests for \(record.digests.algorithms.map(\.name).joined(separator: ", ")), the TPM needs \(banks.map(\.name).joined(separator: ", "))"
                )
            }
            var trimmed = record
            trimmed.digests = DigestSet(record.digests.digests.filter { banks.contains($0.algorithm) })
            return try DombEvents.module(pcr: pcr, trimmed)
        case .configuration(let pcr, let record):
            return try DombEvents.configuration(pcr: pcr, record, banks: banks, using: hasher)
        case .separator(let pcr):
            return try DombEvents.separator(pcr: pcr, banks: banks, using: hasher)
        }
    }
}

extension Array where Element == PlannedMeasurement {
    /// The separators that close a launch: one per PCR the measurements extend, ascending.
    public var closingSeparators: [PlannedMeasurement] {
        Set(map(\.pcr)).sorted().map { .separator(pcr: $0) }
    }
}
