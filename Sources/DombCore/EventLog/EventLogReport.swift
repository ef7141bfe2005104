//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A parsed event log as `domb log show --json` prints it: every record unverified (types
/// and data are what the log claims), the Spec ID header, and what the parser noticed.
/// Digests and data are lowercase hex; `domb` is the reading of domb's own records
/// (docs/eventlog.md).
public struct EventLogReport: Encodable, Sendable {
    public struct SpecID: Encodable, Sendable {
        public struct Algorithm: Encodable, Sendable {
            public var algorithm: String
            public var digestSize: Int
        }

        public var platformClass: UInt32
        public var specVersionMajor: UInt8
        public var specVersionMinor: UInt8
        public var specErrata: UInt8
        public var uintnSize: UInt8
        public var algorithms: [Algorithm]
        public var vendorInfo: String
    }

    /// One ``EventLogQuirk``: its kind, words and whether it is a firmware workaround,
    /// with the facts of that kind (the others absent).
    public struct Quirk: Encodable, Sendable {
        public struct Coverage: Encodable, Sendable {
            public var bank: String
            public var recordsWith: Int
            public var recordsWithout: Int
            public var untrustedPCRs: [Int]
        }

        public var kind: String
        public var description: String
        public var workaround: Bool
        public var locality: Int?
        public var event: Int?
        public var offset: Int?
        public var count: Int?
        public var byte: Int?
        public var first: Int?
        public var withDigests: Int?
        public var banks: [Coverage]?

        public init(_ quirk: EventLogQuirk) {
            kind = quirk.kind
            description = quirk.description
            workaround = quirk.isWorkaround
            switch quirk {
            case .startupLocality(let locality, let event):
                self.locality = Int(locality)
                self.event = event
            case .hcrtmStartValue(let event):
                // H-CRTM: the start value is locality 4's.
                locality = 4
                self.event = event
            case .vendorInfoOutsideEventSize:
                break
            case .trailingFill(let fill):
                offset = fill.offset
                count = fill.count
                byte = Int(fill.byte)
            case .noActionOnPCRMinusOne(let count, let first, let withDigests):
                self.count = count
                self.first = first
                self.withDigests = withDigests
            case .bankSubset(let coverage):
                banks = coverage.map {
                    Coverage(bank: $0.bank.name, recordsWith: $0.recordsWith, recordsWithout: $0.recordsWithout, untrustedPCRs: $0.untrustedPCRs)
                }
            }
        }
    }

    /// A domb record (docs/eventlog.md): `record` is `module`, `configuration` or `separator`.
    public struct DombRecord: Encodable, Sendable {
        public var record: String
        public var domain: String?
        public var role: String?
        public var size: UInt64?
        public var label: String?
        public var kind: String?
        public var subject: String?
        public var content: String?

        init(_ event: DombEvent) {
            switch event {
            case .module(let module):
                record = "module"
                domain = module.domain
                role = module.role
                size = module.size
                label = module.label
            case .configuration(let configuration):
                record = "configuration"
                kind = configuration.kind
                subject = configuration.subject
                content = configuration.content.hexString
            case .separator:
                record = "separator"
            }
        }
    }

    public struct Event: Encodable, Sendable {
        public var number: Int
        /// Byte offset of the record in the file.
        public var offset: Int
        public var pcr: UInt32
        /// The TCG name (`EV_EVENT_TAG`), and its value.
        public var type: String
        public var typeValue: UInt32
        /// Bank name → digest.
        public var digests: [String: String]
        public var data: String
        /// Absent when the record is not domb's (or carries domb's tag but is malformed).
        public var domb: DombRecord?
    }

    /// The log's record format: `sha1` (TCG PC Client) or `crypto-agile` (`logFormat`, so
    /// that `format` names the document, docs/json.md).
    public var logFormat: String
    /// The banks the header announces (SHA-1 for a legacy log).
    public var banks: [String]
    public var quirks: [Quirk]
    public var specID: SpecID?
    public var events: [Event]

    public init(_ log: EventLog) {
        logFormat = log.format.rawValue
        banks = log.headerBanks.map(\.name)
        quirks = log.quirks.map(Quirk.init)
        specID = log.specID.map { header in
            SpecID(
                platformClass: header.platformClass, specVersionMajor: header.specVersionMajor,
                specVersionMinor: header.specVersionMinor, specErrata: header.specErrata, uintnSize: header.uintnSize,
                algorithms: header.algorithms.map { SpecID.Algorithm(algorithm: $0.algorithm.name, digestSize: $0.digestSize) },
                vendorInfo: header.vendorInfo.hexString)
        }
        events = log.events.map { event in
            Event(
                number: event.number, offset: event.offset, pcr: event.pcr, type: event.type.description,
                typeValue: event.type.rawValue,
                digests: Dictionary(event.digests.digests.map { ($0.algorithm.name, $0.bytes.hexString) }) { first, _ in first },
                data: event.data.hexString,
                domb: (try? DombEvent(event)).map(DombRecord.init))
        }
    }
}
