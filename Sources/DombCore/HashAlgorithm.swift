//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A TPM hash algorithm, identified by its `TPM_ALG_ID` (TCG TPM 2.0 Part 2, §6.3).
///
/// These are the PCR banks domb knows. Unknown IDs are kept as values so that a log that
/// names one can be reported precisely.
public struct HashAlgorithm: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The corresponding TPM constant is `TPM2_ALG_SHA1`.
    public static let sha1 = HashAlgorithm(rawValue: 0x0004)
    /// The corresponding TPM constant is `TPM2_ALG_SHA256`.
    public static let sha256 = HashAlgorithm(rawValue: 0x000B)
    /// The corresponding TPM constant is `TPM2_ALG_SHA384`.
    public static let sha384 = HashAlgorithm(rawValue: 0x000C)
    /// The corresponding TPM constant is `TPM2_ALG_SHA512`.
    public static let sha512 = HashAlgorithm(rawValue: 0x000D)
    /// The corresponding TPM constant is `TPM2_ALG_SM3_256`.
    public static let sm3_256 = HashAlgorithm(rawValue: 0x0012)

    /// Every algorithm domb can hash and extend, in TPM_ALG_ID order.
    public static let known: [HashAlgorithm] = [.sha1, .sha256, .sha384, .sha512, .sm3_256]

    /// Digest size in bytes, or nil for an algorithm domb does not know.
    public var digestSize: Int? {
        switch self {
        case .sha1: 20
        case .sha256, .sm3_256: 32
        case .sha384: 48
        case .sha512: 64
        default: nil
        }
    }

    /// The name tpm2-tools and CEL-JSON use ("sha256").
    public var name: String {
        switch self {
        case .sha1: "sha1"
        case .sha256: "sha256"
        case .sha384: "sha384"
        case .sha512: "sha512"
        case .sm3_256: "sm3_256"
        default: hex4(rawValue)
        }
    }

    /// Parses "sha256", "SHA256", "sha-256", "sm3_256", or a numeric TPM_ALG_ID ("0x000b").
    public init?(name: String) {
        let lowered = String(name.lowercased().filter { $0 != "-" })
        switch lowered {
        case "sha1": self = .sha1
        case "sha256": self = .sha256
        case "sha384": self = .sha384
        case "sha512": self = .sha512
        case "sm3_256", "sm3256", "sm3": self = .sm3_256
        default:
            let digits = lowered.hasPrefix("0x") ? String(lowered.dropFirst(2)) : lowered
            guard let value = UInt16(digits, radix: lowered.hasPrefix("0x") ? 16 : 10) else { return nil }
            self.init(rawValue: value)
        }
    }

    public var description: String { name }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = HashAlgorithm(name: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown hash algorithm \"\(text)\"")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// "0x000b"-style rendering of a 16-bit value.
func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

extension HashAlgorithm {
    /// PCR banks as a table (`domb tpm info`): name, TPM_ALG_ID (TPM 2.0 Part 2 §6.3) and
    /// digest size in bytes.
    public static func bankTable(_ banks: [HashAlgorithm]) -> TextTable {
        var table = TextTable([.init("BANK"), .init("TPM_ALG_ID", .right), .init("DIGEST BYTES", .right)])
        for bank in banks {
            let id = String(bank.rawValue, radix: 16)
            table.append([bank.name, "0x" + String(repeating: "0", count: max(0, 4 - id.count)) + id, bank.digestSize.map(String.init) ?? "?"])
        }
        return table
    }
}
