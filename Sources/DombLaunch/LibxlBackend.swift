//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombLibxl

/// The backend on Xen: libxenlight builds each domain paused from the verified bytes (the
/// kernel, ramdisk and firmware paths are sealed memfds, so libxl loads exactly what was
/// measured), then unpauses or destroys it.
///
/// PV devices are not handed to libxl: their Xenstore entries come from domb's signed
/// Xenstore plan, written by the boot flow in one transaction before anything is unpaused.
public final class LibxlBackend: DomainBuilding, @unchecked Sendable {
    public let backendName = "libxl"
    private let libxl: Libxl

    public init() throws {
        libxl = try Libxl()
    }

    public func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain {
        let kernel = domain.type == .hvm ? images[.firmware] ?? images[.kernel] : images[.kernel]
        let request = LibxlDomainRequest(
            name: domain.name, uuid: domain.uuid, domid: domain.domid.flatMap { $0 == 0 ? nil : $0 },
            type: domain.type, vcpus: domain.vcpus, maxVcpus: max(domain.vcpus, domain.maxVcpus ?? 0),
            cpuAffinity: domain.cpuAffinity, cpupool: domain.cpupool, targetMemoryKiB: domain.memoryKiB,
            maxMemoryKiB: max(domain.memoryKiB, domain.maxMemoryKiB ?? 0), kernelPath: kernel?.path,
            ramdiskPath: images[.ramdisk]?.path, commandLine: domain.module(.kernel)?.bootargs,
            onPoweroff: domain.onPoweroff ?? .destroy, onReboot: domain.onReboot ?? .restart,
            onCrash: domain.onCrash ?? .destroy)
        do {
            let domid = try libxl.createPaused(request)
            return BuiltDomain(name: domain.name, domid: domid)
        } catch {
            throw BootError.build(domain: domain.name, reason: error.description)
        }
    }

    public func unpause(_ domain: BuiltDomain) throws {
        do { try libxl.unpause(domid: domain.domid) } catch {
            throw BootError.build(domain: domain.name, reason: error.description)
        }
    }

    public func destroy(_ domain: BuiltDomain) throws {
        do { try libxl.destroy(domid: domain.domid) } catch {
            throw BootError.build(domain: domain.name, reason: error.description)
        }
    }
}
