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
}

extension PCRHashing {
    public func extend(_ algorithm: HashAlgorithm, _ old: [UInt8], with digest: [UInt8]) throws -> [UInt8] {
        try self.digest(algorithm, (old + digest)[...])
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
        let locality = startupLocality ?? 0
        var state: [HashAlgorithm: [[UInt8]?]] = [:]
        for bank in banks { state[bank] = Array(repeating: nil, count: PCRValues.pcrCount) }
        for bank in banks {
            guard var registers = state[bank] else { continue }
            for event in events where event.isExtended {
                let pcr = Int(event.pcr)
                guard let digest = event.digests[bank] else { continue }
                let old = registers[pcr] ?? PCRValues.initialValue(bank, pcr: pcr, startupLocality: locality)
                registers[pcr] = try hasher.extend(bank, old, with: digest)
            }
            state[bank] = registers
        }
        var values = PCRValues()
        for (bank, registers) in state {
            for (pcr, value) in registers.enumerated() {
                if let value { values[bank, pcr] = value }
            }
        }
        return values
    }
}
