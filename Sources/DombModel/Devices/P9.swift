//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

extension DeviceKind {
    /// A 9pfs share (`libxl_9pfs.c`, xl.cfg `p9`).
    public static let p9 = DeviceKind("9pfs")
}

/// A Xen 9pfs share from the backend's filesystem (xl.cfg(5) `p9`).
public struct P9Settings: DeviceSettings {
    public static let kind = DeviceKind.p9
    public static let settingNames = ["tag", "path", "security_model"]

    /// `security_model`: xl.cfg(5) of 4.17 documents only `none`; libxl hands the value to
    /// QEMU's Xen 9pfs backend, which takes its `-fsdev` models.
    public enum SecurityModel: String, Hashable, Sendable, CaseIterable {
        case none
        case passthrough
        case mapped
        case mappedXattr = "mapped-xattr"
        case mappedFile = "mapped-file"
    }

    /// The tag the guest mounts the share by.
    public var tag: String
    /// The directory the backend exports.
    public var path: String
    public var securityModel: SecurityModel

    public init(tag: String, path: String, securityModel: SecurityModel = .none) {
        self.tag = tag
        self.path = path
        self.securityModel = securityModel
    }

    /// All three are required, as xl requires them ("p9 spec missing required field").
    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        tag = try settings.require("tag", kind: Self.kind)
        path = try settings.require("path", kind: Self.kind)
        guard let model = try settings.take("security_model", as: SecurityModel.self) else {
            throw DeviceSettingError("a 9pfs share needs security_model (none, as xl.cfg(5) recommends)", setting: "security_model")
        }
        securityModel = model
    }

    public var namedSettings: [(name: String, value: String)] {
        [("tag", tag), ("path", path), ("security_model", securityModel.rawValue)]
    }

    public static let xlListKey: String? = "p9"

    /// The p9 list as xl_parse.c reads it (``XLP9Spec``: tag, security_model and path
    /// required, no field carried over from the item before).
    public static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec] {
        let specs = try XLP9Spec.parse(items)
        return try XLDevices.eachItem(items) { (index, _) throws(ParseError) -> DeviceSpec in
            let spec = specs[index]
            guard let model = SecurityModel(rawValue: spec.securityModel) else {
                throw .invalid(
                    "security_model \"\(TerminalText.escape(spec.securityModel))\" is not one of "
                        + SecurityModel.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return DeviceSpec(
                P9Settings(tag: spec.tag, path: spec.path, securityModel: model), backend: XLDevices.backend(spec.backendDomain))
        }
    }

    public static let xenstoreOrder = 50

    /// `libxl__set_xenstore_p9` (libxl_9pfs.c, 4.17): `path`, `security_model` in the
    /// backend, `tag` in the frontend.
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        let (back, front) = context.commonKeys
        return XenstoreDevice(
            kind: "9pfs", context: context,
            back: back + [("path", XenstoreTemplate(literal: path)), ("security_model", XenstoreTemplate(literal: securityModel.rawValue))],
            front: front + [("tag", XenstoreTemplate(literal: tag))])
    }
}

// MARK: - xl.cfg

/// A `p9` item (xl.cfg(5) 9PFS_SPEC_STRING) as xl_parse.c fills `libxl_device_p9`.
public struct XLP9Spec: Hashable, Sendable {
    public var tag: String
    public var securityModel: String
    public var path: String
    public var backendDomain: String?

    public init(tag: String, securityModel: String, path: String, backendDomain: String?) {
        self.tag = tag
        self.securityModel = securityModel
        self.path = path
        self.backendDomain = backendDomain
    }

    /// The whole `p9` list. xl keeps `tag`, `security_model`, `path` and `backend` from one
    /// item to the next (its variables live outside the loop), so an item that leaves one
    /// out inherits the previous item's; domb refuses such an item rather than copy a value
    /// the item does not show.
    /// - Throws: `ParseError`: a missing field ("9pfs spec missing required field!"), an
    ///   unknown key, a term without `=` (xl stops there), an inherited field.
    public static func parse(_ items: [String]) throws(ParseError) -> [XLP9Spec] {
        var seen: Set<String> = []
        var result: [XLP9Spec] = []
        for item in items {
            var fields: [String: String] = [:]
            for (key, value) in try xlKeyValues(item, what: "9pfs") {
                guard ["security_model", "path", "tag", "backend"].contains(key) else {
                    throw .invalid("Unknown string `\(TerminalText.escape(key))' in 9pfs spec")
                }
                fields[key] = value
            }
            if let inherited = seen.subtracting(fields.keys).sorted().first {
                throw .invalid(
                    "\"\(TerminalText.escape(item))\" has no \(inherited): xl 4.17 would reuse the previous item's; write it out")
            }
            seen.formUnion(fields.keys)
            guard let tag = fields["tag"], let securityModel = fields["security_model"], let path = fields["path"] else {
                throw .invalid("\"\(TerminalText.escape(item))\": 9pfs spec missing required field! (tag, security_model, path)")
            }
            result.append(XLP9Spec(tag: tag, securityModel: securityModel, path: path, backendDomain: fields["backend"]))
        }
        return result
    }
}
