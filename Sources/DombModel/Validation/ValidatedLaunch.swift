//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// A launch description that passed every rule of the model: the only input the Xenstore
/// planner, the launch-DTB encoder, the bundle builder, the measurement plan and the boot
/// accept. Made only by ``LaunchSpec/validated(images:)``, so `domb config check` and
/// `domb build` cannot judge a description differently.
public struct ValidatedLaunch: Hashable, Sendable {
    /// The description, unchanged.
    public let spec: LaunchSpec
    /// Domain names in the order they are built and started: every domain after the
    /// Xenstore domain and after the backend domains of its devices (ties in description
    /// order).
    public let startOrder: [String]
    /// Each domain's devices (in description order) with their devids and backends resolved.
    public let devices: [String: [ResolvedDevice]]
    /// Whether the module files were checked too (`config check --images`, `build`).
    public let imagesChecked: Bool

    init(spec: LaunchSpec, startOrder: [String], imagesChecked: Bool) {
        self.spec = spec
        self.startOrder = startOrder
        self.imagesChecked = imagesChecked
        var domids: [String: UInt32] = [:]
        for domain in spec.domains { domids[domain.name] = domain.domid }
        var devices: [String: [ResolvedDevice]] = [:]
        for domain in spec.domains {
            devices[domain.name] = zip(domain.devices, resolveDevids(domain.devices)).map { device, devid in
                let backendDomid: UInt32? =
                    switch device.backend {
                    case .dom0: 0
                    case .domain(let name): domids[name] ?? nil
                    }
                return ResolvedDevice(device: device, devid: devid, backendDomid: backendDomid)
            }
        }
        self.devices = devices
    }

    public var domains: [DomainSpec] { spec.domains }

    public func domain(named name: String) -> DomainSpec? { spec.domain(named: name) }

    /// The domains in ``startOrder``.
    public var domainsInStartOrder: [DomainSpec] {
        let byName = Dictionary(spec.domains.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return startOrder.compactMap { byName[$0] }
    }
}

/// A device of a validated launch with what libxl decides about it resolved.
public struct ResolvedDevice: Hashable, Sendable {
    public let device: DeviceSpec
    /// The device id (libxl's `devid`): see ``DeviceSpec/devid``.
    public let devid: UInt32
    /// The backend domain's domid when known before boot (dom0's is 0); nil when Xen
    /// assigns it at build time.
    public let backendDomid: UInt32?
}
