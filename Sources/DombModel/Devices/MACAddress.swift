//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// An Ethernet MAC address, as a vif's or virtio-net device's `mac` setting gives it.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Parses six hexadecimal pairs separated by `:` or `-` (what `libxl__parse_mac`
    /// accepts), either case.
    public init?(_ text: String) {
        let separator: Character = text.contains("-") ? "-" : ":"
        let parts = text.split(separator: separator, omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.utf8.count == 2, part.utf8.allSatisfy(Self.isHexDigit), let byte = UInt8(part, radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// A unicast address (the group bit of the first byte clear): a NIC's own address.
    public var isUnicast: Bool { bytes.first.map { $0 & 1 == 0 } ?? false }

    /// `xx:xx:xx:xx:xx:xx`, lower case, as libxl writes it (`LIBXL_MAC_FMT`).
    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    /// libxl picks `00:16:3e` plus three random bytes (the first of them below 0x80); domb
    /// derives them from the domain name and devid (FNV-1a) so plans are reproducible.
    public static func derived(domain: String, devid: UInt32) -> MACAddress {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in Array("domb-vif:\(domain):\(devid)".utf8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return MACAddress(bytes: [0x00, 0x16, 0x3e, UInt8((hash >> 16) & 0x7f), UInt8((hash >> 8) & 0xff), UInt8(hash & 0xff)])
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
    }
}
