//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil

/// The device lists of an xl.cfg file: each kind with an xl.cfg list (``DeviceSettings/xlListKey``)
/// reads its items the way xl 4.17 does (its own file under Devices/), in the order of
/// ``DeviceKinds/all``; what the model cannot carry is refused with the key and line.
enum XLDevices {
    static func `import`(_ reader: inout XLReader) throws(ParseError) -> [DeviceSpec] {
        // libxl always gives a guest console 0.
        var devices = [DeviceSpec(ConsoleSettings())]
        for kind in DeviceKinds.all {
            guard let key = kind.xlListKey, let (items, line) = try reader.strings(key) else { continue }
            do {
                devices += try kind.parseXL(items, xl: reader.config)
            } catch {
                throw ParseError(error.code, "line \(line): \(key): \(error.reason)")
            }
        }
        return devices
    }

    /// Runs `body` on each item, putting the item in front of what it throws.
    static func eachItem<T>(_ items: [String], _ body: (Int, String) throws(ParseError) -> T) throws(ParseError) -> [T] {
        var results: [T] = []
        for (index, item) in items.enumerated() {
            do {
                results.append(try body(index, item))
            } catch {
                throw ParseError(error.code, "\"\(TerminalText.escape(item))\": \(error.reason)")
            }
        }
        return results
    }

    /// xl passes `backend=` through as a name; libxl takes all digits as a domid, so `0`
    /// is dom0, as `Domain-0` is.
    static func backend(_ name: String?) -> BackendDomain {
        guard let name, name != "0" else { return .dom0 }
        return BackendDomain(name: name)
    }
}
