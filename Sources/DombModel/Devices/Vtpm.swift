//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

extension DeviceKind {
    /// A vTPM served by a vTPM stub domain (`libxl_vtpm.c`, xl.cfg `vtpm`).
    public static let vtpm = DeviceKind("vtpm")
}

/// A virtual TPM (xl.cfg(5) `vtpm`), served by a vtpm stub domain.
public struct VtpmSettings: DeviceSettings {
    public static let kind = DeviceKind.vtpm
    public static let settingNames = ["uuid"]

    /// The vTPM's UUID, lower case. Required: libxl would make a random one, and a measured
    /// Xenstore plan must be fixed.
    public var uuid: String

    public init?(uuid: String) {
        guard let canonical = XenstoreUUID.canonical(uuid) else { return nil }
        self.uuid = canonical
    }

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {
        guard let text = settings.take("uuid") else {
            throw DeviceSettingError(
                "a vtpm needs uuid (libxl would make a random one; a measured plan needs it fixed)", setting: "uuid")
        }
        guard let canonical = XenstoreUUID.canonical(text) else {
            throw DeviceSettingError("uuid \"\(text)\" is not an RFC 4122 UUID (8-4-4-4-12 hex digits)", setting: "uuid")
        }
        uuid = canonical
    }

    public var namedSettings: [(name: String, value: String)] { [("uuid", uuid)] }

    public static let xlListKey: String? = "vtpm"

    /// vtpm items as xl_parse.c reads them (``XLVtpmSpec``: `backend` required); the devid
    /// is the item's index, as xl's ARRAY_EXTEND_INIT gives it.
    public static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec] {
        try XLDevices.eachItem(items) { (_, item) throws(ParseError) -> DeviceSpec in
            let vtpm = try XLVtpmSpec.parse(item)
            guard let uuid = vtpm.uuid, let settings = VtpmSettings(uuid: uuid) else {
                throw .unsupported("vtpm needs uuid= here: libxl would make a random one at each start, and a measured launch must be fixed")
            }
            return DeviceSpec(settings, backend: XLDevices.backend(vtpm.backendDomain))
        }
    }

    public static let xenstoreOrder = 40

    /// `libxl__set_xenstore_vtpm`.
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        let (back, front) = context.commonKeys
        return XenstoreDevice(
            kind: "vtpm", context: context,
            back: back + [("handle", "\(context.devid)"), ("uuid", XenstoreTemplate(literal: uuid)), ("resume", "False")],
            front: front + [("handle", "\(context.devid)")])
    }
}

// MARK: - xl.cfg

/// A `vtpm` item (xl.cfg(5) VTPM_SPEC_STRING) as xl_parse.c fills `libxl_device_vtpm`.
public struct XLVtpmSpec: Hashable, Sendable {
    public var backendDomain: String
    /// Lowercase RFC 4122 text; nil lets libxl generate one at every boot.
    public var uuid: String?

    public init(backendDomain: String, uuid: String?) {
        self.backendDomain = backendDomain
        self.uuid = uuid
    }

    /// - Throws: `ParseError`: no `backend` ("vtpm spec missing required backend field"),
    ///   an unknown key or a bad uuid (xl exits on both), or a term without `=`, at which xl
    ///   stops reading the spec and drops the rest (domb refuses it).
    public static func parse(_ spec: String) throws(ParseError) -> XLVtpmSpec {
        var backend: String?
        var uuid: String?
        for (key, value) in try xlKeyValues(spec, what: "vtpm") {
            switch key {
            case "backend": backend = value
            case "uuid":
                guard let canonical = XenstoreUUID.canonical(value) else {
                    throw .invalid("Failed to parse vtpm UUID: \(TerminalText.escape(value))")
                }
                uuid = canonical
            default: throw .invalid("Unknown string `\(TerminalText.escape(key))' in vtpm spec")
            }
        }
        guard let backend else { throw .invalid("vtpm spec missing required backend field!") }
        return XLVtpmSpec(backendDomain: backend, uuid: uuid)
    }
}
