//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// Terms of Xen's domain configuration that the model and the libxl wrapper share.

/// How a guest is virtualised (Hyperlaunch `mode` bits 0 and 1, xl.cfg `type`).
public enum GuestType: String, Hashable, Sendable, Codable, CaseIterable {
    case pv
    case pvh
    case hvm
}

/// What happens when the guest powers off, reboots or crashes (xl.cfg `on_*`).
public enum LifecycleAction: String, Hashable, Sendable, Codable, CaseIterable {
    case destroy
    case restart
    case preserve
    case renameRestart = "rename-restart"
    case coredumpDestroy = "coredump-destroy"
    case coredumpRestart = "coredump-restart"
    case softReset = "soft-reset"
}

/// What a module is for (`module,<kind>` compatible strings).
public enum ModuleKind: String, Hashable, Sendable, Codable, CaseIterable {
    case kernel
    case ramdisk
    /// A device-tree fragment passed through to the guest (`module,device-tree`).
    case deviceTree = "device-tree"
    /// Domain configuration data (`module,config`).
    case config
    /// System firmware for HVM (hvmloader, SeaBIOS, OVMF).
    case firmware
}
