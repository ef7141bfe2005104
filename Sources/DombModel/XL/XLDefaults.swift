//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// xl.cfg booleans the launch model has no place for, but which are harmless at libxl's own
/// default: a file that sets one to that value asks for what libxl does anyway, so the
/// import takes it (with a note); any other value is refused.
///
/// Each entry names the field xl sets and libxl 4.17's default for it
/// (`libxl__domain_build_info_setdefault`, libxl_create.c), which the comparison with `xl -N`
/// also fills in (``LibxlConfigComparison``).
struct XLDefault: Sendable {
    var key: String
    /// The guest types xl reads the key for.
    var types: Set<GuestType>
    var value: Bool
    /// Where xl puts it in libxl's JSON of `libxl_domain_config`.
    var path: [String]

    static let all: [XLDefault] = [
        XLDefault(key: "vnc", types: [.hvm], value: true, path: ["b_info", "type.hvm", "vnc", "enable"]),
        XLDefault(key: "sdl", types: [.hvm], value: false, path: ["b_info", "type.hvm", "sdl", "enable"]),
        XLDefault(key: "opengl", types: [.hvm], value: false, path: ["b_info", "type.hvm", "sdl", "opengl"]),
        XLDefault(key: "pae", types: [.hvm], value: true, path: ["b_info", "type.hvm", "pae"]),
        XLDefault(key: "acpi_s3", types: [.hvm], value: true, path: ["b_info", "type.hvm", "acpi_s3"]),
        XLDefault(key: "acpi_s4", types: [.hvm], value: true, path: ["b_info", "type.hvm", "acpi_s4"]),
        XLDefault(key: "acpi_laptop_slate", types: [.hvm], value: false, path: ["b_info", "type.hvm", "acpi_laptop_slate"]),
        XLDefault(key: "nx", types: [.hvm], value: true, path: ["b_info", "type.hvm", "nx"]),
        XLDefault(key: "hpet", types: [.hvm], value: true, path: ["b_info", "type.hvm", "hpet"]),
        XLDefault(key: "vpt_align", types: [.hvm], value: true, path: ["b_info", "type.hvm", "vpt_align"]),
        XLDefault(key: "usb", types: [.hvm], value: false, path: ["b_info", "type.hvm", "usb"]),
        XLDefault(key: "vkb_device", types: [.hvm], value: true, path: ["b_info", "type.hvm", "vkb_device"]),
        XLDefault(key: "xen_platform_pci", types: [.hvm], value: true, path: ["b_info", "type.hvm", "xen_platform_pci"]),
        XLDefault(key: "nographic", types: [.hvm], value: false, path: ["b_info", "type.hvm", "nographic"]),
        XLDefault(key: "spice", types: [.hvm], value: false, path: ["b_info", "type.hvm", "spice", "enable"]),
        XLDefault(key: "apic", types: [.hvm], value: true, path: ["b_info", "apic"]),
        XLDefault(key: "nestedhvm", types: [.pv, .pvh, .hvm], value: false, path: ["b_info", "nested_hvm"]),
        XLDefault(key: "nomigrate", types: [.pv, .pvh, .hvm], value: false, path: ["b_info", "disable_migrate"]),
        XLDefault(key: "localtime", types: [.pv, .pvh, .hvm], value: false, path: ["b_info", "localtime"]),
        XLDefault(key: "e820_host", types: [.pv], value: false, path: ["b_info", "type.pv", "e820_host"]),
        XLDefault(key: "pvshim", types: [.pvh], value: false, path: ["b_info", "type.pvh", "pvshim"]),
    ]

    static func entry(_ key: String, type: GuestType) -> XLDefault? {
        all.first { $0.key == key && $0.types.contains(type) }
    }
}
