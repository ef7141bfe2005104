//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

extension DeviceKind {
    /// A PV keyboard and pointer (`libxl_vkb.c`, xl.cfg `vkb`).
    public static let vkbd = DeviceKind("vkbd")
}

/// A PV keyboard and pointer (xl.cfg(5) `vkb`).
public struct VkbdSettings: DeviceSettings {
    public static let kind = DeviceKind.vkbd
    public static let featureNames = ["feature-disable-keyboard", "feature-disable-pointer", "feature-abs-pointer", "feature-raw-pointer"]
    public static let multiTouchNames = ["multi-touch-width", "multi-touch-height", "multi-touch-num-contacts"]
    public static let settingNames = ["backend-type", "unique-id"] + featureNames + ["feature-multi-touch"] + multiTouchNames + ["width", "height"]

    /// `backend-type`: QEMU's vkbd (the default) or the Linux `vinput` backend.
    public enum BackendType: String, Hashable, Sendable, CaseIterable {
        case qemu
        case linux
    }

    public var backendType: BackendType?
    public var uniqueID: String?
    /// The `feature-*` flags and sizes, by setting name; absent means 0 (libxl writes only non-zero ones).
    public var numbers: [String: UInt32]

    public init(backendType: BackendType? = nil, uniqueID: String? = nil, numbers: [String: UInt32] = [:]) {
        self.backendType = backendType
        self.uniqueID = uniqueID
        self.numbers = numbers
    }

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        backendType = try settings.take("backend-type", as: BackendType.self)
        uniqueID = settings.take("unique-id")
        numbers = [:]
        for name in Self.settingNames.dropFirst(2) {
            if let value = try settings.takeNumber(name) { numbers[name] = value }
        }
    }

    public var namedSettings: [(name: String, value: String)] {
        var named: [(name: String, value: String)] = []
        if let backendType { named.append(("backend-type", backendType.rawValue)) }
        if let uniqueID { named.append(("unique-id", uniqueID)) }
        for name in Self.settingNames.dropFirst(2) {
            if let value = numbers[name] { named.append((name, String(value))) }
        }
        return named
    }

    public static let xlListKey: String? = "vkb"

    /// vkb items as xl's `parse_vkb_config` reads them (``XLVkbSpec``); the `feature-*`
    /// values are booleans in libxl (any non-zero number is 1), the sizes 32-bit numbers.
    public static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec] {
        try XLDevices.eachItem(items) { (_, item) throws(ParseError) -> DeviceSpec in
            let vkb = try XLVkbSpec.parse(item)
            var numbers: [String: UInt32] = [:]
            for (name, value) in vkb.numbers where value != 0 {
                numbers[name] = name.hasPrefix("feature-") ? 1 : value
            }
            let type: BackendType = vkb.backendType == .linux ? .linux : .qemu
            return DeviceSpec(
                VkbdSettings(backendType: type, uniqueID: vkb.uniqueID, numbers: numbers), backend: XLDevices.backend(vkb.backendDomain))
        }
    }

    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] {
        // parse_vkb_list (xl_parse.c): multi-touch needs its sizes.
        if numbers["feature-multi-touch", default: 0] != 0 && Self.multiTouchNames.allSatisfy({ numbers[$0, default: 0] == 0 }) {
            return [context.problem(.deviceSetting, "feature-multi-touch needs \(Self.multiTouchNames.joined(separator: ", "))")]
        }
        return []
    }

    public static let xenstoreOrder = 20

    /// `libxl__set_xenstore_vkb`: backend `vkbd` (QEMU, the default) or `vinput` (Linux).
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        var extra: [(String, XenstoreTemplate)] = []
        if let uniqueID { extra.append(("unique-id", XenstoreTemplate(literal: uniqueID))) }
        for name in Self.featureNames {
            if let value = numbers[name], value != 0 { extra.append((name, "\(value)")) }
        }
        // xl turns multi-touch on when a size is given.
        let multiTouch = numbers["feature-multi-touch", default: 0] != 0 || Self.multiTouchNames.contains { numbers[$0, default: 0] != 0 }
        if multiTouch {
            extra.append(("feature-multi-touch", "\(max(numbers["feature-multi-touch", default: 1], 1))"))
            for name in Self.multiTouchNames { extra.append((name, "\(numbers[name, default: 0])")) }
        }
        for name in ["width", "height"] {
            if let value = numbers[name], value != 0 { extra.append((name, "\(value)")) }
        }
        let (back, front) = context.commonKeys
        return XenstoreDevice(
            kind: "vkbd", backendKind: (backendType ?? .qemu) == .qemu ? "vkbd" : "vinput", context: context,
            back: back + extra, front: front)
    }

    /// HVM guests get a QEMU vkb unless the configuration has one (`vkb_device`, default true).
    public static func libxlDefault(for domain: DomainSpec) -> DeviceSpec? {
        domain.type == .hvm ? DeviceSpec(VkbdSettings()) : nil
    }
}

// MARK: - xl.cfg

/// A `vkb` item (xl.cfg(5) VKB_SPEC_STRING) as `parse_vkb_config` fills `libxl_device_vkb`.
public struct XLVkbSpec: Hashable, Sendable {
    /// `libxl_vkb_backend`.
    public enum BackendType: String, Hashable, Sendable {
        case qemu
        case linux
    }

    public var backendDomain: String?
    public var backendType: BackendType
    public var uniqueID: String?
    /// The `feature-*`, `multi-touch-*`, `width` and `height` numbers given, by name
    /// (`strtoul(…, 0)`, stored as 32-bit); `feature-multi-touch` is set to 1 when a
    /// multi-touch size is, as xl sets it.
    public var numbers: [String: UInt32]

    static let numberKeys = [
        "feature-disable-keyboard", "feature-disable-pointer", "feature-abs-pointer", "feature-raw-pointer",
        "feature-multi-touch", "multi-touch-width", "multi-touch-height", "multi-touch-num-contacts", "width", "height",
    ]

    /// - Throws: `ParseError`: an unknown key or backend type, no `backend-type`
    ///   ("backend-type should be set in vkb spec"), multi-touch without its sizes.
    public static func parse(_ spec: String) throws(ParseError) -> XLVkbSpec {
        var backend: String?
        var type: BackendType?
        var uniqueID: String?
        var numbers: [String: UInt32] = [:]
        for token in xlTokens(spec) {
            let term = String(token)
            guard let equals = term.firstIndex(of: "=") else {
                throw .invalid("Unknown string \"\(TerminalText.escape(term))\" in vkb spec")
            }
            let key = String(term[..<equals])
            let value = String(term[term.index(after: equals)...])
            switch key {
            case "backend": backend = value
            case "backend-type":
                // libxl_vkb_backend_from_string compares without case.
                guard let parsed = BackendType(rawValue: value.lowercased()) else {
                    throw .invalid("Unknown backend_type \"\(TerminalText.escape(value))\" in vkb spec")
                }
                type = parsed
            case "unique-id": uniqueID = value
            case let name where numberKeys.contains(name):
                // strtoul(oparg, NULL, 0) into a uint32_t field: junk is ignored, as in xl;
                // a value that does not fit is refused (xl would truncate it).
                let number = CStrtoul(Substring(value), base: 0)
                guard !number.negative, !number.overflow, let fitted = UInt32(exactly: number.value) else {
                    throw .invalid("\(TerminalText.escape(term)): not a 32-bit number")
                }
                numbers[name] = fitted
            default:
                throw .invalid("Unknown string \"\(TerminalText.escape(term))\" in vkb spec")
            }
        }
        guard let type else { throw .invalid("backend-type should be set in vkb spec") }
        let sizes = ["multi-touch-height", "multi-touch-width", "multi-touch-num-contacts"]
        if sizes.contains(where: { (numbers[$0] ?? 0) != 0 }) { numbers["feature-multi-touch"] = 1 }
        if (numbers["feature-multi-touch"] ?? 0) != 0 && !sizes.contains(where: { (numbers[$0] ?? 0) != 0 }) {
            throw .invalid("multi-touch-width, multi-touch-height, multi-touch-num-contacts should be set for multi touch in vkb spec")
        }
        return XLVkbSpec(backendDomain: backend, backendType: type, uniqueID: uniqueID, numbers: numbers)
    }
}
