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
}

extension EventLog {
    /// The PCRs with at least one extended record, ascending.
    public var extendedPCRs: [Int] {
        Set(events.lazy.filter(\.isExtended).map { Int($0.pcr) }).sorted()
    }

    /// Replays the log bank by bank: every record but EV_NO_ACTION extends its PCR from the
    /// PC Client reset value. The result holds exactly the PCRs that had records (as
    /// `tpm2_eventlog` prints them), in every bank of the log.
    ///
    /// The values are what the PCRs *would* hold if the log were true; they mean nothing
    /// until compared with a TPM (``verify(against:using:)``).
    public func replay(using hasher: some PCRHashing) throws -> PCRValues {
        var state = ReplayState()
        for index in events.indices {
            let event = events[index]
            try state.apply(pcr: event.pcr, type: event.type, data: event.data[...], using: hasher) { event.digests[$0]?[...] }
        }
        return state.values
    }

    /// Parses and replays in one streaming pass without keeping the records (what
    /// `domb log replay` does): the same checks as ``init(parsing:limits:strict:)``, in
    /// memory independent of the number of records.
    ///
    /// - Throws: ``ParseError`` for a malformed log, the hasher's error if hashing fails.
    public static func replay(
        parsing bytes: ArraySlice<UInt8>, limits: Limits = .default, strict: Bool = false, using hasher: some PCRHashing
    ) throws -> PCRValues {
        var state = ReplayState()
        _ = try scan(bytes, limits: limits, strict: strict) { record in
            try state.apply(pcr: record.pcr, type: record.type, data: record.data, using: hasher) { record.digest($0) }
        }
        return state.values
    }
}

/// PCR registers during a replay, created on first use so that a StartupLocality record
/// (which must precede every PCR 0 measurement) sets PCR 0's initial value.
struct ReplayState {
    private var locality: UInt8 = 0
    private var banks: [HashAlgorithm] = []
    /// registers[bank index][pcr]
    private var registers: [[[UInt8]?]] = []

    mutating func apply(
        pcr: UInt32, type: EventType, data: ArraySlice<UInt8>, using hasher: some PCRHashing,
        digest: (HashAlgorithm) -> ArraySlice<UInt8>?
    ) throws {
        guard type != .noAction else {
            if data.count == 17, data.starts(with: EventLog.startupLocalitySignature) {
                locality = data[data.startIndex + 16]
            }
            return
        }
        if banks.isEmpty {
            banks = HashAlgorithm.known.filter { digest($0) != nil }
            registers = Array(repeating: Array(repeating: nil, count: PCRValues.pcrCount), count: banks.count)
        }
        let pcr = Int(pcr)
        for (index, bank) in banks.enumerated() {
            guard let digest = digest(bank) else { continue }
            var register = registers[index][pcr] ?? PCRValues.initialValue(bank, pcr: pcr, startupLocality: locality)
            registers[index][pcr] = nil  // keep the register uniquely referenced for the in-place extend
            try hasher.extend(bank, register: &register, with: digest)
            registers[index][pcr] = register
        }
    }

    var values: PCRValues {
        var values = PCRValues()
        for (index, bank) in banks.enumerated() {
            for (pcr, value) in registers[index].enumerated() {
                if let value { values[bank, pcr] = value }
            }
        }
        return values
    }
}
