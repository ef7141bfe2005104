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
