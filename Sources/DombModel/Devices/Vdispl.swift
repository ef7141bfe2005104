//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

extension DeviceKind {
    /// A PV display (`libxl_vdispl.c`, xl.cfg `vdispl`, `xen/include/public/io/displif.h`).
    public static let vdispl = DeviceKind("vdispl")
}

/// A PV display with its virtual connectors (xl.cfg(5) `vdispl`), served by a display
/// backend such as `displ_be`.
public struct VdisplSettings: DeviceSettings {
    public static let kind = DeviceKind.vdispl
    public static let settingNames = ["be-alloc", "connectors"]

    /// One virtual connector: `<id>:<W>x<H>` in xl.cfg.
    public struct Connector: Hashable, Sendable {
        /// The connector's unique id (no spaces, commas, colons or semicolons).
        public var uniqueID: String
        /// Resolution in pixels.
        public var width: UInt32
        public var height: UInt32

        public init(uniqueID: String, width: UInt32, height: UInt32) {
            self.uniqueID = uniqueID
            self.width = width
            self.height = height
        }
    }

    /// Whether the backend may allocate the display buffers (displif.h `be-alloc`).
    public var backendAllocates: Bool
    /// At least one (xl: "At least one connector should be specified"), at most
    /// ``maxConnectors``.
    public var connectors: [Connector]

    /// Connectors one display may have: each is three Xenstore nodes, and a description's
    /// plan must stay within ``XenstoreLimits/maximumNodes``.
    public static let maxConnectors = 16

    public init(backendAllocates: Bool = false, connectors: [Connector]) {
        self.backendAllocates = backendAllocates
        self.connectors = connectors
    }

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        backendAllocates = try settings.takeFlag("be-alloc") ?? false
        let text = try settings.require("connectors", kind: Self.kind)
        guard let connectors = Self.parseConnectors(text), connectors.count <= Self.maxConnectors else {
            throw DeviceSettingError(
                "connectors \"\(text)\" is not 1 to \(Self.maxConnectors) of <id>:<W>x<H> separated by ; (ids of letters, digits, - and _)",
                setting: "connectors")
        }
        self.connectors = connectors
    }

    /// `parse_vdispl_config` (xl_parse.c): `;`-separated connectors, each an id, `:`, and
    /// `%ux%u`. domb takes plain decimal sizes and ids without spaces or separators.
    static func parseConnectors(_ text: String) -> [Connector]? {
        var connectors: [Connector] = []
        for item in text.split(separator: ";", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty,
                parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else { return nil }
            let size = parts[1].split(separator: "x", omittingEmptySubsequences: false)
            guard size.count == 2, let width = UInt32(decimal: String(size[0])), let height = UInt32(decimal: String(size[1])) else {
                return nil
            }
            connectors.append(Connector(uniqueID: String(parts[0]), width: width, height: height))
        }
        return connectors
    }

    public var namedSettings: [(name: String, value: String)] {
        [
            ("be-alloc", backendAllocates ? "1" : "0"),
            ("connectors", connectors.map { "\($0.uniqueID):\($0.width)x\($0.height)" }.joined(separator: ";")),
        ]
    }

    public static let xlListKey: String? = "vdispl"

    /// vdispl items as xl's `parse_vdispl_config` reads them (``XLVdisplSpec``).
    public static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec] {
        try XLDevices.eachItem(items) { (_, item) throws(ParseError) -> DeviceSpec in
            let spec = try XLVdisplSpec.parse(item)
            return DeviceSpec(
                VdisplSettings(backendAllocates: spec.backendAllocates, connectors: spec.connectors),
                backend: XLDevices.backend(spec.backendDomain))
        }
    }

    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] {
        var seen = Set<String>()
        var problems: [LaunchProblem] = []
        for connector in connectors where !seen.insert(connector.uniqueID).inserted {
            problems.append(context.problem(.deviceSetting, "connector id \"\(connector.uniqueID)\" is used twice"))
        }
        if connectors.contains(where: { $0.width == 0 || $0.height == 0 }) {
            problems.append(context.problem(.deviceSetting, "a connector has a zero width or height"))
        }
        return problems
    }

    /// After nics and vtpms in `device_type_tbl` (libxl_create.c).
    public static let xenstoreOrder = 45

    /// `libxl__set_xenstore_vdispl` (libxl_vdispl.c): everything in the read-only
    /// frontend: `be-alloc`, then `<n>/resolution` (`WxH`) and `<n>/unique-id` per connector.
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        var roFront: [(String, XenstoreTemplate)] = [("be-alloc", backendAllocates ? "1" : "0")]
        for (index, connector) in connectors.enumerated() {
            roFront.append(("\(index)/resolution", "\(connector.width)x\(connector.height)"))
            roFront.append(("\(index)/unique-id", XenstoreTemplate(literal: connector.uniqueID)))
        }
        let (back, front) = context.commonKeys
        return XenstoreDevice(kind: "vdispl", context: context, back: back, front: front, roFront: roFront)
    }
}

// MARK: - xl.cfg

/// A `vdispl` item (xl.cfg(5) VDISPL_SPEC_STRING) as `parse_vdispl_config` fills
/// `libxl_device_vdispl`.
public struct XLVdisplSpec: Hashable, Sendable {
    public typealias Connector = VdisplSettings.Connector

    public var backendDomain: String?
    /// `be-alloc=` (`strtoul(…, 0)` into a bool).
    public var backendAllocates: Bool
    public var connectors: [Connector]

    /// - Throws: `ParseError`: an unknown key ("Unknown string … in vdispl spec"), a connector
    ///   xl cannot read ("Can't parse connector resolution"), none at all ("At least one
    ///   connector should be specified."); and the forms xl crashes or reads garbage on (an
    ///   empty `connectors=`, a connector without `:`), which domb refuses.
    public static func parse(_ spec: String) throws(ParseError) -> XLVdisplSpec {
        var result = XLVdisplSpec(backendDomain: nil, backendAllocates: false, connectors: [])
        for token in xlTokens(spec) {
            let term = String(token)
            if term.hasPrefix("backend=") {
                result.backendDomain = String(term.dropFirst("backend=".count))
            } else if term.hasPrefix("be-alloc=") {
                let number = CStrtoul(term.dropFirst("be-alloc=".count), base: 0)
                result.backendAllocates = number.value != 0
            } else if term.hasPrefix("connectors=") {
                result.connectors = try connectors(String(term.dropFirst("connectors=".count)))
            } else {
                throw .invalid("Unknown string \"\(TerminalText.escape(term))\" in vdispl spec")
            }
        }
        guard !result.connectors.isEmpty else { throw .invalid("At least one connector should be specified.") }
        return result
    }

    /// `split_string_into_string_list(…, ";")` then `split_string_into_pair(…, ":")` and
    /// `sscanf("%ux%u")` for each.
    static func connectors(_ text: String) throws(ParseError) -> [Connector] {
        let items = text.split(separator: ";", omittingEmptySubsequences: true)
        guard !items.isEmpty else {
            throw .invalid("connectors= is empty (xl 4.17 crashes on it)")
        }
        var connectors: [Connector] = []
        for item in items {
            let parts = item.split(separator: ":", omittingEmptySubsequences: true)
            guard parts.count >= 2 else {
                throw .invalid("connector \"\(TerminalText.escape(String(item)))\" is not ID:WxH (xl 4.17 would read garbage)")
            }
            guard let (width, afterWidth) = scanUnsigned(parts[1]), afterWidth.first == "x",
                let (height, _) = scanUnsigned(afterWidth.dropFirst())
            else { throw .invalid("Can't parse connector resolution \"\(TerminalText.escape(String(parts[1])))\"") }
            connectors.append(Connector(uniqueID: String(parts[0]), width: width, height: height))
        }
        return connectors
    }

    /// `sscanf`'s `%u`: leading white space, an optional sign (domb refuses `-`), digits;
    /// the value must fit 32 bits (C would wrap it).
    private static func scanUnsigned(_ text: Substring) -> (UInt32, Substring)? {
        let number = CStrtoul(text, base: 10)
        guard number.converted, !number.negative, let value = UInt32(exactly: number.value) else { return nil }
        return (value, number.rest)
    }
}
