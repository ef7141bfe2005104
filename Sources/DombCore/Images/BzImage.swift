//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// The real-mode setup header of a Linux x86 bzImage (Documentation/arch/x86/boot.rst,
/// "The Real-Mode Kernel Header"), as libxenguest's `xg_dom_bzimageloader.c` reads it:
/// `"HdrS"` at 0x202, protocol ≥ 2.08, and the protected-mode payload at
/// `(setup_sects + 1) * 512 + payload_offset`, `payload_length` bytes long.
public struct BzImageHeader: Hashable, Sendable, Codable {
    /// Offset of the setup header (`setup_sects`).
    public static let setupHeaderOffset = 0x1F1
    /// Bytes of the header domb reads: up to and including `kernel_info_offset` (2.15).
    public static let headerReadSize = 0x26C
    /// Oldest boot protocol with `payload_offset`/`payload_length` (what Xen requires).
    public static let minimumProtocol: UInt16 = 0x0208
    /// Most setup sectors domb accepts (Linux's setup is < 32 KiB; Debian 6.1 has 39).
    public static let maxSetupSectors = 64
    /// Longest kernel version string domb reads.
    public static let maxVersionStringLength = 256

    /// `setup_sects`.
    public var setupSectors: UInt8
    /// Boot protocol version, e.g. 0x020F for 2.15.
    public var protocolVersion: UInt16
    /// `loadflags` (bit 0 LOADED_HIGH).
    public var loadFlags: UInt8
    /// `code32_start`.
    public var code32Start: UInt32
    /// `kernel_alignment` and `relocatable_kernel`.
    public var kernelAlignment: UInt32
    public var relocatable: Bool
    /// `xloadflags` (bit 0 XLF_KERNEL_64: has the 64-bit entry at 0x200).
    public var extendedLoadFlags: UInt16
    public var commandLineSize: UInt32
    /// Absolute file offset of the payload.
    public var payloadOffset: Int
    public var payloadLength: Int
    /// `pref_address` and `init_size` (2.10).
    public var preferredAddress: UInt64
    public var initSize: UInt32
    /// `handover_offset` (2.11): EFI handover entry, 0 if none.
    public var handoverOffset: UInt32
    /// The kernel version string pointed to by `kernel_version`, if any.
    public var kernelVersion: String?

    /// "2.15" for 0x020F.
    public var protocolText: String { "\(protocolVersion >> 8).\(protocolVersion & 0xFF)" }

    public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.count >= 0x206 && bytes.dropFirst(0x202).prefix(4).elementsEqual("HdrS".utf8)
    }

    /// Parses the setup header and locates the payload; the payload is not read.
    public init(source: any ImageSource) throws(ParseError) {
        var r = try source.reader(at: 0, count: Self.headerReadSize, field: "bzImage setup header")
        try r.skip(Self.setupHeaderOffset, field: "boot sector")
        setupSectors = try r.readLE(UInt8.self, "setup_sects")  // 0x1f1
        try r.skip(0x1FE - 0x1F2, field: "root_flags..root_dev")
        let bootFlag = try r.readLE(UInt16.self, "boot_flag")  // 0x1fe
        try r.skip(2, field: "jump")  // 0x200
        let magic = try r.readBytes(4, field: "header magic")  // 0x202
        guard magic.elementsEqual("HdrS".utf8) else {
            throw .invalid("not a bzImage: no \"HdrS\" magic at 0x202", offset: 0x202)
        }
        guard bootFlag == 0xAA55 else {
            throw .invalid("bzImage boot_flag is 0x\(String(bootFlag, radix: 16)), expected 0xaa55", offset: 0x1FE)
        }
        protocolVersion = try r.readLE(UInt16.self, "version")  // 0x206
        guard protocolVersion >= Self.minimumProtocol else {
            throw ParseError(.unsupported,
                "bzImage boot protocol \(protocolVersion >> 8).\(protocolVersion & 0xFF) is older than 2.08 "
                    + "(no payload_offset; Xen refuses it)", offset: 0x206)
        }
        try r.skip(4, field: "realmode_swtch")  // 0x208
        try r.skip(2, field: "start_sys_seg")  // 0x20c
        let versionPointer = try r.readLE(UInt16.self, "kernel_version")  // 0x20e
        try r.skip(1, field: "type_of_loader")  // 0x210
        loadFlags = try r.readLE(UInt8.self, "loadflags")  // 0x211
        try r.skip(2, field: "setup_move_size")  // 0x212
        code32Start = try r.readLE(UInt32.self, "code32_start")  // 0x214
        try r.skip(0x230 - 0x218, field: "ramdisk_image..heap_end_ptr..cmd_line_ptr..initrd_addr_max")
        kernelAlignment = try r.readLE(UInt32.self, "kernel_alignment")  // 0x230
        relocatable = try r.readLE(UInt8.self, "relocatable_kernel") != 0  // 0x234
        try r.skip(1, field: "min_alignment")  // 0x235
        extendedLoadFlags = try r.readLE(UInt16.self, "xloadflags")  // 0x236
        commandLineSize = try r.readLE(UInt32.self, "cmdline_size")  // 0x238
        try r.skip(0x248 - 0x23C, field: "hardware_subarch..")
        let rawPayloadOffset = try r.readLE(UInt32.self, "payload_offset")  // 0x248
        let rawPayloadLength = try r.readLE(UInt32.self, "payload_length")  // 0x24c
        try r.skip(8, field: "setup_data")  // 0x250
        preferredAddress = try r.readLE(UInt64.self, "pref_address")  // 0x258
        initSize = try r.readLE(UInt32.self, "init_size")  // 0x260
        handoverOffset = try r.readLE(UInt32.self, "handover_offset")  // 0x264

        // Xen computes (setup_sects + 1) * 512 and does not apply the "0 means 4" rule of
        // the boot protocol; a 2.08+ kernel never has 0, so refuse it rather than guess.
        guard setupSectors != 0 else {
            throw .invalid("bzImage setup_sects is 0 (ambiguous: the boot protocol reads it as 4, Xen as 0)",
                offset: 0x1F1)
        }
        guard Int(setupSectors) <= Self.maxSetupSectors else {
            throw .limit("bzImage setup_sects \(setupSectors) exceeds domb's limit of \(Self.maxSetupSectors)",
                offset: 0x1F1)
        }
        let setupEnd = (Int(setupSectors) + 1) * 512
        payloadOffset = setupEnd + Int(rawPayloadOffset)
        payloadLength = Int(rawPayloadLength)
        guard payloadLength > 0 else {
            throw .invalid("bzImage payload_length is 0", offset: 0x24C)
        }
        guard setupEnd <= source.size else {
            throw .truncated("bzImage setup code (\(setupEnd) bytes) runs past the end of the \(source.size)-byte image",
                offset: 0x1F1)
        }
        guard payloadOffset + payloadLength <= source.size else {
            throw .truncated(
                "bzImage payload (\(payloadLength) bytes at offset \(payloadOffset) = (setup_sects+1)*512 + "
                    + "payload_offset \(rawPayloadOffset)) runs past the end of the \(source.size)-byte image",
                offset: 0x248)
        }

        // kernel_version: offset from 0x200 of a NUL-terminated string inside the setup code.
        kernelVersion = nil
        if versionPointer != 0 {
            let start = Int(versionPointer) + 0x200
            if start < setupEnd {
                let bytes = try source.reader(
                    at: start, count: min(Self.maxVersionStringLength, setupEnd - start), field: "kernel_version"
                ).unread
                if let nul = bytes.firstIndex(of: 0) {
                    kernelVersion = String(decoding: bytes[..<nul], as: UTF8.self)
                }
            }
        }
    }

    /// Whether the kernel has the 64-bit entry point (`XLF_KERNEL_64`).
    public var is64Bit: Bool { extendedLoadFlags & 1 != 0 }
}
