//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A virtual disk: the name a configuration gives (`vdev`) and the device number Xen's
/// toolstack derives from it, which is the disk's devid and its frontend's
/// `virtual-device`. The one place domb turns names into numbers: validation, the
/// Xenstore plan and duplicate detection all use it.
public struct VirtualDisk: Hashable, Sendable, CustomStringConvertible {
    /// The name as written (`xvda`, `hdc`, `sdb2`, `d0p1`, `51712`).
    public let name: String
    /// The device number (`xvda` = 51712).
    public let number: UInt32

    /// - Returns: nil if libxl 4.17 refuses the name.
    public init?(_ name: String) {
        guard let number = DiskNumber.number(of: name) else { return nil }
        self.name = name
        self.number = number
    }

    public var description: String { name }

    /// What a valid name looks like, for messages.
    public static let rule = "a disk name libxl accepts: xvdX[N] (X a to zzz…, N 1-255), hdX[N] (hda-hdd, N 1-63), "
        + "sdX[N] (sda-sdp, N 1-15), dDpP or a device number"
}

/// Virtual disk names to device numbers, exactly as libxl's
/// `libxl__device_disk_dev_number` (`libxl_device.c`, 4.17) computes them; the numbering
/// is xen-vbd-interface(7) (`docs/man/xen-vbd-interface.7.pandoc`).
enum DiskNumber {
    /// The number for `vdev` (`xvda` = 51712, `xvdq` = 268439552, `hda` = 768, `sda` = 2048,
    /// `d0p0`, or a plain number), or nil if libxl would reject the name.
    static func number(of vdev: String) -> UInt32? {
        let bytes = Array(vdev.utf8)
        guard !bytes.isEmpty, bytes.count <= 32 else { return nil }
        if let (disk, partition) = parseDP(bytes) ?? matches(bytes, prefix: "xvd", maxIndex: (1 << 20) - 1, maxPartition: 255) {
            if disk <= 15, partition <= 15 {
                return UInt32((202 << 8) | (disk << 4) | partition)
            }
            return UInt32((1 << 28) | (disk << 8) | partition)
        }
        if let plain = plainNumber(bytes) { return plain }
        if let (disk, partition) = matches(bytes, prefix: "hd", maxIndex: 3, maxPartition: 63) {
            return UInt32(((disk < 2 ? 3 : 22) << 8) | ((disk & 1) << 6) | partition)
        }
        if let (disk, partition) = matches(bytes, prefix: "sd", maxIndex: 15, maxPartition: 15) {
            return UInt32((8 << 8) | (disk << 4) | partition)
        }
        return nil
    }

    /// `sscanf(virtpath, "d%ip%i%n")` with the whole string used, disk < 2^20, partition < 256.
    /// (`%i` also takes a sign and 0x/0 prefixes; domb accepts only plain decimal there.)
    static func parseDP(_ bytes: [UInt8]) -> (Int, Int)? {
        guard bytes.first == UInt8(ascii: "d"), let p = bytes.firstIndex(of: UInt8(ascii: "p")) else { return nil }
        guard let disk = decimal(bytes[1..<p]), let partition = decimal(bytes[(p + 1)...]) else { return nil }
        guard disk < (1 << 20), partition < 256 else { return nil }
        return (disk, partition)
    }

    static func decimal(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// `strtoul(virtpath, &ep, 0)` consuming everything, value ≤ INT_MAX (decimal, 0x hex, 0 octal).
    static func plainNumber(_ bytes: [UInt8]) -> UInt32? {
        let text = String(decoding: bytes, as: UTF8.self)
        let value: UInt64?
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            value = text.count > 2 ? UInt64(text.dropFirst(2), radix: 16) : nil
        } else if text.hasPrefix("0"), text.count > 1 {
            value = UInt64(text.dropFirst(), radix: 8)
        } else {
            value = UInt64(text, radix: 10)
        }
        guard let value, value <= UInt64(Int32.max) else { return nil }
        return UInt32(value)
    }

    /// `device_virtdisk_matches`: the drive letters as base-26 "digits" a-z, then an optional
    /// partition number without leading zeros.
    static func matches(_ bytes: [UInt8], prefix: String, maxIndex: Int, maxPartition: Int) -> (Int, Int)? {
        let prefixBytes = Array(prefix.utf8)
        guard bytes.count > prefixBytes.count, Array(bytes[0..<prefixBytes.count]) == prefixBytes else { return nil }
        var index = -1
        var position = prefixBytes.count
        while position < bytes.count, bytes[position] >= UInt8(ascii: "a"), bytes[position] <= UInt8(ascii: "z") {
            index = (index + 1) * 26 + Int(bytes[position] - UInt8(ascii: "a"))
            guard index <= maxIndex else { return nil }
            position += 1
        }
        // libxl accepts no letters at all (index -1) only to fail later; require one.
        guard index >= 0 else { return nil }
        if position == bytes.count { return (index, 0) }
        guard bytes[position] != UInt8(ascii: "0"), let partition = decimal(bytes[position...]),
            partition <= maxPartition
        else { return nil }
        return (index, partition)
    }
}
