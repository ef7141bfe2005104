//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

extension DeviceKind {
    /// The PV console (`libxl_console.c`).
    public static let console = DeviceKind("console")
}

/// The PV console: console 0, served by xenconsoled in dom0 or by a domain with the
/// console capability. It has no settings; libxl adds it to every domain, so xl.cfg has
/// no key for it.
public struct ConsoleSettings: DeviceSettings {
    public static let kind = DeviceKind.console
    public static let settingNames: [String] = []

    public init() {}

    public init(settings: inout DeviceSettingsReader) throws(DeviceSettingError) {}

    public var namedSettings: [(name: String, value: String)] { [] }

    /// Only console 0 exists (the domain's `console` directory).
    public var fixedDevid: UInt32? { 0 }

    public func problems(in context: DeviceValidationContext) -> [LaunchProblem] {
        var problems: [LaunchProblem] = []
        if let devid = context.device.devid, devid != 0 {
            problems.append(context.problem(.deviceSetting, "only console 0 exists; devid \(devid) is not it"))
        }
        if let backend = context.backendDomain, !backend.capabilities.contains(.console) {
            problems.append(
                context.problem(.backendCapability, "console backend domain \"\(backend.name)\" lacks the console capability"))
        }
        return problems
    }

    /// Disks come first, then the console (`domcreate_launch_dm`), then vkbs and the rest.
    public static let xenstoreOrder = 10

    /// `libxl__device_console_add` with a build state (console 0).
    public func xenstoreDevice(in context: inout XenstoreDeviceContext) throws(ParseError) -> XenstoreDevice {
        XenstoreDevice(
            kind: "console", context: context,
            back: [("frontend-id", context.domid), ("online", "1"), ("state", "1"), ("protocol", "vt100")],
            front: [("backend-id", context.backendDomid)],
            roFront: [
                ("limit", "1048576"), ("type", "xenconsoled"), ("output", "pty"), ("tty", ""),
                ("port", XenstoreTemplate(XenstorePlaceholder(.consolePort, context.domain.name))),
                ("ring-ref", XenstoreTemplate(XenstorePlaceholder(.consoleRingRef, context.domain.name))),
            ],
            // xenconsoled writes its pty as soon as libxl introduces the domain (seen on
            // Xen 4.17: "/dev/pts/0" before domb's transaction) and never again for the
            // same ring, so writing libxl's "" back would leave `xl console` no pty.
            readOnlyFrontend: true, backendOwned: ["tty"])
    }

    /// libxl always adds console 0, served by dom0's xenconsoled.
    public static func libxlDefault(for domain: DomainSpec) -> DeviceSpec? { DeviceSpec(ConsoleSettings()) }
}
