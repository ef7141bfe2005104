//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombLibxl
import DombXenstore

/// The backend on Xen: libxenlight builds each domain paused from the verified bytes (the
/// kernel, ramdisk and firmware paths are sealed memfds, so libxl loads exactly what was
/// measured), then unpauses or destroys it.
///
/// PV devices are not handed to libxl: their Xenstore entries come from domb's signed
/// Xenstore plan, written by the boot flow in one transaction before anything is unpaused.
public final class LibxlBackend: DomainSupervising, @unchecked Sendable {
    public let backendName = "libxl"
    private let libxl: Libxl
    private let xenstore: XenstoreClient?

    /// - Parameter xenstore: where the store and console rings libxl set up are read back
    ///   from, to fill the Xenstore plan's placeholders.
    public init(xenstore: XenstoreClient? = nil) throws {
        libxl = try Libxl()
        self.xenstore = xenstore
    }

    private func readNumber(_ path: String) -> UInt64? {
        guard let bytes = try? xenstore?.read(path) else { return nil }
        return UInt64(String(decoding: bytes, as: UTF8.self))
    }

    public func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain {
        var paths: [ModuleKind: String] = [:]
        for kind in ModuleKind.allCases { paths[kind] = images[kind]?.path }
        // The devices are the Xenstore plan's to write, not libxl's.
        let request = LibxlDomainRequest(domain: domain, paths: paths, includeDevices: false)
        do {
            let domid = try libxl.createPaused(request)
            let base = "/local/domain/\(domid)"
            let vmPath = (try? xenstore?.read("\(base)/vm")).map { String(decoding: $0, as: UTF8.self) }
            let uuid = vmPath.map { $0.split(separator: "/").last.map(String.init) ?? $0 }
            // libxl writes /vm/<uuid>/start_time when it builds the domain; the plan rewrites
            // that node, so it takes libxl's value (seen on Xen 4.17: without it the plan
            // cannot be resolved).
            let startTime = vmPath.flatMap { try? xenstore?.read("\($0)/start_time") }
                .map { String(decoding: $0, as: UTF8.self) }
            let values = XenstoreBuildValues(
                domid: domid, uuid: domain.uuid ?? uuid, storePort: readNumber("\(base)/store/port").map { UInt32(clamping: $0) },
                storeRingRef: readNumber("\(base)/store/ring-ref"),
                consolePort: readNumber("\(base)/console/port").map { UInt32(clamping: $0) },
                consoleRingRef: readNumber("\(base)/console/ring-ref"), startTime: startTime)
            return BuiltDomain(name: domain.name, domid: domid, values: values)
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

    // MARK: Supervision (libxl's domain-death events)

    private var watches: [UInt32: DeathWatch] = [:]

    public func watch(_ domain: BuiltDomain) throws {
        watches[domain.domid] = try libxl.watchDeath(domid: domain.domid)
    }

    public func unwatch(_ domain: BuiltDomain) {
        if let watch = watches.removeValue(forKey: domain.domid) { libxl.unwatch(watch) }
    }

    public func nextEvent() throws -> LibxlDomainEvent { try libxl.nextDomainEvent() }

    public func coreDump(_ domain: BuiltDomain, to path: String) throws { try libxl.coreDump(domid: domain.domid, to: path) }

    public func rename(_ domain: BuiltDomain, to name: String) throws {
        try libxl.rename(domid: domain.domid, from: domain.name, to: name)
    }
}
