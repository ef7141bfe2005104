//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

/// The name of a kind of PV device: the model's and the JSON form's `kind`, the
/// device-tree compatible `domb,<name>` and node name `<name>-<index>`. Each kind's file
/// declares its own constant (`DeviceKind.vif` in Vif.swift, …).
public struct DeviceKind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

/// The domain that runs a device's backend: dom0, or a domain of the launch (a driver
/// domain). The model has one spelling for dom0; front ends map theirs onto it (xl's
/// `backend=0` and `backend=Domain-0`, a device node without a backend property).
public enum BackendDomain: Hashable, Sendable, CustomStringConvertible, Codable, ExpressibleByStringLiteral {
    case dom0
    case domain(String)

    /// How xl, libxl and domb's JSON form name dom0.
    public static let dom0Name = "Domain-0"

    /// `Domain-0` is dom0; any other name is a domain of the launch.
    public init(name: String) { self = name == Self.dom0Name ? .dom0 : .domain(name) }

    public init(stringLiteral name: String) { self.init(name: name) }

    public var name: String {
        switch self {
        case .dom0: Self.dom0Name
        case .domain(let name): name
        }
    }

    public var description: String { name }

    public init(from decoder: any Decoder) throws {
        self.init(name: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// A PV device of a domain: the domain that runs its backend, its device id, and the typed
/// settings of its kind. Everything about one kind — settings, xl.cfg spec parsing, the
/// device-tree form, validation rules and Xenstore layout — lives in that kind's file
/// under Devices/ (docs/architecture.md).
public struct DeviceSpec: Hashable, Sendable {
    public var backend: BackendDomain
    /// Device id; nil means assigned as libxl does (in order per kind; a disk's is its vdev's number).
    public var devid: UInt32?
    /// The typed settings; their type is the device's kind.
    public var settings: any DeviceSettings

    public var kind: DeviceKind { type(of: settings).kind }

    public init(_ settings: any DeviceSettings, backend: BackendDomain = .dom0, devid: UInt32? = nil) {
        self.settings = settings
        self.backend = backend
        self.devid = devid
    }

    /// A device from settings named as in xl.cfg (the form device trees and the JSON
    /// model carry).
    /// - Throws: ``DeviceSettingError`` for an unknown kind, an unknown setting or a bad value.
    public init(
        kind: DeviceKind, backend: BackendDomain = .dom0, devid: UInt32? = nil, settings named: [String: String] = [:]
    ) throws(DeviceSettingError) {
        guard let type = DeviceKinds.named(kind.rawValue) else {
            throw DeviceSettingError("unknown device kind \"\(kind)\" (known: \(DeviceKinds.names.joined(separator: ", ")))")
        }
        let settings = try DeviceKinds.decode(type, named)
        self.settings = settings
        self.backend = backend
        self.devid = devid
    }

    /// The settings of this device, if it is of kind `T`.
    public func settings<T: DeviceSettings>(as type: T.Type) -> T? { settings as? T }

    public static func == (lhs: DeviceSpec, rhs: DeviceSpec) -> Bool {
        lhs.backend == rhs.backend && lhs.devid == rhs.devid && lhs.settings.isEqual(to: rhs.settings)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(backend)
        hasher.combine(devid)
        hasher.combine(kind)
        settings.hash(into: &hasher)
    }
}

extension DeviceSpec: Codable {
    private enum CodingKeys: String, CodingKey {
        case kind, backend, devid, settings
    }

    /// `{"kind": "vif", "backend": "Domain-0", "devid": 0, "settings": {"mac": "…"}}`: the
    /// settings named and written as in the device-tree form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(DeviceKind.self, forKey: .kind)
        let backend = try container.decodeIfPresent(BackendDomain.self, forKey: .backend) ?? .dom0
        let devid = try container.decodeIfPresent(UInt32.self, forKey: .devid)
        let named = try container.decodeIfPresent([String: String].self, forKey: .settings) ?? [:]
        do {
            try self.init(kind: kind, backend: backend, devid: devid, settings: named)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .settings, in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(backend, forKey: .backend)
        try container.encodeIfPresent(devid, forKey: .devid)
        var named: [String: String] = [:]
        for (name, value) in settings.namedSettings { named[name] = value }
        try container.encode(named, forKey: .settings)
    }
}

/// The typed settings of one kind of PV device, and everything domb knows about the kind.
///
/// A kind is one file under Devices/ plus one line in ``DeviceKinds/all``: its settings
/// (named as in xl.cfg), their xl.cfg spec parsing, the device-tree and JSON form (the
/// named settings as string properties), validation rules, and the Xenstore entries
/// libxl 4.17 writes for it.
public protocol DeviceSettings: Hashable, Sendable {
    /// The kind's name.
    static var kind: DeviceKind { get }
    /// The settings the kind takes, by their xl.cfg names (also the device-tree property
    /// names and the JSON `settings` keys).
    static var settingNames: [String] { get }
    /// Reads named settings, taking what the kind knows; ``DeviceSettings/decode(_:)``
    /// refuses what is left.
    /// - Throws: ``DeviceSettingError`` naming the setting and the value it takes.
    init(settings: inout DeviceSettingsReader) throws(DeviceSettingError)
    /// The settings by name, in ``settingNames`` order, each value as ``init(settings:)``
    /// reads it back (defaults the kind fills in are written out: the canonical form).
    var namedSettings: [(name: String, value: String)] { get }

    /// The xl.cfg list this kind is read from (`vif`, `disk`, `vtpm`, …), if any.
    static var xlListKey: String? { get }
    /// The devices of the items of ``xlListKey``, each read as xl 4.17 reads it (xl_parse.c;
    /// DISKSPECs and vif rates by libxlutil, through `xl`); what the kind cannot carry is refused.
    /// - Throws: `ParseError` naming the item at fault (the importer adds the key and line).
    static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec]

    /// The device id the settings fix (a disk's is the number of its vdev), if any.
    var fixedDevid: UInt32? { get }
    /// What must be unique about the device (a MAC address in the launch, a disk in its domain).
    var identities: [DeviceIdentity] { get }
    /// The kind's own validation rules; the common ones (backend known and reachable,
    /// devids unique) are checked for every kind by the validator.
    func problems(in context: DeviceValidationContext) -> [LaunchProblem]

    /// Where the kind comes in libxl's device order (`libxl__device_type_tbl` and the
    /// console, vkb and disk steps of `domcreate_*`), which is the Xenstore plan's order.
    static var xenstoreOrder: Int { get }
    /// The device as libxl 4.17 writes it to Xenstore. Called only for a validated launch.
    func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice
    /// The device libxl adds to a domain that describes none of this kind (console 0, an
    /// HVM guest's vkb), if any.
    static func libxlDefault(for domain: DomainSpec) -> DeviceSpec?
}

extension DeviceSettings {
    public static var xlListKey: String? { nil }
    public static func parseXL(_ items: [String], xl: XLUtilConfig) throws(ParseError) -> [DeviceSpec] {
        throw .unsupported("\(kind) devices are not read from xl.cfg")
    }
    public var fixedDevid: UInt32? { nil }
    public var identities: [DeviceIdentity] { [] }
    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] { [] }
    public static func libxlDefault(for domain: DomainSpec) -> DeviceSpec? { nil }

    /// Reads named settings and refuses any the kind does not take.
    public static func decode(_ named: [String: String]) throws(DeviceSettingError) -> Self {
        var reader = DeviceSettingsReader(named)
        let settings = try Self(settings: &reader)
        try reader.finish(kind: kind, known: settingNames)
        return settings
    }

    func isEqual(to other: any DeviceSettings) -> Bool { (other as? Self) == self }
}

/// Every device kind, in the order docs and messages list them. Adding a kind is its file
/// under Devices/ and one line here.
public enum DeviceKinds {
    public static let all: [any DeviceSettings.Type] = [
        ConsoleSettings.self, VifSettings.self, VbdSettings.self, VkbdSettings.self, P9Settings.self,
        VtpmSettings.self, VirtioDiskSettings.self, VirtioNetSettings.self, VdisplSettings.self,
    ]

    /// The kinds' names.
    public static var names: [String] { all.map { $0.kind.rawValue } }

    public static func named(_ name: String) -> (any DeviceSettings.Type)? {
        all.first { $0.kind.rawValue == name }
    }

    /// ``DeviceSettings/decode(_:)`` of a kind known only at run time.
    public static func decode(_ kind: any DeviceSettings.Type, _ named: [String: String]) throws(DeviceSettingError) -> any DeviceSettings {
        try decodeAs(kind, named)
    }

    private static func decodeAs<Kind: DeviceSettings>(_ kind: Kind.Type, _ named: [String: String]) throws(DeviceSettingError) -> any DeviceSettings {
        try Kind.decode(named)
    }

    /// Kinds in libxl's order of adding devices.
    public static var xenstoreOrder: [any DeviceSettings.Type] {
        all.enumerated().sorted { ($0.element.xenstoreOrder, $0.offset) < ($1.element.xenstoreOrder, $1.offset) }.map(\.element)
    }
}

/// Something about a device that must not repeat.
public enum DeviceIdentity: Hashable, Sendable {
    /// A MAC address: unique in the whole launch.
    case mac(MACAddress)
    /// A virtual disk's number: unique in its domain (`xvda` and `d0p0` are the same disk).
    case disk(number: UInt32)
}

/// A setting that is unknown or holds a value its kind does not take.
public struct DeviceSettingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The setting at fault, by its xl.cfg name.
    public var setting: String?
    public var message: String

    public init(_ message: String, setting: String? = nil) {
        self.message = message
        self.setting = setting
    }

    public var description: String { message }
}

/// Named settings being read by a kind: `take` each known one, then ``finish(kind:known:)``
/// refuses whatever is left.
public struct DeviceSettingsReader {
    private var remaining: [String: String]

    public init(_ named: [String: String]) { self.remaining = named }

    /// The value of `name`, if given.
    public mutating func take(_ name: String) -> String? { remaining.removeValue(forKey: name) }

    /// The value of `name` parsed by `parse`; `expected` says what it must be.
    public mutating func take<T>(_ name: String, expected: String, _ parse: (String) -> T?) throws(DeviceSettingError) -> T? {
        guard let text = take(name) else { return nil }
        guard let value = parse(text) else {
            throw DeviceSettingError("\(name) \"\(text)\" is not \(expected)", setting: name)
        }
        return value
    }

    /// A value of a closed set (`RawRepresentable` by its xl.cfg spelling).
    public mutating func take<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws(DeviceSettingError) -> T?
    where T.RawValue == String {
        try take(name, expected: T.allCases.map(\.rawValue).joined(separator: ", ")) { T(rawValue: $0) }
    }

    /// A flag written `0` or `1` (as libxl writes booleans).
    public mutating func takeFlag(_ name: String) throws(DeviceSettingError) -> Bool? {
        try take(name, expected: "0 or 1") { $0 == "1" ? true : $0 == "0" ? false : nil }
    }

    /// A decimal number.
    public mutating func takeNumber(_ name: String, in range: ClosedRange<UInt32> = 0...UInt32.max) throws(DeviceSettingError) -> UInt32? {
        try take(name, expected: "a number from \(range.lowerBound) to \(range.upperBound)") { text in
            UInt32(decimal: text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    /// A setting that must be given.
    public mutating func require(_ name: String, kind: DeviceKind) throws(DeviceSettingError) -> String {
        guard let value = take(name), !value.isEmpty else {
            throw DeviceSettingError("a \(kind) needs \(name)", setting: name)
        }
        return value
    }

    /// Refuses the settings no `take` asked for.
    public mutating func finish(kind: DeviceKind, known: [String]) throws(DeviceSettingError) {
        if let unknown = remaining.keys.sorted().first {
            throw DeviceSettingError(
                "unknown setting \"\(unknown)\" for a \(kind) (settings: \(known.joined(separator: " ")))", setting: unknown)
        }
    }
}

extension UInt32 {
    /// Plain decimal digits only (no sign, no spaces), as a device setting is written.
    init?(decimal text: String) {
        guard !text.isEmpty, text.utf8.count <= 10, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        guard let value = UInt32(text) else { return nil }
        self = value
    }
}

extension UInt64 {
    /// Decimal, or hexadecimal after `0x` (libxl's `base=` and `irq=`).
    init?(decimalOrHex text: String) {
        let lower = text.lowercased()
        let digits = lower.hasPrefix("0x") ? lower.dropFirst(2) : Substring(lower)
        let radix = lower.hasPrefix("0x") ? 16 : 10
        guard !digits.isEmpty, digits.count <= 20,
            digits.utf8.allSatisfy({ ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || (radix == 16 && $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }),
            let value = UInt64(digits, radix: radix)
        else { return nil }
        self = value
    }
}
