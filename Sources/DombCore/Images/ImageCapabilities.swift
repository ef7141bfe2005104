//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// What an image is, for launching.
public enum ImageKind: String, Hashable, Sendable, Codable {
    /// An ELF kernel (plain or inside a bzImage / gzip).
    case kernel
    /// HVM firmware: an ELF with no Xen notes (hvmloader), or a UEFI firmware volume / BIOS ROM.
    case firmware
    /// An initramfs (cpio newc, possibly compressed).
    case ramdisk
    case unknown
}

/// Whether an image can boot in a guest type, and if not, why.
public enum ImageSupport: Hashable, Sendable {
    case supported
    case refused(String)

    public var isSupported: Bool { self == .supported }
    /// The reason for a refusal, nil when supported.
    public var reason: String? {
        if case .refused(let reason) = self { return reason }
        return nil
    }
}

/// The facts libxenguest's loaders decide on, and the decision rules as one pure function
/// (`libelf-dominfo.c` `elf_xen_note_check`, `elf_xen_parse_features`,
/// `xg_dom_elfloader.c` `xc_dom_parse_elf_kernel`, `xg_dom_hvmloader.c`).
public struct ImageCapabilities: Hashable, Sendable, Codable {
    public var kind: ImageKind
    /// ELF `e_machine` name of the kernel or firmware, if it is an ELF.
    public var architecture: String?
    /// Xen guest parameters from the notes or `__xen_guest`; nil when there are none.
    public var parameters: XenGuestParameters?
    /// PV only: why the entry point lies outside the kernel (libelf `elf_xen_addr_calc_check`), if it does.
    public var entryOutOfBounds: String?

    public init(
        kind: ImageKind, architecture: String? = nil, parameters: XenGuestParameters? = nil,
        entryOutOfBounds: String? = nil
    ) {
        self.kind = kind
        self.architecture = architecture
        self.parameters = parameters
        self.entryOutOfBounds = entryOutOfBounds
    }

    /// Facts from a parsed ELF (the kernel itself or a bzImage's decompressed payload).
    public init(elf: ELFImage) {
        let parameters = elf.guestParameters
        self.init(
            kind: parameters == nil ? .firmware : .kernel, architecture: elf.architecture, parameters: parameters,
            entryOutOfBounds: parameters.flatMap { Self.entryCheck(elf: elf, parameters: $0) })
    }

    /// libelf `elf_xen_addr_calc_check`: the PV entry must lie in the kernel's virtual extent.
    static func entryCheck(elf: ELFImage, parameters p: XenGuestParameters) -> String? {
        guard let extent = elf.physicalExtent else { return "the ELF has no PT_LOAD segment" }
        let virtBase = p.virtBase ?? 0
        // __xen_guest defaults ELF_PADDR_OFFSET to VIRT_BASE; notes default it to 0.
        let paddrOffset = p.paddrOffset ?? (elf.noteSource == .legacyGuestSection ? virtBase : 0)
        let virtOffset = virtBase &- paddrOffset
        let start = extent.start &+ virtOffset
        let end = extent.end &+ virtOffset
        let entry = p.entry ?? elf.entry
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        if start > end || entry < start || entry > end || virtBase > start {
            return "entry \(hex(entry)) or VIRT_BASE \(hex(virtBase)) lies outside the kernel's virtual range "
                + "\(hex(start))-\(hex(end))"
        }
        return nil
    }

    /// Whether the image can boot as `type`.
    /// - Parameters:
    ///   - type: the requested guest type.
    ///   - privileged: true for the hardware/control domain (a `!dom0` kernel is allowed).
    /// - Returns: ``ImageSupport/supported``, or ``ImageSupport/refused(_:)`` with the reason
    ///   libxenguest would give.
    public func supports(_ type: GuestType, privileged: Bool = false) -> ImageSupport {
        switch type {
        case .hvm:
            switch kind {
            case .firmware: return .supported
            case .kernel:
                return .refused("HVM boots firmware (hvmloader) with no Xen ELF notes; this is a Xen kernel "
                    + "with notes: boot it as pv or pvh")
            case .ramdisk: return .refused("this is a ramdisk, not HVM firmware")
            case .unknown: return .refused("unrecognised image: HVM needs firmware such as hvmloader")
            }
        case .pv, .pvh:
            switch kind {
            case .kernel: break
            case .firmware:
                return .refused("no Xen ELF notes or __xen_guest section: not a Xen kernel (firmware boots as hvm)")
            case .ramdisk: return .refused("this is a ramdisk, not a kernel")
            case .unknown: return .refused("unrecognised image: not an ELF or bzImage kernel")
            }
            guard let p = parameters else { return .refused("no Xen ELF notes or __xen_guest section") }
            if let architecture, architecture != "x86_64", architecture != "x86" {
                return .refused("an x86 Xen guest needs an x86 kernel; this one is \(architecture)")
            }
            // elf_xen_parse_features: an unknown *required* feature fails the parse.
            if let unknown = p.features.first(where: { $0.required && $0.bit == nil }) {
                return .refused("FEATURES requires '\(unknown)', which Xen does not know")
            }
            // xc_dom_parse_elf_kernel: "Kernel does not support unprivileged (DomU) operation".
            if !privileged, p.features.contains(where: { $0.required && $0.name == "dom0" }) {
                return .refused("FEATURES requires '!dom0': the kernel only runs as the privileged domain, not a domU")
            }
            if type == .pvh {
                // elf_xen_note_check: "PVH only requires one ELF note to be set".
                guard let entry = p.phys32Entry else {
                    return .refused("no PHYS32_ENTRY note: the kernel is not capable of booting inside an HVM "
                        + "container (PVH)")
                }
                guard entry <= UInt64(UInt32.max) else {
                    return .refused("PHYS32_ENTRY 0x\(String(entry, radix: 16)) is not a 32-bit address")
                }
                return .supported
            }
            // elf_xen_note_check for PV.
            let loaderOK = p.loader.map { $0.hasPrefix("generic") } ?? false
            let guestOSOK = p.guestOS.map { $0.hasPrefix("linux") } ?? false
            guard loaderOK || guestOSOK else {
                return .refused("PV needs LOADER \"generic\" or GUEST_OS \"linux\" (found LOADER "
                    + "\(quoted(p.loader)) and GUEST_OS \(quoted(p.guestOS)))")
            }
            guard let version = p.xenVersion, version.hasPrefix("xen-3.0") else {
                return .refused("PV needs XEN_VERSION \"xen-3.0\" (found \(quoted(p.xenVersion)))")
            }
            if let entryOutOfBounds { return .refused("PV: \(entryOutOfBounds)") }
            return .supported
        }
    }

    /// The guest types the image supports as a domU, in `GuestType` order.
    public var supportedTypes: [GuestType] { GuestType.allCases.filter { supports($0).isSupported } }
}

private func quoted(_ text: String?) -> String { text.map { "\"\($0)\"" } ?? "none" }
