//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// What a kind's validation rules see: the device, its domain, its backend domain (nil
/// for dom0) and the launch.
public struct DeviceValidationContext {
    public let device: DeviceSpec
    public let domain: DomainSpec
    /// The backend domain, when it is a domain of the launch (nil: dom0, or unknown).
    public let backendDomain: DomainSpec?
    public let launch: LaunchSpec
    /// How problems name the device: `domain "web" vif 0`.
    public let subject: String

    /// A problem about this device.
    public func problem(_ rule: LaunchProblem.Rule, _ message: String) -> LaunchProblem {
        LaunchProblem(subject, domain: domain.name, rule, message)
    }
}

extension DeviceSettings {
    /// Whether a static-mode launch (no dom0 after boot) may leave this kind on dom0:
    /// only the console, which Xen's own console serves.
    static var staticModeAllowsDom0Backend: Bool { kind == .console }

    /// Whether a backend of this kind outside dom0 needs a driver domain: vif and vbd
    /// backends there are set up by `xl devd` (hotplug scripts, QEMU for qdisk), which keeps
    /// its state in the `libxl` directory libxl makes only for driver domains.
    static var backendNeedsDriverDomain: Bool { kind == .vif || kind == .vbd }
}

/// Device ids as libxl assigns them: a kind's fixed devid (a disk's vdev number, console
/// 0), else the given one, else the next one of its kind counting up from the largest
/// given devid of that kind. The one place devids are decided.
func resolveDevids(_ devices: [DeviceSpec]) -> [UInt32] {
    var next: [DeviceKind: UInt32] = [:]
    for device in devices {
        if let devid = device.devid, devid < LaunchLimits.maxDevid { next[device.kind] = max(next[device.kind] ?? 0, devid + 1) }
    }
    return devices.map { device in
        if let fixed = device.settings.fixedDevid { return fixed }
        if let devid = device.devid { return devid }
        let devid = next[device.kind] ?? 0
        next[device.kind] = devid + 1
        return devid
    }
}

extension LaunchValidator {
    mutating func checkDevices() {
        var macs: [MACAddress: String] = [:]
        for domain in spec.domains {
            var devids: [DeviceKind: Set<UInt32>] = [:]
            var disks: [UInt32: String] = [:]
            var indexByKind: [DeviceKind: Int] = [:]
            let resolved = resolveDevids(domain.devices)
            for (device, devid) in zip(domain.devices, resolved) {
                let index = indexByKind[device.kind, default: 0]
                indexByKind[device.kind] = index + 1
                let subject = "domain \"\(domain.name)\" \(device.kind) \(index)"
                checkDevice(device, of: domain, subject: subject)
                if !devids[device.kind, default: []].insert(devid).inserted {
                    add(subject, domain: domain.name, .duplicateDevice, "devid \(devid) is used twice for \(device.kind)")
                }
                for identity in device.settings.identities {
                    switch identity {
                    case .mac(let mac):
                        if let other = macs[mac] {
                            add(subject, domain: domain.name, .duplicateDevice, "mac \(mac) is also used by \(other)")
                        } else {
                            macs[mac] = subject
                        }
                    case .disk(let number):
                        if let other = disks[number] {
                            add(subject, domain: domain.name, .duplicateDevice, "this disk (device number \(number)) is also \(other)")
                        } else {
                            disks[number] = subject
                        }
                    }
                }
            }
        }
    }

    mutating func checkDevice(_ device: DeviceSpec, of domain: DomainSpec, subject: String) {
        let name = domain.name
        for (setting, value) in device.settings.namedSettings
        where value.utf8.count > LaunchLimits.maxSettingLength || value.utf8.contains(0) {
            add(subject, domain: name, .deviceSetting, "setting \"\(setting)\" is longer than \(LaunchLimits.maxSettingLength) bytes or holds a NUL")
        }
        if let devid = device.devid {
            if devid > LaunchLimits.maxDevid {
                add(subject, domain: name, .deviceSetting, "devid \(devid) is above \(LaunchLimits.maxDevid)")
            } else if let fixed = device.settings.fixedDevid, fixed != devid {
                add(subject, domain: name, .deviceSetting, "devid \(devid) is not this device's own devid \(fixed); leave devid out")
            }
        }

        var backendDomain: DomainSpec?
        switch device.backend {
        case .dom0:
            if spec.staticMode && !type(of: device.settings).staticModeAllowsDom0Backend {
                add(subject, domain: name, .backendCapability, "static mode has no dom0 to run this backend; name a driver domain")
            }
        case .domain(let backendName):
            if backendName == domain.name {
                add(subject, domain: name, .unknownBackend, "a domain cannot be its own backend")
            } else if let backend = domainsByName[backendName] {
                backendDomain = backend
                if backend.enhanced == .disabled || backend.enhanced == .noXenstore {
                    add(
                        subject, domain: name, .backendCapability,
                        "backend domain \"\(backend.name)\" has xen,enhanced \"\(backend.enhanced?.rawValue ?? "")\" and cannot reach Xenstore")
                }
                if !backend.startOnBoot {
                    add(subject, domain: name, .backendCapability, "backend domain \"\(backend.name)\" does not start on boot")
                }
                if type(of: device.settings).backendNeedsDriverDomain && !backend.isDriverDomain {
                    add(
                        subject, domain: name, .backendCapability,
                        "backend domain \"\(backend.name)\" is not a driver domain: set domb,driver-domain (xl.cfg driver_domain=1) so that xl devd in it can keep its state under /local/domain/<id>/libxl")
                }
            } else {
                add(
                    subject, domain: name, .unknownBackend,
                    "backend domain \"\(backendName)\" is not described (dom0 is \(BackendDomain.dom0Name), or no backend at all)")
            }
        }
        if domain.enhanced == .disabled || domain.enhanced == .noXenstore {
            add(
                subject, domain: name, .backendCapability,
                "PV devices need Xenstore, but the domain has xen,enhanced \"\(domain.enhanced?.rawValue ?? "")\"")
        }
        let context = DeviceValidationContext(device: device, domain: domain, backendDomain: backendDomain, launch: spec, subject: subject)
        problems += device.settings.problems(in: context)
    }

    /// The dependency graph must be acyclic: a domain's backends and the Xenstore domain
    /// start before it.
    mutating func checkDependencyCycles() {
        for cycle in DependencyGraph(spec).cycles {
            guard let first = cycle.first else { continue }
            add(
                "domain \"\(first)\"", domain: first, .backendCycle,
                "backend dependencies form a cycle: \(cycle.map { "\"\($0)\"" }.joined(separator: " → "))")
        }
    }
}
