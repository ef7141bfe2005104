//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

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
