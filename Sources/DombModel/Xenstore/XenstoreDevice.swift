//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// One device as libxl 4.17 writes it: the `back`, `front` and `ro_front` arrays a kind's
/// `set_xenstore_config` fills, which `libxl__device_generic_add` then writes. Each kind
/// builds its own in ``DeviceSettings/xenstoreDevice(in:)``.
public struct XenstoreDevice: Sendable {
    /// Frontend kind (`vif`, `vbd`, `console`, `vkbd`, `9pfs`, `vtpm`, `virtio_disk`, `virtio`, `vdispl`).
    public var kind: String
    /// Backend kind (`qdisk` for qdisk disks, `vinput` for Linux vkb backends).
    public var backendKind: String
    public var devid: UInt32
    public var backendDomid: XenstoreTemplate
    /// Keys in the order libxl appends them to its `back`, `front` and `ro_front` arrays.
    public var back: [(String, XenstoreTemplate)]
    public var front: [(String, XenstoreTemplate)]
    public var roFront: [(String, XenstoreTemplate)]
    /// Console 0: the frontend directory belongs to the backend (XSA-175).
    public var readOnlyFrontend: Bool
    /// Read-only frontend keys the backend daemon writes once the domain exists; the plan
    /// never overwrites them (``XenstorePlan/Node/keep``).
    public var backendOwned: Set<String>

    public init(
        kind: String, backendKind: String? = nil, context: XenstoreDeviceContext, back: [(String, XenstoreTemplate)],
        front: [(String, XenstoreTemplate)], roFront: [(String, XenstoreTemplate)] = [], readOnlyFrontend: Bool = false,
        backendOwned: Set<String> = []
    ) {
        self.kind = kind
        self.backendKind = backendKind ?? kind
        self.devid = context.devid
        self.backendDomid = context.backendDomid
        self.back = back
        self.front = front
        self.roFront = roFront
        self.readOnlyFrontend = readOnlyFrontend
        self.backendOwned = backendOwned
    }
}

/// What a kind needs to lay out one device: the domain, the resolved backend and devid,
/// the host's script directory and default bridge, and the virtio-mmio address allocator.
public struct XenstoreDeviceContext: Sendable {
    public let domain: DomainSpec
    /// The frontend domain's domid: fixed, or a placeholder filled in at boot.
    public let domid: XenstoreTemplate
    public let backend: BackendDomain
    public let backendDomid: XenstoreTemplate
    public let devid: UInt32
    /// libxl's `XEN_SCRIPT_DIR` (`/etc/xen/scripts` on Debian).
    public let scriptDirectory: String
    /// The bridge of a vif that names none.
    public let defaultBridge: String
    /// Where libxl places virtio-mmio devices that do not say.
    public var virtioMMIO: VirtioMMIOAllocator

    /// The keys every device's backend and frontend start with (`libxl__device_add_async`:
    /// frontend-id, online, state; backend-id, state).
    public var commonKeys: (back: [(String, XenstoreTemplate)], front: [(String, XenstoreTemplate)]) {
        ([("frontend-id", domid), ("online", "1"), ("state", "1")], [("backend-id", backendDomid), ("state", "1")])
    }

    /// `libxl__abs_path(script, XEN_SCRIPT_DIR)`.
    public func scriptPath(_ script: String) -> String {
        script.hasPrefix("/") ? script : "\(scriptDirectory)/\(script)"
    }
}

/// libxl's placement of virtio-mmio devices on the Arm guest layout
/// (`xen/include/public/arch-arm.h`): each device a 0x200-byte window from
/// `GUEST_VIRTIO_MMIO_BASE` and the next SPI from `GUEST_VIRTIO_MMIO_SPI_FIRST`.
public struct VirtioMMIOAllocator: Sendable {
    public static let base: UInt64 = 0x0200_0000
    public static let deviceSize: UInt64 = 0x200
    public static let firstSPI: UInt32 = 33

    var nextBase = base
    var nextIRQ = firstSPI

    /// The window and interrupt of a device: the ones it gives, else the next free ones.
    public mutating func place(base: UInt64?, irq: UInt32?) -> (base: UInt64, irq: UInt32) {
        let placedBase: UInt64
        if let base {
            placedBase = base
        } else {
            placedBase = nextBase
            nextBase += Self.deviceSize
        }
        let placedIRQ: UInt32
        if let irq {
            placedIRQ = irq
        } else {
            placedIRQ = nextIRQ
            nextIRQ += 1
        }
        return (placedBase, placedIRQ)
    }
}
