//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The `eventType` of a TCG event log record (TCG PC Client Platform Firmware Profile
/// 1.05/1.06, §10.4.1 "Event Types"; EFI types from the TCG EFI Platform Specification).
///
/// The event type is **not** covered by any digest: a log can retype a genuine event
/// without changing a PCR. Treat it as a claim until a verifier has checked it against
/// what it expects.
public struct EventType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let prebootCert = EventType(rawValue: 0x0000_0000)
    public static let postCode = EventType(rawValue: 0x0000_0001)
    public static let unused = EventType(rawValue: 0x0000_0002)
    /// Never extended into a PCR (SpecID, StartupLocality, SP800-155, NvIndex records).
    public static let noAction = EventType(rawValue: 0x0000_0003)
    public static let separator = EventType(rawValue: 0x0000_0004)
    public static let action = EventType(rawValue: 0x0000_0005)
    /// Payload is a `TCG_PCClientTaggedEvent` (PFP §10.4.2.1).
    public static let eventTag = EventType(rawValue: 0x0000_0006)
    public static let sCRTMContents = EventType(rawValue: 0x0000_0007)
    public static let sCRTMVersion = EventType(rawValue: 0x0000_0008)
    public static let cpuMicrocode = EventType(rawValue: 0x0000_0009)
    public static let platformConfigFlags = EventType(rawValue: 0x0000_000A)
    public static let tableOfDevices = EventType(rawValue: 0x0000_000B)
    public static let compactHash = EventType(rawValue: 0x0000_000C)
    public static let ipl = EventType(rawValue: 0x0000_000D)
    public static let iplPartitionData = EventType(rawValue: 0x0000_000E)
    public static let nonhostCode = EventType(rawValue: 0x0000_000F)
    public static let nonhostConfig = EventType(rawValue: 0x0000_0010)
    public static let nonhostInfo = EventType(rawValue: 0x0000_0011)
    public static let omitBootDeviceEvents = EventType(rawValue: 0x0000_0012)
    /// PFP 1.06 r52.
    public static let postCode2 = EventType(rawValue: 0x0000_0013)

    public static let efiEventBase: UInt32 = 0x8000_0000
    public static let efiVariableDriverConfig = EventType(rawValue: 0x8000_0001)
    public static let efiVariableBoot = EventType(rawValue: 0x8000_0002)
    public static let efiBootServicesApplication = EventType(rawValue: 0x8000_0003)
    public static let efiBootServicesDriver = EventType(rawValue: 0x8000_0004)
    public static let efiRuntimeServicesDriver = EventType(rawValue: 0x8000_0005)
    public static let efiGPTEvent = EventType(rawValue: 0x8000_0006)
    public static let efiAction = EventType(rawValue: 0x8000_0007)
    public static let efiPlatformFirmwareBlob = EventType(rawValue: 0x8000_0008)
    public static let efiHandoffTables = EventType(rawValue: 0x8000_0009)
    public static let efiPlatformFirmwareBlob2 = EventType(rawValue: 0x8000_000A)
    public static let efiHandoffTables2 = EventType(rawValue: 0x8000_000B)
    public static let efiVariableBoot2 = EventType(rawValue: 0x8000_000C)
    public static let efiGPTEvent2 = EventType(rawValue: 0x8000_000D)
    public static let efiHCRTMEvent = EventType(rawValue: 0x8000_0010)
    public static let efiVariableAuthority = EventType(rawValue: 0x8000_00E0)
    public static let efiSPDMFirmwareBlob = EventType(rawValue: 0x8000_00E1)
    public static let efiSPDMFirmwareConfig = EventType(rawValue: 0x8000_00E2)
    public static let efiSPDMDevicePolicy = EventType(rawValue: 0x8000_00E3)
    public static let efiSPDMDeviceAuthority = EventType(rawValue: 0x8000_00E4)

    /// Every event type domb names, with its spec name.
    public static let names: [EventType: String] = [
        .prebootCert: "EV_PREBOOT_CERT", .postCode: "EV_POST_CODE", .unused: "EV_UNUSED",
        .noAction: "EV_NO_ACTION", .separator: "EV_SEPARATOR", .action: "EV_ACTION",
        .eventTag: "EV_EVENT_TAG", .sCRTMContents: "EV_S_CRTM_CONTENTS", .sCRTMVersion: "EV_S_CRTM_VERSION",
        .cpuMicrocode: "EV_CPU_MICROCODE", .platformConfigFlags: "EV_PLATFORM_CONFIG_FLAGS",
        .tableOfDevices: "EV_TABLE_OF_DEVICES", .compactHash: "EV_COMPACT_HASH", .ipl: "EV_IPL",
        .iplPartitionData: "EV_IPL_PARTITION_DATA", .nonhostCode: "EV_NONHOST_CODE",
        .nonhostConfig: "EV_NONHOST_CONFIG", .nonhostInfo: "EV_NONHOST_INFO",
        .omitBootDeviceEvents: "EV_OMIT_BOOT_DEVICE_EVENTS", .postCode2: "EV_POST_CODE2",
        .efiVariableDriverConfig: "EV_EFI_VARIABLE_DRIVER_CONFIG", .efiVariableBoot: "EV_EFI_VARIABLE_BOOT",
        .efiBootServicesApplication: "EV_EFI_BOOT_SERVICES_APPLICATION",
        .efiBootServicesDriver: "EV_EFI_BOOT_SERVICES_DRIVER",
        .efiRuntimeServicesDriver: "EV_EFI_RUNTIME_SERVICES_DRIVER", .efiGPTEvent: "EV_EFI_GPT_EVENT",
        .efiAction: "EV_EFI_ACTION", .efiPlatformFirmwareBlob: "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        .efiHandoffTables: "EV_EFI_HANDOFF_TABLES", .efiPlatformFirmwareBlob2: "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        .efiHandoffTables2: "EV_EFI_HANDOFF_TABLES2", .efiVariableBoot2: "EV_EFI_VARIABLE_BOOT2",
        .efiGPTEvent2: "EV_EFI_GPT_EVENT2", .efiHCRTMEvent: "EV_EFI_HCRTM_EVENT",
        .efiVariableAuthority: "EV_EFI_VARIABLE_AUTHORITY", .efiSPDMFirmwareBlob: "EV_EFI_SPDM_FIRMWARE_BLOB",
        .efiSPDMFirmwareConfig: "EV_EFI_SPDM_FIRMWARE_CONFIG", .efiSPDMDevicePolicy: "EV_EFI_SPDM_DEVICE_POLICY",
        .efiSPDMDeviceAuthority: "EV_EFI_SPDM_DEVICE_AUTHORITY",
    ]

    /// Spec name of a known type, nil otherwise.
    public var name: String? { Self.names[self] }
    /// Whether the type is one of the TCG-defined ones above.
    public var isKnown: Bool { name != nil }

    /// `EV_SEPARATOR`, or `EventType(0x0000abcd)` for a value domb does not name.
    public var description: String {
        if let name { return name }
        let digits = String(rawValue, radix: 16)
        return "EventType(0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ")"
    }

    /// Looks a type up by its spec name ("EV_IPL"), or parses "0x0000000d".
    public init?(name: String) {
        if let match = Self.names.first(where: { $0.value == name }) {
            self = match.key
            return
        }
        let lower = name.lowercased()
        guard lower.hasPrefix("0x"), let value = UInt32(lower.dropFirst(2), radix: 16) else { return nil }
        self.init(rawValue: value)
    }
}
