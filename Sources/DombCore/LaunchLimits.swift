//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The one table of limits of a launch: what `validate()` enforces, and what every later
/// stage (Xenstore plan, launch DTB, bundle) is sized for, so a description that validates
/// never trips a later cap. Each number says where it comes from; docs/binding.md
/// ("Limits") lists them.
public enum LaunchLimits {
    /// Domains in one launch. A boot-time system is a handful; the cap keeps the Xenstore
    /// plan of the largest launch within ``XenstoreLimits/maximumNodes`` (a test plans the
    /// heaviest domain the limits allow and multiplies).
    public static let maxDomains = 64
    /// PV devices described per domain (libxl adds at most a console and a vkb of its own).
    public static let maxDevicesPerDomain = 32
    public static let maxModulesPerDomain = 8
    /// Secrets a domain receives (`domb,secrets`): each is one TPM object loaded and
    /// unsealed before the first unpause (docs/secrets.md, "What it costs").
    public static let maxSecretsPerDomain = 16
    public static let maxCPUPools = 64
    public static let maxEventChannels = 1024
    public static let maxSharedMemoryRegions = 256
    /// Domain and cpupool names are device-tree node names and bundle path components:
    /// 1 to 31 characters (DT spec §2.2.1) of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
    public static let maxNameLength = 31
    /// Module paths and device settings (targets, scripts, bridges): each is written to one
    /// Xenstore node, so path and value together stay well under `XENSTORE_PAYLOAD_MAX`.
    public static let maxPathLength = 1024
    public static let maxSettingLength = 1024
    /// A kernel command line: Linux's x86 `COMMAND_LINE_SIZE` (2048) less the NUL.
    public static let maxBootargsLength = 2047
    /// All the text of a description together (names, paths, command lines, settings):
    /// keeps the launch DTB within `FDT.maxSize` and the Xenstore plan within a bundle's
    /// metadata cap, whatever the counts.
    public static let maxDescriptionTextBytes = 1 << 20
    /// A PV kernel's command line lives in `start_info.cmd_line[MAX_GUEST_CMDLINE]`
    /// (`xen/include/public/xen.h`, 1024 bytes with the NUL); Xen cuts anything longer.
    public static let maxPVBootargsLength = 1023
    /// `DOMID_FIRST_RESERVED` (`xen/include/public/xen.h`): domids from here up are Xen's own.
    public static let firstReservedDomid: UInt32 = 0x7FF0
    /// The largest domid a guest can have.
    public static let maxGuestDomid: UInt32 = firstReservedDomid - 1
    /// Xen's smallest useful guest, and a generous ceiling (16 TiB).
    public static let minMemoryKiB: UInt64 = 1024
    public static let maxMemoryKiB: UInt64 = 16 << 30
    /// `HVM_MAX_VCPUS` is 128; PV allows more, but a boot description this large is an error.
    public static let maxVcpus: UInt32 = 512
    public static let maxHVMVcpus: UInt32 = 128
    /// Physical CPU numbers accepted in cpupools and affinities.
    public static let maxCPU: UInt32 = 4095
    /// FIFO event channels: ports 1 ..< 2^17.
    public static let maxEventChannelPort: UInt32 = (1 << 17) - 1
    /// `xen,shm-id` holds at most 16 bytes including the NUL.
    public static let maxSharedMemoryIDLength = 15
    /// Device ids: libxl's `devid` is an int; disk numbers of the extended form reach 2^28 + 2^28 - 1.
    public static let maxDevid: UInt32 = (1 << 29) - 1
    public static let pageSize: UInt64 = 4096

    /// Is `name` usable as a domain or cpupool name: a device-tree node name, a bundle path
    /// component and a Xenstore value alike (see ``maxNameLength``)?
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maxNameLength else { return false }
        guard first != UInt8(ascii: "."), first != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// The rule of ``isValidName(_:)`` in words, for messages.
    public static let nameRule = "1 to \(maxNameLength) characters of A-Z a-z 0-9 . _ -, not starting with . or -"
}
