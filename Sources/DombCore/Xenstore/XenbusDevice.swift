//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// `XenbusState` (xen/include/public/io/xenbus.h): the state each end of a PV device
/// publishes in its `state` node.
public enum XenbusState: Int, Hashable, Sendable, CustomStringConvertible {
    case unknown = 0
    case initialising = 1
    /// The backend found its configuration and waits for hotplug and the frontend.
    case initWait = 2
    case initialised = 3
    case connected = 4
    case closing = 5
    case closed = 6
    case reconfiguring = 7
    case reconfigured = 8

    /// The state a `state` node's text names; nil for anything else.
    public init?(text: String) {
        guard let number = Int(text) else { return nil }
        self.init(rawValue: number)
    }

    public var description: String {
        let names = [
            "Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing", "Closed", "Reconfiguring",
            "Reconfigured",
        ]
        return "\(rawValue) (\(names[rawValue]))"
    }
}

/// One PV device of a resolved plan: where its two ends live and what the backend domain's
/// toolstack runs for it. Read from the copy libxl keeps of every device under
/// `/libxl/<domid>/device/<kind>/<devid>` (`libxl__device_generic_add`), which is also what
/// `libxl_domain_destroy` reads to take the devices down.
public struct XenbusDevice: Hashable, Sendable, CustomStringConvertible {
    /// The frontend domain's name.
    public var domain: String
    public var domid: UInt32
    /// Frontend kind (`vbd`, `vif`, `console`, ...).
    public var kind: String
    public var devid: UInt32
    public var frontendPath: String
    public var backendPath: String
    public var backendDomid: UInt32
    /// Backend kind (`vbd`, `qdisk`, `vif`, `console`, ...).
    public var backendKind: String
    /// The backend keys the plan writes (`script`, `dev`, `type`, `gatewaydev`, ...).
    public var backendKeys: [String: String]

    public init(
        domain: String, domid: UInt32, kind: String, devid: UInt32, frontendPath: String, backendPath: String,
        backendDomid: UInt32, backendKind: String, backendKeys: [String: String] = [:]
    ) {
        self.domain = domain
        self.domid = domid
        self.kind = kind
        self.devid = devid
        self.frontendPath = frontendPath
        self.backendPath = backendPath
        self.backendDomid = backendDomid
        self.backendKind = backendKind
        self.backendKeys = backendKeys
    }

    /// Console 0 is served by xenconsoled from `console/ring-ref` and `port` alone: neither
    /// end moves through `XenbusState`s.
    public var usesXenbusStates: Bool { !(kind == "console" && devid == 0) }

    /// The hotplug script the backend domain's toolstack runs once the backend waits
    /// (libxl_linux.c `libxl__get_hotplug_script_info`: vbd and vif backends, with the
    /// backend's `script` key).
    public var hotplugScript: String? {
        backendKind == "vbd" || backendKind == "vif" ? backendKeys["script"] : nil
    }

    /// `vbd 51712 (xvda) of web`.
    public var description: String {
        "\(kind) \(devid)\(backendKeys["dev"].map { " (\($0))" } ?? "") of \(domain)"
    }
}

extension XenstoreResolvedPlan {
    /// Every device the plan writes, in plan order (backend domains' devices first).
    public var devices: [XenbusDevice] {
        var names: [UInt32: String] = [:]
        for introduction in introductions { names[introduction.domid] = introduction.domain }
        var values: [String: String] = [:]
        // The keys directly below each directory, for the backends' keys.
        var children: [String: [String: String]] = [:]
        for node in nodes {
            values[node.path] = node.value
            if let parent = XenstorePath.parent(of: node.path), parent != "/" {
                children[parent, default: [:]][String(node.path.dropFirst(parent.count + 1))] = node.value
            }
        }
        var result: [XenbusDevice] = []
        for node in nodes {
            // /libxl/<domid>/device/<kind>/<devid>/backend
            let parts = node.path.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 7, parts[1] == "libxl", parts[3] == "device", parts[6] == "backend",
                let domid = UInt32(parts[2]), let devid = UInt32(parts[5]), let domain = names[domid],
                let frontend = values["/libxl/\(domid)/device/\(parts[4])/\(devid)/frontend"]
            else { continue }
            // /local/domain/<backend domid>/backend/<backend kind>/<domid>/<devid>
            let backend = node.value.split(separator: "/", omittingEmptySubsequences: false)
            guard backend.count == 8, backend[1] == "local", backend[2] == "domain", backend[4] == "backend",
                let backendDomid = UInt32(backend[3])
            else { continue }
            result.append(
                XenbusDevice(
                    domain: domain, domid: domid, kind: String(parts[4]), devid: devid, frontendPath: frontend,
                    backendPath: node.value, backendDomid: backendDomid, backendKind: String(backend[5]),
                    backendKeys: children[node.value] ?? [:]))
        }
        return result
    }
}
