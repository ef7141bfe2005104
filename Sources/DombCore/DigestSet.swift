//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// One digest tagged with its algorithm: a `TPMT_HA` (TPM 2.0 Part 2, §10.3.2).
public struct TaggedDigest: Hashable, Sendable, CustomStringConvertible {
    public var algorithm: HashAlgorithm
    public var bytes: [UInt8]

    public init(_ algorithm: HashAlgorithm, _ bytes: [UInt8]) {
        self.algorithm = algorithm
        self.bytes = bytes
    }

    public var description: String { "\(algorithm.name):\(bytes.hexString)" }
}

/// Digests of the same data in several banks, kept in TPM_ALG_ID order: a
/// `TPML_DIGEST_VALUES` (TPM 2.0 Part 2, §10.9.7), at most one digest per algorithm.
public struct DigestSet: Hashable, Sendable, CustomStringConvertible {
    public private(set) var digests: [TaggedDigest] = []

    public init() {}

    public init(_ digests: [TaggedDigest]) {
        for digest in digests { self[digest.algorithm] = digest.bytes }
    }

    public var algorithms: [HashAlgorithm] { digests.map(\.algorithm) }
    public var isEmpty: Bool { digests.isEmpty }
    public var count: Int { digests.count }

    public subscript(algorithm: HashAlgorithm) -> [UInt8]? {
        get { digests.first { $0.algorithm == algorithm }?.bytes }
        set {
            if let index = digests.firstIndex(where: { $0.algorithm == algorithm }) {
                if let newValue { digests[index].bytes = newValue } else { digests.remove(at: index) }
            } else if let newValue {
                digests.append(TaggedDigest(algorithm, newValue))
                digests.sort { $0.algorithm < $1.algorithm }
            }
        }
    }

    public var description: String { digests.map(\.description).joined(separator: " ") }
}
