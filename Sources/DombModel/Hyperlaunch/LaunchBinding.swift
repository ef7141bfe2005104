//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// Bit values of the Hyperlaunch binding spellings (docs/binding.md, "Spellings").
public enum HyperlaunchBits {
    // `mode` (merged design doc and the x86 code series).
    public static let modeParavirtualized: UInt32 = 1 << 0
    public static let modeEnableDeviceModel: UInt32 = 1 << 1
    public static let modeLong: UInt32 = 1 << 2
    /// The code series' BUILD_MODE_START_ON_BOOT: accepted, never emitted (`domb,paused` is).
    public static let modeStartOnBoot: UInt32 = 1 << 3

    // Merged design doc: `permissions` and `functions` (the canonical form).
    public static let permissionControl: UInt32 = 1 << 0
    public static let permissionHardware: UInt32 = 1 << 1
    public static let functionBoot: UInt32 = 1 << 0
    public static let functionCrash: UInt32 = 1 << 1
    public static let functionConsole: UInt32 = 1 << 2
    public static let functionXenstore: UInt32 = 1 << 30
    public static let functionLegacyDom0: UInt32 = 1 << 31

    // 2023 revision: `role` and `capability`.
    public static let roleUnbounded: UInt32 = 1 << 0
    public static let roleControl: UInt32 = 1 << 1
    public static let roleHardware: UInt32 = 1 << 2
    public static let roleXenstore: UInt32 = 1 << 3
    public static let capabilityConsoleIO: UInt32 = 1 << 0

    // Code series and dom0less (Xen 4.21 bootfdt.h): `capabilities`.
    public static let capsControl: UInt32 = 1 << 0
    public static let capsHardware: UInt32 = 1 << 1
    public static let capsXenstore: UInt32 = 1 << 2
}

/// Compatible strings and property names of the canonical form.
public enum LaunchBinding {
    public static let hypervisorCompatible = ["hypervisor,xen", "xen,x86"]
    public static let domainCompatible = "xen,domain"
    public static let cpupoolCompatible = "xen,cpupool"
    public static let configCompatible = "xen,config"
    public static let evtchnCompatible = "xen,evtchn-v1"
    public static let sharedMemoryCompatible = "xen,domain-shared-memory-v1"
    /// Arm dom0less vCPU nodes (`id`, `hard-affinity`), read into the domain's CPU affinity.
    public static let vcpuCompatible = "xen,vcpu"
    /// PV device extension nodes: `domb,<kind>` for every kind in ``DeviceKinds/all``.
    public static func deviceCompatible(_ kind: DeviceKind) -> String { "domb,\(kind.rawValue)" }
    /// Module nodes: `module,<kind>` plus `multiboot,module`.
    public static func moduleCompatible(_ kind: ModuleKind) -> [String] { ["module,\(kind.rawValue)", "multiboot,module"] }

    /// Node-level properties of a device node that are not settings.
    static let deviceReserved: Set<String> = ["compatible", "backend-domain", "backend-name", "devid", "phandle", "linux,phandle"]
}
