//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CXenlight
import DombCore
import DombModel

#if canImport(Glibc)
import Glibc
#endif

/// A domain's PV devices as the libxl device structures xl fills from xl.cfg
/// (xl_parse.c): what libxl would be handed to create them. domb's libxl backend does not
/// hand them over (its Xenstore plan writes the devices); ``LibxlDomainConfig/json()``
/// shows them so that `xl -N` can check how every device spec was read.
enum LibxlDevices {
    static func fill(_ config: inout libxl_domain_config, _ devices: [DeviceSpec], domain: String) throws(LibxlError) {
        func of<T: DeviceSettings>(_ type: T.Type) -> [(DeviceSpec, T)] {
            devices.compactMap { device in device.settings(as: T.self).map { (device, $0) } }
        }
        // Disks in the order xl reads them: vbd and virtio disks come from the same list.
        let disks = devices.filter { $0.kind == .vbd || $0.kind == .virtioDisk }
        let nics = of(VifSettings.self)
        let vtpms = of(VtpmSettings.self)
        let p9s = of(P9Settings.self)
        let vkbs = of(VkbdSettings.self)
        let vdispls = of(VdisplSettings.self)
        let carried: Set<DeviceKind> = [.console, .vbd, .virtioDisk, .vif, .vtpm, .p9, .vkbd, .vdispl]
        if let other = devices.first(where: { !carried.contains($0.kind) }) {
            throw LibxlError(code: 0, operation: "configure \(domain)", message: "\(other.kind) devices have no libxl form here")
        }
        config.disks = try array(disks.count, domain)
        config.num_disks = Int32(disks.count)
        for (index, device) in disks.enumerated() { disk(&config.disks[index], device) }
        config.nics = try array(nics.count, domain)
        config.num_nics = Int32(nics.count)
        for (index, (device, vif)) in nics.enumerated() { nic(&config.nics[index], device, vif, index: index, domain: domain) }
        let vtpmArray: UnsafeMutablePointer<libxl_device_vtpm>? = try array(vtpms.count, domain)
        config.vtpms = vtpmArray
        config.num_vtpms = Int32(vtpms.count)
        for (index, (device, vtpm)) in vtpms.enumerated() {
            guard let item = vtpmArray?.advanced(by: index) else { break }
            libxl_device_vtpm_init(item)
            // xl requires backend= for a vtpm and copies it, dom0 included.
            item.pointee.backend_domname = strdup(device.backend.name)
            item.pointee.devid = Int32(clamping: device.devid ?? UInt32(index))
            _ = libxl_uuid_from_string(&item.pointee.uuid, vtpm.uuid)
        }
        let p9Array: UnsafeMutablePointer<libxl_device_p9>? = try array(p9s.count, domain)
        config.p9s = p9Array
        config.num_p9s = Int32(p9s.count)
        for (index, (device, p9)) in p9s.enumerated() {
            guard let item = p9Array?.advanced(by: index) else { break }
            // xl initialises each p9 twice (ARRAY_EXTEND_INIT, then libxl_device_p9_init),
            // which leaves its devid to libxl.
            libxl_device_p9_init(item)
            item.pointee.backend_domname = backend(device)
            item.pointee.tag = strdup(p9.tag)
            item.pointee.path = strdup(p9.path)
            item.pointee.security_model = strdup(p9.securityModel.rawValue)
        }
        config.vkbs = try array(vkbs.count, domain)
        config.num_vkbs = Int32(vkbs.count)
        for (index, (device, vkb)) in vkbs.enumerated() { keyboard(&config.vkbs[index], device, vkb, index: index) }
        let vdisplArray: UnsafeMutablePointer<libxl_device_vdispl>? = try array(vdispls.count, domain)
        config.vdispls = vdisplArray
        config.num_vdispls = Int32(vdispls.count)
        for (index, (device, vdispl)) in vdispls.enumerated() {
            guard let item = vdisplArray?.advanced(by: index) else { break }
            libxl_device_vdispl_init(item)
            item.pointee.backend_domname = backend(device)
            item.pointee.devid = Int32(clamping: device.devid ?? UInt32(index))
            item.pointee.be_alloc = vdispl.backendAllocates
            let connectors: UnsafeMutablePointer<libxl_connector_param>? = try array(vdispl.connectors.count, domain)
            item.pointee.connectors = connectors
            item.pointee.num_connectors = Int32(vdispl.connectors.count)
            for (slot, connector) in vdispl.connectors.enumerated() {
                guard let param = connectors?.advanced(by: slot) else { break }
                param.pointee.unique_id = strdup(connector.uniqueID)
                param.pointee.width = connector.width
                param.pointee.height = connector.height
            }
        }
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
        device.backend == .dom0 ? nil : strdup(device.backend.name)
    }

    private static func format(_ format: DiskFormat) -> libxl_disk_format {
        switch format {
        case .raw: LIBXL_DISK_FORMAT_RAW
        case .qcow: LIBXL_DISK_FORMAT_QCOW
        case .qcow2: LIBXL_DISK_FORMAT_QCOW2
        case .vhd: LIBXL_DISK_FORMAT_VHD
        case .qed: LIBXL_DISK_FORMAT_QED
        case .empty: LIBXL_DISK_FORMAT_EMPTY
        }
    }

    private static func backendType(_ type: DiskBackendType?) -> libxl_disk_backend {
        switch type {
        case nil: LIBXL_DISK_BACKEND_UNKNOWN
        case .phy?: LIBXL_DISK_BACKEND_PHY
        case .qdisk?: LIBXL_DISK_BACKEND_QDISK
        case .standalone?: LIBXL_DISK_BACKEND_STANDALONE
        }
    }

    private static func disk(_ disk: UnsafeMutablePointer<libxl_device_disk>, _ device: DeviceSpec) {
        libxl_device_disk_init(disk)
        disk.pointee.backend_domname = backend(device)
        if let vbd = device.settings(as: VbdSettings.self) {
            // xlu_disk_parse leaves an empty CD-ROM's target "" (xend's `,hdc:cdrom,r`).
            disk.pointee.pdev_path = strdup(vbd.target)
            disk.pointee.vdev = strdup(vbd.vdev.name)
            disk.pointee.backend = backendType(vbd.backendType)
            disk.pointee.format = format(vbd.format)
            disk.pointee.script = string(vbd.script)
            // xlu_disk_parse: a CD-ROM is removable and read-only.
            let cdrom = vbd.deviceType == .cdrom
            disk.pointee.is_cdrom = cdrom ? 1 : 0
            disk.pointee.removable = cdrom ? 1 : 0
            disk.pointee.readwrite = !cdrom && vbd.access == .readWrite ? 1 : 0
            disk.pointee.direct_io_safe = vbd.directIOSafe
            if let discard = vbd.discard { libxl_defbool_set(&disk.pointee.discard_enable, discard) }
        } else if let virtio = device.settings(as: VirtioDiskSettings.self) {
            disk.pointee.pdev_path = strdup(virtio.target)
            disk.pointee.vdev = strdup(virtio.vdev.name)
            disk.pointee.backend = backendType(virtio.backendType)
            disk.pointee.format = format(virtio.format)
            disk.pointee.readwrite = virtio.access == .readWrite ? 1 : 0
            disk.pointee.specification = LIBXL_DISK_SPECIFICATION_VIRTIO
        }
    }

    private static func nic(
        _ nic: UnsafeMutablePointer<libxl_device_nic>, _ device: DeviceSpec, _ vif: VifSettings, index: Int, domain: String
    ) {
        libxl_device_nic_init(nic)
        nic.pointee.backend_domname = backend(device)
        // xl's ARRAY_EXTEND_INIT: the index in the list unless devid= says otherwise.
        let devid = device.devid ?? UInt32(index)
        nic.pointee.devid = Int32(clamping: devid)
        if let mtu = vif.mtu { nic.pointee.mtu = Int32(clamping: mtu) }
        nic.pointee.model = string(vif.model)
        // domb derives a MAC where none is given (libxl would draw a random one); that is
        // what the Xenstore plan writes, so it is what domb hands over.
        let mac = (vif.mac ?? MACAddress.derived(domain: domain, devid: devid)).bytes
        if mac.count == 6 { nic.pointee.mac = (mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]) }
        nic.pointee.ip = string(vif.ip)
        nic.pointee.bridge = string(vif.bridge)
        nic.pointee.ifname = string(vif.vifname)
        nic.pointee.script = string(vif.script)
        switch vif.type {
        case .vif?: nic.pointee.nictype = LIBXL_NIC_TYPE_VIF
        case .ioemu?: nic.pointee.nictype = LIBXL_NIC_TYPE_VIF_IOEMU
        case nil: break
        }
        if let rate = vif.rate {
            nic.pointee.rate_bytes_per_interval = rate.bytesPerInterval
            nic.pointee.rate_interval_usecs = rate.intervalMicroseconds
        }
        nic.pointee.gatewaydev = string(vif.gatewaydev)
        if let trusted = vif.trusted { libxl_defbool_set(&nic.pointee.trusted, trusted) }
    }

    private static func keyboard(_ vkb: UnsafeMutablePointer<libxl_device_vkb>, _ device: DeviceSpec, _ settings: VkbdSettings, index: Int) {
        libxl_device_vkb_init(vkb)
        vkb.pointee.backend_domname = backend(device)
        vkb.pointee.devid = Int32(clamping: device.devid ?? UInt32(index))
        switch settings.backendType {
        case .qemu?: vkb.pointee.backend_type = LIBXL_VKB_BACKEND_QEMU
        case .linux?: vkb.pointee.backend_type = LIBXL_VKB_BACKEND_LINUX
        case nil: break
        }
        vkb.pointee.unique_id = string(settings.uniqueID)
        let number = { (name: String) in settings.numbers[name, default: 0] }
        vkb.pointee.feature_disable_keyboard = number("feature-disable-keyboard") != 0
        vkb.pointee.feature_disable_pointer = number("feature-disable-pointer") != 0
        vkb.pointee.feature_abs_pointer = number("feature-abs-pointer") != 0
        vkb.pointee.feature_raw_pointer = number("feature-raw-pointer") != 0
        // xl turns multi-touch on when a size is given.
        vkb.pointee.feature_multi_touch = number("feature-multi-touch") != 0
            || VkbdSettings.multiTouchNames.contains { number($0) != 0 }
        vkb.pointee.multi_touch_width = number("multi-touch-width")
        vkb.pointee.multi_touch_height = number("multi-touch-height")
        vkb.pointee.multi_touch_num_contacts = number("multi-touch-num-contacts")
        vkb.pointee.width = number("width")
        vkb.pointee.height = number("height")
    }
}
