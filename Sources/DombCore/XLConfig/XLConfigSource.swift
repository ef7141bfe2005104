//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// An xl domain configuration file as Xen's own parser read it: libxlutil
/// (`xlu_cfg_readdata`), wrapped by `DombXLUtil.XLUtilConfig`. The importer asks it what
/// xl asks libxlutil (`xlu_cfg_get_long`, `xlu_disk_parse`, `xlu_vif_parse_rate`), so
/// numbers, strings, lists, `+=`, comments and DISKSPECs mean exactly what they mean to `xl`.
///
/// Errors name the line (`line 3: ...`) and the key, in libxlutil's words where it is
/// libxlutil that refuses.
public protocol XLConfigSource {
    /// Every key once, with the value xl reads for it (the last assignment, with `+=`
    /// applied), ordered by that assignment's line.
    var settings: [XLSetting] { get }

    /// The key as a number, as xl reads it (`xlu_cfg_get_long`: `strtol` base 0, so
    /// `0400` is 256 and `0x10` is 16; a number given with `+=` is refused).
    /// - Returns: nil when the key is absent.
    /// - Throws: `ParseError` with libxlutil's message (not a number, out of range, a list).
    func number(_ key: String) throws(ParseError) -> Int?

    /// One DISKSPEC (xl-disk-configuration(5)) parsed by `xlu_disk_parse`, as xl parses
    /// each item of `disk = [...]`.
    /// - Throws: `ParseError` with libxlutil's message naming the spec.
    func parseDisk(_ spec: String) throws(ParseError) -> XLDiskSpec

    /// A VIFSPEC `rate=` value (`10Mb/s@20ms`) parsed by `xlu_vif_parse_rate`.
    /// - Throws: `ParseError` with libxlutil's message.
    func parseVifRate(_ rate: String) throws(ParseError) -> XLVifRate
}

extension XLConfigSource {
    /// The setting xl reads for `key`, if the file has one.
    public func setting(_ key: String) -> XLSetting? { settings.first { $0.name == key } }
}

/// One key of an xl.cfg file, as libxlutil stored it.
public struct XLSetting: Hashable, Sendable {
    public var name: String
    /// The value xl reads: that of the last assignment, with earlier values prepended by `+=`.
    public var value: XLValue
    /// 1-based line of the last assignment's value (libxlutil's `lineno`).
    public var line: Int
    /// The last assignment was `+=` (libxlutil refuses numbers given that way).
    public var isAddition: Bool
    /// Lines of earlier `key = ...` statements whose value the later ones replaced (xl keeps
    /// the last, silently), in file order.
    public var overriddenLines: [Int]

    public init(name: String, value: XLValue, line: Int, isAddition: Bool, overriddenLines: [Int] = []) {
        self.name = name
        self.value = value
        self.line = line
        self.isAddition = isAddition
        self.overriddenLines = overriddenLines
    }
}

/// A value of an xl.cfg setting: libxlutil keeps numbers as the text written, so a number
/// is a `.string` here too (`xlu_cfg_get_long` reads it).
public indirect enum XLValue: Hashable, Sendable {
    case string(String)
    /// `[ ... ]`; items are strings or, rarely (`vsnd`), lists.
    case list([XLValue])

    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}

/// A vif's bandwidth limit, as `xlu_vif_parse_rate` sets `libxl_device_nic`'s
/// `rate_bytes_per_interval` and `rate_interval_usecs`.
public struct XLVifRate: Hashable, Sendable, Codable {
    public var bytesPerInterval: UInt64
    public var intervalMicroseconds: UInt32

    public init(bytesPerInterval: UInt64, intervalMicroseconds: UInt32) {
        self.bytesPerInterval = bytesPerInterval
        self.intervalMicroseconds = intervalMicroseconds
    }
}
