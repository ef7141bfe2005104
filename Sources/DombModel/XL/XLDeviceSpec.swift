//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// The parts of xl's device spec strings every kind shares: `key=value` items separated
/// by commas, and the `backend` and `devid` keys (xl_parse.c).
enum XLDeviceSpec {
    /// Splits "a=b, c=d" device specs; values may not contain commas (as in xl).
    static func split(_ item: String) -> [String] {
        item.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
    }

    /// Handles `backend=` and `devid=`; returns false for any other key.
    static func applyCommon(
        _ key: String, _ value: String, backend: inout BackendDomain, devid: inout UInt32?, line: Int, what: String
    ) throws(ParseError) -> Bool {
        switch key {
        case "backend":
            guard !value.isEmpty else { throw .invalid("line \(line): \(what) backend is empty") }
            // xl takes a domain name or domid; domid 0 is dom0.
            backend = value == "0" ? .dom0 : BackendDomain(name: value)
            return true
        case "devid":
            guard let number = UInt32(decimal: value), number <= LaunchLimits.maxDevid else {
                throw .invalid("line \(line): \(what) devid \"\(value)\" is not a number from 0 to \(LaunchLimits.maxDevid)")
            }
            devid = number
            return true
        default:
            return false
        }
    }

    /// A spec of `key=value` items whose keys are the kind's setting names (vtpm, p9, vkb,
    /// vif, vdispl). As in xl, an empty value means the default.
    static func parseKeyValues<Kind: DeviceSettings>(_ item: String, line: Int, as kind: Kind.Type) throws(ParseError) -> DeviceSpec {
        let what = kind.xlListKey ?? kind.kind.rawValue
        var backend = BackendDomain.dom0
        var devid: UInt32?
        var named: [String: String] = [:]
        for part in split(item) where !part.isEmpty {
            guard let eq = part.firstIndex(of: "=") else {
                throw .invalid("line \(line): \(what) \"\(item)\": \"\(part)\" is not key=value")
            }
            let key = String(part[..<eq]).trimmingSpaces
            let value = String(part[part.index(after: eq)...]).trimmingSpaces
            if value.isEmpty { continue }
            if try applyCommon(key, value, backend: &backend, devid: &devid, line: line, what: what) { continue }
            guard kind.settingNames.contains(key) else {
                throw .invalid(
                    "line \(line): \(what) \"\(item)\": unknown key \"\(key)\" (known: backend devid \(kind.settingNames.joined(separator: " ")))")
            }
            guard named[key] == nil else { throw .invalid("line \(line): \(what) \"\(item)\": \(key) is given twice") }
            named[key] = value
        }
        do {
            return DeviceSpec(try DeviceKinds.decode(kind, named), backend: backend, devid: devid)
        } catch {
            throw .invalid("line \(line): \(what) \"\(item)\": \(error.message)")
        }
    }
}

/// DISKSPEC (xl-disk-configuration(5)): key=value pairs, flags, and the positional
/// parameters target, format, vdev, access; `target=` takes the rest of the string.
enum XLDiskSpec {
    static func parse(_ item: String, line: Int) throws(ParseError) -> DeviceSpec {
        var backend = BackendDomain.dom0
        var devid: UInt32?
        var settings: [String: String] = [:]
        let positional = ["target", "format", "vdev", "access"]
        var nextPositional = 0
        var specification = "xen"
        var rest = Substring(item)

        func set(_ key: String, _ value: String) throws(ParseError) {
            guard settings[key] == nil else { throw .invalid("line \(line): disk \"\(item)\": \(key) is given twice") }
            if !value.isEmpty { settings[key] = value }
        }

        while !rest.isEmpty || nextPositional == 0 {
            let trimmedRest = Substring(String(rest).trimmingLeadingSpaces)
            if trimmedRest.hasPrefix("target=") {
                // Consumes the rest, commas included.
                try set("target", String(trimmedRest.dropFirst("target=".count)))
                break
            }
            let part: Substring
            if let comma = rest.firstIndex(of: ",") {
                part = rest[..<comma]
                rest = rest[rest.index(after: comma)...]
            } else {
                part = rest
                rest = ""
            }
            let token = String(part).trimmingSpaces
            if let eq = token.firstIndex(of: "=") {
                let key = String(token[..<eq])
                let value = String(token[token.index(after: eq)...])
                switch key {
                case "backend", "devid":
                    _ = try XLDeviceSpec.applyCommon(key, value, backend: &backend, devid: &devid, line: line, what: "disk")
                case "specification":
                    guard ["xen", "virtio"].contains(value) else {
                        throw .invalid("line \(line): disk \"\(item)\": specification \"\(value)\" is not xen or virtio")
                    }
                    specification = value
                case "vdev", "access", "format", "backendtype", "devtype", "script", "transport", "discard", "direct-io-safe":
                    try set(key, value)
                default:
                    throw .invalid("line \(line): disk \"\(item)\": unknown key \"\(key)\"")
                }
            } else {
                switch token {
                case "cdrom": try set("devtype", "cdrom")
                case "discard": try set("discard", "1")
                case "no-discard": try set("discard", "0")
                case "direct-io-safe": try set("direct-io-safe", "1")
                default:
                    guard nextPositional < positional.count else {
                        throw .invalid("line \(line): disk \"\(item)\": too many positional parameters at \"\(token)\"")
                    }
                    var value = token
                    let key = positional[nextPositional]
                    nextPositional += 1
                    if key == "target" {
                        value = stripDeprecatedPrefix(value, settings: &settings)
                        // Deprecated "target,vdev,access" form after a prefix: no format slot.
                        if settings["format"] != nil || settings["backendtype"] != nil { nextPositional += 1 }
                    }
                    if key == "vdev", value.hasSuffix(":cdrom") {
                        value = String(value.dropLast(":cdrom".count))
                        try set("devtype", "cdrom")
                    } else if key == "vdev", value.hasSuffix(":disk") {
                        value = String(value.dropLast(":disk".count))
                    }
                    if key == "target", settings["target"] != nil {
                        throw .invalid("line \(line): disk \"\(item)\": target is given twice")
                    }
                    if !value.isEmpty { settings[key] = value }
                }
            }
            if rest.isEmpty { break }
        }
        let kind: any DeviceSettings.Type
        if specification == "virtio" {
            if settings["devtype"] == "cdrom" {
                throw .invalid("line \(line): disk \"\(item)\": a virtio disk cannot be a cdrom")
            }
            settings["devtype"] = nil
            kind = VirtioDiskSettings.self
        } else {
            if let transport = settings["transport"] {
                throw .invalid("line \(line): disk \"\(item)\": transport \(transport) is only for specification=virtio")
            }
            kind = VbdSettings.self
        }
        do {
            return DeviceSpec(try DeviceKinds.decode(kind, settings), backend: backend, devid: devid)
        } catch {
            throw .invalid("line \(line): disk \"\(item)\": \(error.message)")
        }
    }

    /// Handles the deprecated `phy:`, `file:`, `tap:aio:`, `raw:`… prefixes of a disk target.
    static func stripDeprecatedPrefix(_ target: String, settings: inout [String: String]) -> String {
        var value = Substring(target)
        let formats = DiskFormat.allCases.map(\.rawValue)
        for _ in 0..<3 {
            guard let colon = value.firstIndex(of: ":") else { break }
            let prefix = String(value[..<colon])
            if prefix == "phy" {
                settings["backendtype"] = "phy"
            } else if prefix == "file" || prefix == "aio" || prefix == "tap" || prefix == "tap2" {
                settings["backendtype"] = "qdisk"
            } else if formats.contains(prefix) {
                settings["format"] = prefix
            } else {
                break
            }
            value = value[value.index(after: colon)...]
        }
        return String(value)
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
        return String(scalars)
    }

    var trimmingLeadingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" })
    }
}
