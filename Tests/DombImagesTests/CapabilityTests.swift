//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import Testing

/// The libxenguest rules (libelf-dominfo.c `elf_xen_note_check`, `elf_xen_parse_features`,
/// xg_dom_elfloader.c, xg_dom_hvmloader.c) as a pure function.
@Suite struct CapabilityTests {
    static func kernel(_ notes: [TestNote]) throws -> ImageCapabilities {
        ImageCapabilities(elf: try ELFImage(parsing: TestELF(notes: notes).bytes))
    }

    @Test func linuxKernelSupportsPVAndPVH() throws {
        let caps = try Self.kernel(TestNote.linux)
        #expect(caps.supports(.pv) == .supported)
        #expect(caps.supports(.pvh) == .supported)
        #expect(caps.supports(.hvm).reason?.contains("HVM boots firmware") == true)
        #expect(caps.supportedTypes == [.pv, .pvh])
    }

    @Test func pvNeedsGenericLoaderOrLinuxAndXen30() throws {
        let base: [TestNote] = [.string(.xenVersion, "xen-3.0"), .number64(.entry, 0x100000)]
        #expect(try Self.kernel(base + [.string(.loader, "generic")]).supports(.pv) == .supported)
        #expect(try Self.kernel(base + [.string(.guestOS, "linux-6.1")]).supports(.pv) == .supported)
        #expect(try Self.kernel(base + [.string(.loader, "genericish")]).supports(.pv) == .supported)
        let neither = try Self.kernel(base + [.string(.guestOS, "NetBSD"), .string(.loader, "custom")])
        #expect(neither.supports(.pv).reason
            == "PV needs LOADER \"generic\" or GUEST_OS \"linux\" (found LOADER \"custom\" and GUEST_OS \"NetBSD\")")
        let oldXen = try Self.kernel([.string(.loader, "generic"), .string(.xenVersion, "xen-2.0")])
        #expect(oldXen.supports(.pv).reason == "PV needs XEN_VERSION \"xen-3.0\" (found \"xen-2.0\")")
        let noVersion = try Self.kernel([.string(.loader, "generic")])
        #expect(noVersion.supports(.pv).reason?.contains("found none") == true)
        // A PVH-only kernel (no PV notes) is refused as PV but accepted as PVH.
        let pvhOnly = try Self.kernel([.number32(.phys32Entry, 0x100000)])
        #expect(pvhOnly.supports(.pv).isSupported == false)
        #expect(pvhOnly.supports(.pvh) == .supported)
    }

    @Test func pvhNeedsPhys32Entry() throws {
        let pvOnly = try Self.kernel(Array(TestNote.linux.dropLast()))
        #expect(pvOnly.supports(.pv) == .supported)
        #expect(pvOnly.supports(.pvh).reason?.contains("no PHYS32_ENTRY note") == true)
        let wide = try Self.kernel([.number64(.phys32Entry, 0x1_0000_0000)])
        #expect(wide.supports(.pvh).reason?.contains("not a 32-bit address") == true)
    }

    @Test func requiredFeatures() throws {
        let dom0Only = try Self.kernel(TestNote.linux + [.string(.features, "!dom0")])
        #expect(dom0Only.supports(.pv).reason?.contains("'!dom0'") == true)
        #expect(dom0Only.supports(.pvh).reason?.contains("'!dom0'") == true)
        #expect(dom0Only.supports(.pv, privileged: true) == .supported)
        // "dom0" without "!" only says it can run as dom0.
        #expect(try Self.kernel(TestNote.linux + [.string(.features, "dom0")]).supports(.pv) == .supported)
        // An unknown required feature fails libelf's parse; an unknown optional one is ignored.
        let unknownRequired = try Self.kernel(TestNote.linux + [.string(.features, "!time_travel")])
        #expect(unknownRequired.supports(.pv).reason == "FEATURES requires '!time_travel', which Xen does not know")
        #expect(try Self.kernel(TestNote.linux + [.string(.features, "time_travel")]).supports(.pv) == .supported)
    }

    @Test func pvEntryMustLieInTheKernel() throws {
        let outside = try Self.kernel([
            .string(.loader, "generic"), .string(.xenVersion, "xen-3.0"), .number64(.entry, 0x9000_0000),
        ])
        #expect(outside.supports(.pv).reason?.contains("outside the kernel's virtual range") == true)
    }

    @Test func nonX86KernelIsRefused() throws {
        let arm = ImageCapabilities(elf: try ELFImage(parsing: TestELF(machine: 183, notes: TestNote.linux).bytes))
        #expect(arm.supports(.pv).reason?.contains("this one is arm64") == true)
    }

    @Test func firmwareAndRamdisk() {
        #expect(ImageCapabilities(kind: .firmware).supportedTypes == [.hvm])
        #expect(ImageCapabilities(kind: .ramdisk).supportedTypes == [])
        #expect(ImageCapabilities(kind: .unknown).supports(.hvm).reason?.contains("unrecognised") == true)
    }
}
