//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil
import Testing

/// DISKSPECs through `xlu_disk_parse`, with the examples of xl-disk-configuration(5) (Xen 4.17).
@Suite struct XLDiskSpecTests {
    /// A fresh parser per call: one libxlutil config is not for several threads.
    static func disk(_ spec: String) throws -> XLDiskSpec { try XLUtilConfig(parsing: []).parseDisk(spec) }
    static func rate(_ text: String) throws -> XLVifRate { try XLUtilConfig(parsing: []).parseVifRate(text) }

    /// xl-disk-configuration(5), SYNTAX: "these strings are equivalent".
    @Test(arguments: [
        "/dev/vg/guest-volume,,hda",
        "/dev/vg/guest-volume,raw,hda,rw",
        "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
        "raw:/dev/vg/guest-volume,hda,w",
    ])
    func volumeGroup(spec: String) throws {
        #expect(try Self.disk(spec) == XLDiskSpec(target: "/dev/vg/guest-volume", vdev: "hda", format: .raw, readWrite: true))
    }

    /// "As are these" (the CD-ROM group).
    @Test(arguments: [
        "/root/image.iso,,hdc,cdrom",
        "/root/image.iso,,hdc,,cdrom",
        "/root/image.iso,raw,hdc,devtype=cdrom",
        "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
        "raw:/root/image.iso,hdc:cdrom,ro",
    ])
    func cdromGroup(spec: String) throws {
        #expect(
            try Self.disk(spec)
                == XLDiskSpec(target: "/root/image.iso", vdev: "hdc", format: .raw, removable: true, readWrite: false, isCDROM: true))
    }

    /// "Missing format and empty target": xend's empty CD-ROM, `,hdc:cdrom,r`.
    @Test func emptyCDROM() throws {
        #expect(
            try Self.disk(",hdc:cdrom,r")
                == XLDiskSpec(target: "", vdev: "hdc", format: .empty, removable: true, readWrite: false, isCDROM: true))
    }

    /// The deprecated prefixes are stripped and leave the backend type unset (libxl picks it).
    @Test(arguments: ["tap:aio:", "tap2:aio:", "aio:", "file:", "tap:", "tap2:", "phy:", "ioemu:", "tapdisk:"])
    func deprecatedPrefixesLeaveTheBackendUnset(prefix: String) throws {
        for path in ["/dev/vg/guest-volume", "/var/lib/xen/images/guest.img"] {
            let disk = try Self.disk("\(prefix)\(path),xvda,w")
            #expect(disk == XLDiskSpec(target: path, vdev: "xvda", backend: nil, format: .raw, readWrite: true))
        }
        #expect(try Self.disk("tap:qcow2:/images/g.qcow2,xvda,w").format == .qcow2)
    }

    @Test func scriptPrefixes() throws {
        #expect(try Self.disk("iscsi:iqn.2001-05.com.example:guest,xvda,w").script == "block-iscsi")
        #expect(try Self.disk("drbd:resource,xvda,w").script == "block-drbd")
    }

    @Test func keysAndFlags() throws {
        let disk = try Self.disk(
            "vdev=xvdb, backend=storage, backendtype=qdisk, format=qcow2, no-discard, direct-io-safe, "
                + "specification=xen, target=/images/a,b.qcow2")
        #expect(
            disk
                == XLDiskSpec(
                    backendDomain: "storage", target: "/images/a,b.qcow2", vdev: "xvdb", backend: .qdisk, format: .qcow2,
                    readWrite: true, directIOSafe: true, discard: false, specification: .xen))
        #expect(try Self.disk("/d,,xvda,discard").discard == true)
        #expect(try Self.disk("vdev=xvda,specification=virtio,backendtype=standalone,target=/d").specification == .virtio)
    }

    /// Xen 4.17's libxlutil has no `trusted`/`untrusted` keywords in a DISKSPEC (its
    /// generated lexer predates them): they are positional parameters there, and refused.
    @Test(arguments: [
        ("/dev/vg/g,raw,xvda,rw,untrusted", "too many positional parameters"),
        ("/dev/vg/g,raw,xvda,untrusted", "unknown value for access"),
        ("/dev/vg/g,raw,xvda,rw,trusted", "too many positional parameters"),
        ("untrusted,/dev/vg/g,raw,xvda", "unknown value for format"),
        ("untrusted, vdev=xvda, target=/dev/vg/g", "target respecified"),
    ])
    func trustedIsRefused(spec: String, message: String) throws {
        #expect { try Self.disk(spec) } throws: { error in
            "\(error)".contains(message) && "\(error)".contains("config parsing error in disk specification")
        }
    }

    @Test(arguments: [
        ("/dev/x,,xvda,rw,extra", "too many positional parameters"),
        ("/dev/x,vmdk,xvda", "unknown value for format"),
        ("/dev/x,,xvda,maybe", "unknown value for access"),
        ("/dev/x", "no vdev specified"),
        ("vdev=xvda", "no target specified"),
        ("colour=red,/dev/x,,xvda", "unknown parameter"),
        ("nosuch:/dev/x,,xvda", "unknown deprecated disk prefix"),
        ("backendtype=tapdisk,vdev=xvda,target=/x", "unknown value for backendtype"),
        ("/dev/x,,xvda,devtype=floppy", "unknown value for type"),
        ("vdev=xvda,vdev=xvdb,target=/x", "vdev respecified"),
    ])
    func badSpecsAreRefusedInLibxlutilsWords(spec: String, message: String) throws {
        #expect { try Self.disk(spec) } throws: { "\($0)".contains(message) }
    }

    @Test func vifRate() throws {
        // xl-network-configuration(5): "rate=10Mb/s@20ms" is 10 megabits per second replenished every 20 ms.
        #expect(try Self.rate("10Mb/s@20ms") == XLVifRate(bytesPerInterval: 25000, intervalMicroseconds: 20000))
        #expect(try Self.rate("1MB/s") == XLVifRate(bytesPerInterval: 50000, intervalMicroseconds: 50000))
        #expect { try Self.rate("fast") } throws: { "\($0)".contains("invalid rate") }
    }
}
