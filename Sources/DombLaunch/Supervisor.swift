//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles
import DombCrypto
import DombLibxl
import DombModel
import Foundation

/// A builder that also reports what happens to the domains it built (libxl's domain-death
/// events) and carries out lifecycle actions on them.
public protocol DomainSupervising: DomainBuilding {
    /// Starts reporting the shutdown and death of `domain`.
    func watch(_ domain: BuiltDomain) throws
    func unwatch(_ domain: BuiltDomain)
    /// Blocks until a watched domain shuts down or dies.
    func nextEvent() throws -> LibxlDomainEvent
    func coreDump(_ domain: BuiltDomain, to path: String) throws
    func rename(_ domain: BuiltDomain, to name: String) throws
}

/// What a launch leaves for its supervisor: the verified launch description and Xenstore
/// plan, the sealed images it measured (the only source a restart builds from), the digests
/// measured for them, and the domains as built.
public final class LaunchSession: @unchecked Sendable {
    public let spec: LaunchSpec
    public let xenstorePlan: XenstorePlan?
    /// Per domain: the sealed memfds measured at launch.
    public let images: [String: DomainImages]
    /// Per bundle member (`modules/<domain>/<kind>`): the digests measured at launch.
    public let measuredDigests: [String: DigestSet]
    /// The values the hypervisor gave each domain, updated when one is rebuilt.
    public internal(set) var values: [String: XenstoreBuildValues]
    /// Domains that were started, as last built.
    public internal(set) var started: [BuiltDomain]

    public init(
        spec: LaunchSpec, xenstorePlan: XenstorePlan?, images: [String: DomainImages], measuredDigests: [String: DigestSet],
        values: [String: XenstoreBuildValues], started: [BuiltDomain]
    ) {
        self.spec = spec
        self.xenstorePlan = xenstorePlan
        self.images = images
        self.measuredDigests = measuredDigests
        self.values = values
        self.started = started
    }
}

/// One thing the supervisor did, as it logs it.
public struct SupervisorEvent: Hashable, Sendable, CustomStringConvertible {
    public var domain: String
    public var domid: UInt32
    public var what: String

    public var description: String { "\(domain) (domid \(domid)): \(what)" }
}

/// `domb boot --supervise`: carries out `on_poweroff`, `on_reboot` and `on_crash` of the
/// launch for the domains it started, on libxl's domain-death events, as xl's per-domain
/// monitor does for the domains `xl create` makes (xl_vmcontrol.c `handle_domain_death`).
///
/// A restart rebuilds the domain from the sealed memfds measured at launch, after checking
/// that their bytes still have the measured digests; it reads no file and extends no PCR
/// (docs/boot.md, "Lifecycle"). It runs until no started domain is left.
public final class Supervisor {
    private let session: LaunchSession
    private let backend: any DomainSupervising
    private let xenstore: (any XenstoreWriting)?
    private let devices: DeviceConnector?
    private let dumpDirectory: String
    private let log: (SupervisorEvent) -> Void
    /// Supervised domains by domid.
    private var live: [UInt32: BuiltDomain] = [:]
    /// Restarts per domain name (for rename-restart's `NAME--N`).
    private var incarnations: [String: Int] = [:]

    /// - Parameters:
    ///   - dumpDirectory: where `coredump-*` actions write (`XEN_DUMP_DIR`).
    public init(
        session: LaunchSession, backend: any DomainSupervising, xenstore: (any XenstoreWriting)?, devices: DeviceConnector?,
        dumpDirectory: String = "/var/lib/xen/dump", log: @escaping (SupervisorEvent) -> Void
    ) {
        self.session = session
        self.backend = backend
        self.xenstore = xenstore
        self.devices = devices
        self.dumpDirectory = dumpDirectory
        self.log = log
    }

    /// Watches every started domain and handles events until none is left.
    public func run() throws {
        for domain in session.started {
            try backend.watch(domain)
            live[domain.domid] = domain
        }
        while !live.isEmpty {
            switch try backend.nextEvent() {
            case .death(let domid):
                // Domains domb destroys itself are no longer in `live`.
                guard let domain = live.removeValue(forKey: domid) else { continue }
                backend.unwatch(domain)
                note(domain, "destroyed (not by domb, e.g. xl destroy); no longer supervised")
            case .shutdown(let domid, let reason):
                guard let domain = live[domid] else { continue }
                handle(domain, reason)
            }
        }
    }

    /// The action for `reason`, with xl's defaults for what the launch leaves unset
    /// (xl_parse.c: on_poweroff destroy, on_reboot restart, on_crash destroy, on_watchdog
    /// destroy, on_soft_reset soft-reset).
    static func action(for reason: ShutdownReason, of domain: DomainSpec?) -> LifecycleAction? {
        switch reason {
        case .poweroff: domain?.onPoweroff ?? .destroy
        case .reboot: domain?.onReboot ?? .restart
        case .crash: domain?.onCrash ?? .destroy
        case .watchdog: .destroy
        case .softReset: .softReset
        case .suspend, .unknown: nil
        }
    }

    private func handle(_ domain: BuiltDomain, _ reason: ShutdownReason) {
        let spec = session.spec.domain(named: domain.name)
        guard let action = Self.action(for: reason, of: spec) else {
            note(domain, "shut down (\(reason)); nothing to do")
            return
        }
        let setting: String =
            switch reason {
            case .reboot: "on_reboot"
            case .crash: "on_crash"
            case .watchdog: "on_watchdog"
            case .softReset: "on_soft_reset"
            default: "on_poweroff"
            }
        let why = "shut down (\(reason)), \(setting)=\(action.rawValue)"
        switch action {
        case .preserve:
            note(domain, "\(why): left in place")
        case .softReset:
            note(domain, "\(why): domb does not carry out soft-reset; left in place")
        case .destroy:
            destroy(domain, why)
        case .coredumpDestroy:
            dump(domain)
            destroy(domain, why)
        case .restart:
            restart(domain, why)
        case .coredumpRestart:
            dump(domain)
            restart(domain, why)
        case .renameRestart:
            let count = (incarnations[domain.name] ?? 0) + 1
            incarnations[domain.name] = count
            let newName = "\(domain.name)--\(count)"
            do {
                try backend.rename(domain, to: newName)
                backend.unwatch(domain)
                live.removeValue(forKey: domain.domid)
                note(domain, "\(why): renamed \(newName) and left in place, no longer supervised")
                start(from: domain, why: "\(why): renamed \(newName)", verb: "started again")
            } catch {
                note(domain, "\(why): renaming it failed (\(error)); left in place")
            }
        }
    }

    private func destroy(_ domain: BuiltDomain, _ why: String) {
        backend.unwatch(domain)
        live.removeValue(forKey: domain.domid)
        do {
            try backend.destroy(domain)
            note(domain, "\(why): destroyed")
        } catch {
            note(domain, "\(why): destroying it failed: \(error)")
        }
    }

    private func dump(_ domain: BuiltDomain) {
        let path = "\(dumpDirectory)/\(Int(Date().timeIntervalSince1970))-\(domain.name).\(domain.domid).core"
        do {
            try Directory.create(dumpDirectory)
            try backend.coreDump(domain, to: path)
            note(domain, "memory written to \(path)")
        } catch {
            note(domain, "core dump to \(path) failed: \(error)")
        }
    }

    private func restart(_ domain: BuiltDomain, _ why: String) {
        backend.unwatch(domain)
        live.removeValue(forKey: domain.domid)
        do {
            try backend.destroy(domain)
        } catch {
            note(domain, "\(why): destroying it failed (\(error)); not restarted")
            return
        }
        start(from: domain, why: why, verb: "restarted")
    }

    /// Builds `old`'s domain again from the sealed images of the launch, writes its part of
    /// the Xenstore plan, sets up its devices and unpauses it.
    private func start(from old: BuiltDomain, why: String, verb: String) {
        do {
            let new = try rebuild(old.name)
            live[new.domid] = new
            do { try backend.watch(new) } catch { note(new, "watching it failed: \(error)") }
            session.started = session.started.map { $0.name == new.name ? new : $0 }
            note(old, "\(why): \(verb) as domid \(new.domid) from the sealed images measured at launch (\(provenance(of: old.name))); no file read, nothing measured again")
            if let devices {
                let own = devicesOf(new)
                do {
                    try devices.waitForConnection(of: own.filter(\.usesXenbusStates))
                    if !own.filter(\.usesXenbusStates).isEmpty { note(new, "its devices connected again") }
                } catch {
                    note(new, "a device did not connect after the restart: \(error)")
                }
            }
        } catch {
            note(old, "\(why): not \(verb): \(error)")
        }
    }

    private var lastDevices: [UInt32: [XenbusDevice]] = [:]

    private func devicesOf(_ domain: BuiltDomain) -> [XenbusDevice] { lastDevices[domain.domid] ?? [] }

    private func rebuild(_ name: String) throws -> BuiltDomain {
        guard let spec = session.spec.domain(named: name), let images = session.images[name] else {
            throw ParseError.invalid("domain \(name) is not in the launch")
        }
        try checkImages(of: name)
        let new = try backend.build(spec, images: images)
        do {
            session.values[name] = new.values
            var devices: [XenbusDevice] = []
            if let plan = session.xenstorePlan {
                let resolved = try plan.restricted(to: [name]).resolve(session.values)
                if let xenstore {
                    // libxl introduced the domain when it built it.
                    _ = try XenstoreApplier(introduce: false).apply(resolved, to: xenstore)
                }
                devices = resolved.devices
            }
            lastDevices[new.domid] = devices
            if let connector = self.devices {
                connector.domainNames[new.domid] = name
                try connector.setUpLocalBackends(devices)
                try connector.waitForBackends(of: devices.filter { $0.domid == new.domid })
            }
            try backend.unpause(new)
            return new
        } catch {
            try? backend.destroy(new)
            throw error
        }
    }

    /// The sealed images must still hold the measured bytes (the seals make any change
    /// impossible; this shows it at every restart).
    private func checkImages(of name: String) throws {
        guard let images = session.images[name] else { return }
        for (kind, image) in images.modules.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let label = "modules/\(name)/\(kind.rawValue)"
            guard let measured = session.measuredDigests[label]?[.sha256] else { continue }
            let now = try FileDigester(algorithms: [.sha256]).digest(path: image.path).digests[.sha256]
            guard image.isSealed, now == measured else {
                throw ParseError.invalid("\(label): the sealed image no longer has the measured sha256 \(measured.hexString); not restarted")
            }
        }
    }

    /// `kernel 8 MiB sha256:… (as measured), ramdisk …`.
    private func provenance(of name: String) -> String {
        guard let images = session.images[name] else { return "no images" }
        return images.modules.sorted(by: { $0.key.rawValue < $1.key.rawValue }).map { kind, image in
            let digest = session.measuredDigests["modules/\(name)/\(kind.rawValue)"]?[.sha256]?.hexString ?? "?"
            return "\(kind.rawValue) \(image.name) \(image.count) bytes sha256:\(digest)"
        }.joined(separator: ", ")
    }

    private func note(_ domain: BuiltDomain, _ what: String) {
        log(SupervisorEvent(domain: domain.name, domid: domain.domid, what: what))
    }
}
