//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The hash functions replay and prediction need. The core stays free of C: DombCrypto
/// provides the OpenSSL implementation (`OpenSSLPCRHasher`).
public protocol PCRHashing {
    /// The digest of `data` in `algorithm`.
    func digest(_ algorithm: HashAlgorithm, _ data: ArraySlice<UInt8>) throws -> [UInt8]
    /// `H(old ‖ digest)`: one PCR extend (TPM 2.0 Part 1, §17.2). Implementations may
    /// override this to avoid the concatenation.
    func extend(_ algorithm: HashAlgorithm, _ old: [UInt8], with digest: [UInt8]) throws -> [UInt8]
    /// Replaces `register` with `H(register ‖ digest)`. Replay calls this once per record
    /// and bank; implementations may override it to reuse `register`'s storage.
    func extend(_ algorithm: HashAlgorithm, register: inout [UInt8], with digest: ArraySlice<UInt8>) throws
}

extension PCRHashing {
    public func extend(_ algorithm: HashAlgorithm, _ old: [UInt8], with digest: [UInt8]) throws -> [UInt8] {
        try self.digest(algorithm, (old + digest)[...])
    }

    public func extend(_ algorithm: HashAlgorithm, register: inout [UInt8], with digest: ArraySlice<UInt8>) throws {
        register = try extend(algorithm, register, with: Array(digest))
    }

    /// The digests of `data` in each of `banks`.
    public func digests(_ data: ArraySlice<UInt8>, banks: [HashAlgorithm]) throws -> DigestSet {
        var set = DigestSet()
        for bank in banks { set[bank] = try digest(bank, data) }
        return set
    }
}

extension PCRValues {
    /// First PCR whose reset value is all ones (PC Client PTP §4.5.2: the DRTM PCRs 17–22
    /// reset to 0xFF…FF at power-on and only a dynamic launch resets them to zero).
    public static let drtmPCRs = 17...22

    /// The value of `pcr` in `algorithm` after TPM2_Startup: zeros, all ones for PCRs
    /// 17–22, and for PCR 0 the startup locality in the last byte (PFP §10.4.5.3).
    public static func initialValue(_ algorithm: HashAlgorithm, pcr: Int, startupLocality: UInt8 = 0) -> [UInt8] {
        let size = algorithm.digestSize ?? 0
        if drtmPCRs.contains(pcr) { return [UInt8](repeating: 0xFF, count: size) }
        var value = [UInt8](repeating: 0, count: size)
        if pcr == 0, size > 0 { value[size - 1] = startupLocality }
        return value
    }

    /// The last byte of PCR 0's start value, from what a log says: the locality of its
    /// StartupLocality record (PFP §10.4.5.3); else 4 when the first record on PCR 0 is
    /// `EV_EFI_HCRTM_EVENT` (TPM 2.0 Part 1 §34.3: an H-CRTM sequence before TPM2_Startup
    /// sets PCR 0 to 4, then extends the H-CRTM digest; real H-CRTM platforms log no
    /// StartupLocality); else 0.
    public static func pcr0StartLocality(startupLocality: UInt8?, firstEvent: EventType) -> UInt8 {
        if let startupLocality { return startupLocality }
        return firstEvent == .efiHCRTMEvent ? 4 : 0
    }
}

/// The result of a streaming replay (``EventLog/replay(parsing:limits:strict:using:)``).
public struct EventLogReplay: Hashable, Sendable {
    public var format: EventLog.Format
    /// The PCR values the log replays to, for every bank and PCR the records fully cover.
    /// A PCR with a record lacking a bank's digest has no value in that bank (see
    /// ``untrusted``).
    public var values: PCRValues
    /// What the log needed (StartupLocality, H-CRTM start value, fill, PCR −1 records,
    /// bank subsets).
    public var quirks: [EventLogQuirk]

    /// The banks some extended record lacks, with the PCRs that therefore cannot be
    /// replayed in them.
    public var untrusted: [BankCoverage] {
        for case .bankSubset(let banks) in quirks { return banks }
        return []
    }
}

extension EventLog {
    /// The PCRs with at least one extended record, ascending.
    public var extendedPCRs: [Int] {
        Set(events.lazy.filter(\.isExtended).map { Int($0.pcr) }).sorted()
    }

    /// Replays the log bank by bank: every record but EV_NO_ACTION extends its PCR from the
    /// PC Client reset value (PCR 0 from ``pcr0StartLocality``). The result holds exactly
    /// the PCRs that had records (as `tpm2_eventlog` prints them), in every bank whose
    /// digests every record on that PCR carries (``bankCoverage``).
    ///
    /// The values are what the PCRs *would* hold if the log were true; they mean nothing
    /// until compared with a TPM (``verify(against:using:)``).
    ///
    /// - Throws: ``ParseError`` for an extended record on a PCR ≥ 24 (possible only in a
    ///   log built in memory), or the hasher's error.
    /// Bytes of log between two progress updates of a streaming replay.
    static let progressStep = 1 << 20

    public func replay(using hasher: some PCRHashing) throws -> PCRValues {
        var state = ReplayState()
        for index in events.indices {
            let event = events[index]
            try state.apply(pcr: event.pcr, type: event.type, data: event.data[...], using: hasher) { event.digests[$0]?[...] }
        }
        return state.values(excluding: bankCoverage)
    }

    /// Parses and replays in one streaming pass without keeping the records (what
    /// `domb log replay` does): the same checks as ``init(parsing:limits:strict:)``, in
    /// memory independent of the number of records.
    ///
    /// - Parameter progress: told the log's size, and advanced to each record's offset
    ///   (at most once per ``progressStep`` bytes, so a log of small records pays nothing).
    /// - Throws: ``ParseError`` for a malformed log, the hasher's error if hashing fails.
    public static func replay(
        parsing bytes: ArraySlice<UInt8>, limits: Limits = .default, strict: Bool = false, using hasher: some PCRHashing,
        progress: ByteProgress? = nil
    ) throws -> EventLogReplay {
        var state = ReplayState()
        progress?.expect(UInt64(bytes.count))
        var nextReport = progressStep
        let header = try scan(bytes, limits: limits, strict: strict) { record in
            if record.offset >= nextReport, let progress {
                progress.update(completed: UInt64(record.offset))
                nextReport = record.offset + progressStep
            }
            try state.apply(pcr: record.pcr, type: record.type, data: record.data, using: hasher) { record.digest($0) }
        }
        progress?.update(completed: UInt64(bytes.count))
        var replay = EventLogReplay(format: header.format, values: PCRValues(), quirks: header.quirks)
        replay.values = state.values(excluding: replay.untrusted)
        return replay
    }
}

/// PCR registers during a replay, created on first use so that a StartupLocality record
/// (which must precede every PCR 0 measurement) sets PCR 0's initial value.
struct ReplayState {
    private static let banks = HashAlgorithm.known
    private var startupLocality: UInt8?
    /// Fixed by the first extended record on PCR 0.
    private var pcr0Locality: UInt8?
    /// registers[position in `banks` × 24 + pcr] (flat: replay touches one per record and bank).
    private var registers: [[UInt8]?] = Array(repeating: nil, count: banks.count * PCRValues.pcrCount)

    mutating func apply(
        pcr: UInt32, type: EventType, data: @autoclosure () -> ArraySlice<UInt8>, using hasher: some PCRHashing,
        digest: (HashAlgorithm) -> ArraySlice<UInt8>?
    ) throws {
        guard type != .noAction else {
            if pcr == 0, let locality = EventLog.startupLocality(in: data()) { startupLocality = locality }
            return
        }
        guard pcr < UInt32(PCRValues.pcrCount) else {
            throw ParseError.invalid("an extended record names PCR \(pcr); a TPM has PCRs 0 to 23")
        }
        let pcr = Int(pcr)
        if pcr == 0, pcr0Locality == nil {
            pcr0Locality = PCRValues.pcr0StartLocality(startupLocality: startupLocality, firstEvent: type)
        }
        for (index, bank) in Self.banks.enumerated() {
            guard let digest = digest(bank) else { continue }
            let slot = index * PCRValues.pcrCount + pcr
            // Moved out so that the extend works on a uniquely referenced buffer in place.
            var register = registers[slot].take() ?? PCRValues.initialValue(bank, pcr: pcr, startupLocality: pcr0Locality ?? 0)
            try hasher.extend(bank, register: &register, with: digest)
            registers[slot] = register
        }
    }

    /// The registers, less the PCRs `coverage` marks untrusted in their bank.
    func values(excluding coverage: [BankCoverage]) -> PCRValues {
        var values = PCRValues()
        for (index, bank) in Self.banks.enumerated() {
            let untrusted = coverage.first { $0.bank == bank }?.untrustedPCRs ?? []
            for pcr in 0..<PCRValues.pcrCount where !untrusted.contains(pcr) {
                if let value = registers[index * PCRValues.pcrCount + pcr] { values[bank, pcr] = value }
            }
        }
        return values
    }
}
