//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The `TCG_EfiSpecIDEventStruct` carried by the first record of a crypto-agile log
/// (TCG PC Client PFP §10.4.5.1, "Specification ID Version Event").
///
/// > The first event in the log SHALL be a TCG_PCR_EVENT (SHA-1 format) with
/// > pcrIndex 0, eventType EV_NO_ACTION, digest all zeros, and event data
/// > TCG_EfiSpecIDEventStruct with signature "Spec ID Event03".
public struct SpecIDEvent: Hashable, Sendable {
    /// `"Spec ID Event03\0"`.
    public static let signature: [UInt8] = Array("Spec ID Event03".utf8) + [0]
    /// A TPM has at most this many PCR banks (tss2 `TPM2_NUM_PCR_BANKS`); more in a header is garbage.
    public static let maximumAlgorithms = 16

    /// One row of the header's digest-size table.
    public struct AlgorithmSize: Hashable, Sendable {
        public var algorithm: HashAlgorithm
        public var digestSize: Int
        public init(_ algorithm: HashAlgorithm, _ digestSize: Int) {
            self.algorithm = algorithm
            self.digestSize = digestSize
        }
    }

    /// 0 = client, 1 = server.
    public var platformClass: UInt32
    public var specVersionMinor: UInt8
    public var specVersionMajor: UInt8
    public var specErrata: UInt8
    /// 1 = UINT32, 2 = UINT64.
    public var uintnSize: UInt8
    /// The banks every later record carries a digest for, in header order.
    public var algorithms: [AlgorithmSize]
    public var vendorInfo: [UInt8]

    /// The header domb writes: client platform, spec 2.0 errata 0, UINT64, the given banks
    /// in TPM_ALG_ID order, no vendor info.
    public init(banks: [HashAlgorithm]) {
        platformClass = 0
        specVersionMinor = 0
        specVersionMajor = 2
        specErrata = 0
        uintnSize = 2
        algorithms = Set(banks).sorted().map { AlgorithmSize($0, $0.digestSize ?? 0) }
        vendorInfo = []
    }

    public init(
        platformClass: UInt32, specVersionMinor: UInt8, specVersionMajor: UInt8, specErrata: UInt8,
        uintnSize: UInt8, algorithms: [AlgorithmSize], vendorInfo: [UInt8]
    ) {
        self.platformClass = platformClass
        self.specVersionMinor = specVersionMinor
        self.specVersionMajor = specVersionMajor
        self.specErrata = specErrata
        self.uintnSize = uintnSize
        self.algorithms = algorithms
        self.vendorInfo = vendorInfo
    }

    /// The banks, in header order.
    public var banks: [HashAlgorithm] { algorithms.map(\.algorithm) }

    /// Whether `data` starts with a "Spec ID Event" signature of any version (used to
    /// refuse a second header in the body of a log).
    static func looksLikeSpecID(_ data: ArraySlice<UInt8>) -> Bool {
        data.starts(with: Array("Spec ID Event".utf8))
    }

    /// Parses the event data of the header record. The whole of `reader` must be consumed.
    public init(parsing reader: inout ByteReader) throws(ParseError) {
        let signatureOffset = reader.offset
        let signature = try reader.readBytes(16, field: "Spec ID signature")
        guard signature.elementsEqual(Self.signature) else {
            throw .invalid("Spec ID signature is not \"Spec ID Event03\"", offset: signatureOffset)
        }
        platformClass = try reader.readLE(UInt32.self, "Spec ID platformClass")
        specVersionMinor = try reader.readLE(UInt8.self, "Spec ID specVersionMinor")
        specVersionMajor = try reader.readLE(UInt8.self, "Spec ID specVersionMajor")
        specErrata = try reader.readLE(UInt8.self, "Spec ID specErrata")
        let uintnOffset = reader.offset
        uintnSize = try reader.readLE(UInt8.self, "Spec ID uintnSize")
        guard uintnSize == 1 || uintnSize == 2 else {
            throw .invalid("Spec ID uintnSize \(uintnSize) is neither 1 (UINT32) nor 2 (UINT64)", offset: uintnOffset)
        }
        let countOffset = reader.offset
        let count = try reader.readLE(UInt32.self, "Spec ID numberOfAlgorithms")
        guard count >= 1 else {
            throw .invalid("Spec ID lists no algorithms", offset: countOffset)
        }
        guard count <= Self.maximumAlgorithms else {
            throw .limit("Spec ID lists \(count) algorithms, more than \(Self.maximumAlgorithms)", offset: countOffset)
        }
        var algorithms: [AlgorithmSize] = []
        for index in 0..<Int(count) {
            let entryOffset = reader.offset
            let id = try reader.readLE(UInt16.self, "Spec ID algorithmId[\(index)]")
            let size = try reader.readLE(UInt16.self, "Spec ID digestSize[\(index)]")
            let algorithm = HashAlgorithm(rawValue: id)
            guard let expected = algorithm.digestSize else {
                throw ParseError(
                    .unsupported, "Spec ID names unknown hash algorithm \(algorithm) (TPM_ALG_ID \(hex4(id)))",
                    offset: entryOffset)
            }
            guard Int(size) == expected else {
                throw .invalid("Spec ID gives \(algorithm) a digest size of \(size), not \(expected)", offset: entryOffset)
            }
            guard !algorithms.contains(where: { $0.algorithm == algorithm }) else {
                throw .invalid("Spec ID lists \(algorithm) twice", offset: entryOffset)
            }
            algorithms.append(AlgorithmSize(algorithm, expected))
        }
        self.algorithms = algorithms
        let vendorSize = try reader.readLE(UInt8.self, "Spec ID vendorInfoSize")
        vendorInfo = Array(try reader.readBytes(Int(vendorSize), field: "Spec ID vendorInfo"))
        try reader.expectEnd("Spec ID event")
    }

    /// The `TCG_EfiSpecIDEventStruct` bytes.
    public func serialized() -> [UInt8] {
        var writer = ByteWriter(capacity: 32 + 4 * algorithms.count + vendorInfo.count)
        writer.writeBytes(Self.signature)
        writer.writeLE(platformClass)
        writer.writeLE(specVersionMinor)
        writer.writeLE(specVersionMajor)
        writer.writeLE(specErrata)
        writer.writeLE(uintnSize)
        writer.writeLE(UInt32(algorithms.count))
        for entry in algorithms {
            writer.writeLE(entry.algorithm.rawValue)
            writer.writeLE(UInt16(truncatingIfNeeded: entry.digestSize))
        }
        writer.writeLE(UInt8(truncatingIfNeeded: vendorInfo.count))
        writer.writeBytes(vendorInfo.prefix(255))
        return writer.bytes
    }
}
