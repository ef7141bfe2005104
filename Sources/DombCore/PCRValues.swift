//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// PCR values per bank, as read from a TPM or computed by replay or prediction.
public struct PCRValues: Hashable, Sendable {
    /// Highest PCR index of a PC Client TPM, plus one (PC Client PTP §4.5.2: 24 PCRs).
    public static let pcrCount = 24

    public private(set) var banks: [HashAlgorithm: [Int: [UInt8]]] = [:]

    public init() {}

    public subscript(algorithm: HashAlgorithm, pcr: Int) -> [UInt8]? {
        get { banks[algorithm]?[pcr] }
        set { banks[algorithm, default: [:]][pcr] = newValue }
    }

    public var algorithms: [HashAlgorithm] { banks.keys.sorted() }

    /// The PCR indices that hold a value in `algorithm`, ascending.
    public func pcrs(in algorithm: HashAlgorithm) -> [Int] { (banks[algorithm] ?? [:]).keys.sorted() }
}
