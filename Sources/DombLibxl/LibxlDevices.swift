//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CXenlight
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// A domain's PV devices as the libxl device structures xl fills from xl.cfg
/// (xl_parse.c): what libxl would be handed to create them. domb's libxl backend does not
/// hand them over (its Xenstore plan writes the devices); ``LibxlDomainConfig/json()``
/// shows them so that `xl -N` can check how every device spec was read.
enum LibxlDevices {
    static func fill(_ config: inout libxl_domain_config, _ devices: [DeviceSpec], domain: String) throws(LibxlError) {
        let disks = devices.filter { $0.kind == .vbd || $0.kind == .virtioDisk }
        let nics = devices.filter { $0.kind == .vif }
        let vtpms = devices.filter { $0.kind == .vtpm }
        let p9s = devices.filter { $0.kind == .p9 }
        let vkbs = devices.filter { $0.kind == .vkbd }
        if let unsupported = devices.first(where: { ![.console, .vbd, .virtioDisk, .vif, .vtpm, .p9, .vkbd].contains($0.kind) }) {
            throw LibxlError(
                code: 0, operation: "configure \(domain)", message: "\(unsupported.kind.rawValue) devices have no libxl form here")
        }
        config.disks = try array(disks.count, domain)
        config.num_disks = Int32(disks.count)
        for (index, device) in disks.enumerated() { disk(&config.disks[index], device) }
        config.nics = try array(nics.count, domain)
        config.num_nics = Int32(nics.count)
        for (index, device) in nics.enumerated() { nic(&config.nics[index], device, index: index) }
        config.vtpms = try array(vtpms.count, domain)
        config.num_vtpms = Int32(vtpms.count)
        for (index, device) in vtpms.enumerated() { vtpm(&config.vtpms[index], device, index: index) }
        config.p9s = try array(p9s.count, domain)
        config.num_p9s = Int32(p9s.count)
        for (index, device) in p9s.enumerated() { p9(&config.p9s[index], device) }
        config.vkbs = try array(vkbs.count, domain)
        config.num_vkbs = Int32(vkbs.count)
        for (index, device) in vkbs.enumerated() { vkb(&config.vkbs[index], device, index: index) }
    }

    /// A calloc'ed array (libxl_domain_config_dispose frees it with free()), nil when empty.
    private static func array<T>(_ count: Int, _ domain: String) throws(LibxlError) -> UnsafeMutablePointer<T>? {
        guard count > 0 else { return nil }
        guard let memory = calloc(count, MemoryLayout<T>.stride) else {
            throw LibxlError(code: 0, operation: "configure \(domain)", message: "out of memory")
        }
        return memory.assumingMemoryBound(to: T.self)
    }

    private static func string(_ value: String?) -> UnsafeMutablePointer<CChar>? { value.map { strdup($0) } ?? nil }

    /// dom0 is libxl's default backend: left unset, as xl leaves it without `backend=`.
    private static func backend(_ device: DeviceSpec) -> UnsafeMutablePointer<CChar>? {
        device.backend == dom0Name ? nil : strdup(device.backend)
    }

    private static func disk(_ disk: UnsafeMutablePointer<libxl_device_disk>, _ device: DeviceSpec) {
        libxl_device_disk_init(disk)
        let settings = device.settings
        disk.pointee.backend_domname = backend(device)
        disk.pointee.pdev_path = string(settings["target"])
        disk.pointee.vdev = string(settings["vdev"])
        switch settings["backendtype"] {
        case "phy": disk.pointee.backend = LIBXL_DISK_BACKEND_PHY
        case "qdisk": disk.pointee.backend = LIBXL_DISK_BACKEND_QDISK
        case "standalone": disk.pointee.backend = LIBXL_DISK_BACKEND_STANDALONE
        default: break
        }
        switch settings["format"] ?? "raw" {
        case "qcow": disk.pointee.format = LIBXL_DISK_FORMAT_QCOW
        case "qcow2": disk.pointee.format = LIBXL_DISK_FORMAT_QCOW2
        case "vhd": disk.pointee.format = LIBXL_DISK_FORMAT_VHD
        case "empty": disk.pointee.format = LIBXL_DISK_FORMAT_EMPTY
        case "qed": disk.pointee.format = LIBXL_DISK_FORMAT_QED
        default: disk.pointee.format = LIBXL_DISK_FORMAT_RAW
        }
        disk.pointee.script = string(settings["script"])
        // xlu_disk_parse: a CD-ROM is removable and read-only.
        let cdrom = settings["devtype"] == "cdrom"
        disk.pointee.is_cdrom = cdrom ? 1 : 0
        disk.pointee.removable = cdrom ? 1 : 0
        disk.pointee.readwrite = !cdrom && ["rw", "w", nil].contains(settings["access"]) ? 1 : 0
        disk.pointee.direct_io_safe = settings["direct-io-safe"] == "1"
        if let discard = settings["discard"] { libxl_defbool_set(&disk.pointee.discard_enable, discard == "1") }
        if device.kind == .virtioDisk { disk.pointee.specification = LIBXL_DISK_SPECIFICATION_VIRTIO }
    }

    private static func nic(_ nic: UnsafeMutablePointer<libxl_device_nic>, _ device: DeviceSpec, index: Int) {
        libxl_device_nic_init(nic)
        let settings = device.settings
        nic.pointee.backend_domname = backend(device)
        // xl's ARRAY_EXTEND_INIT: the index in the list unless devid= says otherwise.
        nic.pointee.devid = Int32(clamping: device.devid ?? UInt32(index))
        if let mtu = settings["mtu"].flatMap({ Int32($0) }) { nic.pointee.mtu = mtu }
        nic.pointee.model = string(settings["model"])
        if let mac = settings["mac"] {
            let bytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
            if bytes.count == 6 { nic.pointee.mac = (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]) }
        }
        nic.pointee.ip = string(settings["ip"])
        nic.pointee.bridge = string(settings["bridge"])
        nic.pointee.ifname = string(settings["vifname"])
        nic.pointee.script = string(settings["script"])
        switch settings["type"] {
        case "vif": nic.pointee.nictype = LIBXL_NIC_TYPE_VIF
        case "ioemu": nic.pointee.nictype = LIBXL_NIC_TYPE_VIF_IOEMU
        default: break
        }
        nic.pointee.gatewaydev = string(settings["gatewaydev"])
        if let trusted = settings["trusted"] { libxl_defbool_set(&nic.pointee.trusted, trusted == "1") }
    }

    private static func vtpm(_ vtpm: UnsafeMutablePointer<libxl_device_vtpm>, _ device: DeviceSpec, index: Int) {
        libxl_device_vtpm_init(vtpm)
        // xl requires backend= for a vtpm and copies it, dom0 included.
        vtpm.pointee.backend_domname = strdup(device.backend)
        vtpm.pointee.devid = Int32(clamping: device.devid ?? UInt32(index))
        if let uuid = device.settings["uuid"] { _ = libxl_uuid_from_string(&vtpm.pointee.uuid, uuid) }
    }

    private static func p9(_ p9: UnsafeMutablePointer<libxl_device_p9>, _ device: DeviceSpec) {
        // xl initialises each p9 twice (ARRAY_EXTEND_INIT, then libxl_device_p9_init), so its
        // devid is left to libxl.
        libxl_device_p9_init(p9)
        p9.pointee.backend_domname = backend(device)
        p9.pointee.tag = string(device.settings["tag"])
        p9.pointee.path = string(device.settings["path"])
        p9.pointee.security_model = string(device.settings["security_model"])
    }

    private static func vkb(_ vkb: UnsafeMutablePointer<libxl_device_vkb>, _ device: DeviceSpec, index: Int) {
        libxl_device_vkb_init(vkb)
        vkb.pointee.backend_domname = backend(device)
        vkb.pointee.devid = Int32(clamping: device.devid ?? UInt32(index))
        switch device.settings["backend-type"] {
        case "qemu": vkb.pointee.backend_type = LIBXL_VKB_BACKEND_QEMU
        case "linux": vkb.pointee.backend_type = LIBXL_VKB_BACKEND_LINUX
        default: break
        }
        vkb.pointee.unique_id = string(device.settings["unique-id"])
    }
}
