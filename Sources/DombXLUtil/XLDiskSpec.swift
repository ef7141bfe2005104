//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A DISKSPEC as `xlu_disk_parse` (Xen 4.17 libxlutil) leaves `libxl_device_disk`: every
/// field that parser can set, with libxl's names and enumerations. nil means "not set"
/// (libxl's `UNKNOWN`, a NULL string or a default `libxl_defbool`), which libxl resolves
/// later; xl passes it on unset.
public struct XLDiskSpec: Hashable, Sendable {
    /// `libxl_disk_format` (`format=`, a positional format or a `raw:`/`qcow2:`/`vhd:` prefix).
    public enum Format: String, Hashable, Sendable, CaseIterable {
        case qcow, qcow2, vhd, raw, empty, qed
    }

    /// `libxl_disk_backend` (`backendtype=`). The deprecated `phy:`, `file:`, `tap:`,
    /// `tap2:`, `aio:`, `ioemu:`, `tapdisk:` prefixes set none of it.
    public enum Backend: String, Hashable, Sendable, CaseIterable {
        case phy, tap, qdisk, standalone
    }

    /// `libxl_disk_specification` (`specification=`).
    public enum Specification: String, Hashable, Sendable, CaseIterable {
        case xen, virtio
    }

    /// `backend_domname` (`backend=`).
    public var backendDomain: String?
    /// `pdev_path`: the target; "" for an empty CD-ROM written positionally.
    public var target: String?
    /// `vdev` (mandatory: `xlu_disk_parse` refuses a spec without one).
    public var vdev: String
    public var backend: Backend?
    /// Always set: `xlu_disk_parse` makes an unset format `raw`, and `empty` for a CD-ROM
    /// without a target.
    public var format: Format
    /// `script=`, or `block-<name>` from an `iscsi:`/`nbd:`/`enbd:`/`drbd:` prefix.
    public var script: String?
    public var removable: Bool
    public var readWrite: Bool
    public var isCDROM: Bool
    public var directIOSafe: Bool
    /// `discard` / `no-discard`.
    public var discard: Bool?
    public var specification: Specification?
    /// COLO block replication (`colo`, `colo-host=`...): libxl's "unstable" settings.
    public var colo: COLO?
    /// `trusted` / `untrusted`. Xen 4.17's libxlutil never sets it (its generated lexer
    /// predates those keywords, so they are read as positional parameters); a newer
    /// libxlutil might.
    public var trusted: Bool?

    /// The COLO settings of a disk, present when any was given.
    public struct COLO: Hashable, Sendable {
        public var enable: Bool?
        public var host: String?
        public var port: Int32?
        public var export: String?
        public var activeDisk: String?
        public var hiddenDisk: String?

        public init(
            enable: Bool? = nil, host: String? = nil, port: Int32? = nil, export: String? = nil,
            activeDisk: String? = nil, hiddenDisk: String? = nil
        ) {
            self.enable = enable
            self.host = host
            self.port = port
            self.export = export
            self.activeDisk = activeDisk
            self.hiddenDisk = hiddenDisk
        }
    }

    public init(
        backendDomain: String? = nil, target: String?, vdev: String, backend: Backend? = nil, format: Format = .raw,
        script: String? = nil, removable: Bool = false, readWrite: Bool = true, isCDROM: Bool = false,
        directIOSafe: Bool = false, discard: Bool? = nil, specification: Specification? = nil, colo: COLO? = nil,
        trusted: Bool? = nil
    ) {
        self.backendDomain = backendDomain
        self.target = target
        self.vdev = vdev
        self.backend = backend
        self.format = format
        self.script = script
        self.removable = removable
        self.readWrite = readWrite
        self.isCDROM = isCDROM
        self.directIOSafe = directIOSafe
        self.discard = discard
        self.specification = specification
        self.colo = colo
        self.trusted = trusted
    }
}
