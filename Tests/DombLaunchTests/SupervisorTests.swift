//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombCrypto
import DombLaunch
import DombModel
import DombLibxl
import Foundation
import Testing

/// The plan backend with libxl's events replaced by a script of them.
final class ScriptedSupervising: DomainSupervising {
    let inner = PlanBackend()
    var script: [LibxlDomainEvent] = []
    var watched = Set<UInt32>()
    var builtImages: [String: [ModuleKind: SealedImage]] = [:]
    var backendName: String { "scripted" }
    struct Done: Error {}

    func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain {
        builtImages[domain.name] = images.modules
        return try inner.build(domain, images: images)
    }
    func unpause(_ domain: BuiltDomain) throws { try inner.unpause(domain) }
    func destroy(_ domain: BuiltDomain) throws { try inner.destroy(domain) }
    func watch(_ domain: BuiltDomain) throws { watched.insert(domain.domid) }
    func unwatch(_ domain: BuiltDomain) { watched.remove(domain.domid) }
    func nextEvent() throws -> LibxlDomainEvent {
        guard !script.isEmpty else { throw Done() }
        return script.removeFirst()
    }
    func coreDump(_ domain: BuiltDomain, to path: String) throws {}
    func rename(_ domain: BuiltDomain, to name: String) throws {}
    var actions: [String] { inner.actions.map(\.description) }
}

@Suite struct SupervisorTests {
    /// Two started domains: web (on_reboot restart, on_crash preserve) and db (defaults).
    func session(tamper: Bool = false) throws -> (LaunchSession, [BuiltDomain], ScriptedSupervising, SimulatedXen) {
        let spec = LaunchSpec(domains: [
            DomainSpec(
                name: "web", domid: 4, type: .pv, memoryKiB: 65_536, modules: [ModuleSpec(kind: .kernel, path: "web-kernel")],
                onPoweroff: .destroy, onReboot: .restart, onCrash: .preserve),
            DomainSpec(name: "db", domid: 5, type: .pv, memoryKiB: 65_536, modules: [ModuleSpec(kind: .kernel, path: "db-kernel")]),
        ])
        let plan = try XenstorePlanner().plan(spec.validated())
        let backend = ScriptedSupervising()
        var images: [String: DomainImages] = [:]
        var digests: [String: DigestSet] = [:]
        var built: [BuiltDomain] = []
        for domain in spec.domains {
            let image = try SealedImage.sealing(name: "modules/\(domain.name)/kernel", bytes: Array("kernel of \(domain.name)".utf8))
            images[domain.name] = DomainImages(modules: [.kernel: image])
            var digest = try FileDigester(algorithms: [.sha256]).digest(path: image.path).digests
            if tamper { digest = DigestSet([TaggedDigest(.sha256, [UInt8](repeating: 0, count: 32))]) }
            digests["modules/\(domain.name)/kernel"] = digest
            built.append(try backend.build(domain, images: images[domain.name] ?? DomainImages()))
        }
        var values: [String: XenstoreBuildValues] = [:]
        for domain in built { values[domain.name] = domain.values }
        let session = LaunchSession(
            spec: spec, xenstorePlan: plan, images: images, measuredDigests: digests, values: values, started: built)
        return (session, built, backend, SimulatedXen())
    }

    func run(_ session: LaunchSession, _ backend: ScriptedSupervising, _ xen: SimulatedXen) -> [String] {
        var lines: [String] = []
        do {
            try Supervisor(session: session, backend: backend, xenstore: xen, devices: nil) { lines.append("\($0)") }.run()
        } catch is ScriptedSupervising.Done {
            lines.append("(script ended)")
        } catch {
            lines.append("error: \(error)")
        }
        return lines
    }

    @Test func actionsFollowTheLaunchAndXlsDefaults() throws {
        let (session, _, backend, xen) = try session()
        backend.script = [
            .shutdown(domid: 4, reason: .crash), .shutdown(domid: 5, reason: .reboot), .death(domid: 4),
            .shutdown(domid: 5, reason: .crash),
        ]
        let lines = run(session, backend, xen)
        let digest = try #require(session.measuredDigests["modules/db/kernel"]?[.sha256]).hexString
        #expect(lines.count == 4)
        #expect(lines[0] == "web (domid 4): shut down (crash), on_crash=preserve: left in place")
        // db has no on_reboot: xl's default, restart, from the sealed image.
        #expect(lines[1] == "db (domid 5): shut down (reboot), on_reboot=restart: restarted as domid 5 from the sealed images measured at launch (kernel modules/db/kernel 12 bytes sha256:\(digest)); no file read, nothing measured again")
        #expect(lines[2] == "web (domid 4): destroyed (not by domb, e.g. xl destroy); no longer supervised")
        // xl's default on_crash is destroy; then nothing is left and the supervisor ends.
        #expect(lines[3] == "db (domid 5): shut down (crash), on_crash=destroy: destroyed")
        #expect(backend.script.isEmpty && backend.watched.isEmpty)
        #expect(backend.actions.suffix(4) == ["destroy db (domid 5)", "build db as domid 5: pv, 64 MiB, 1 vCPU(s), paused; images kernel 12 bytes", "unpause db (domid 5)", "destroy db (domid 5)"])
        // The restart built from the very memfd measured at launch and wrote db's Xenstore.
        #expect(backend.builtImages["db"]?[.kernel] === session.images["db"]?[.kernel])
        #expect(xen.tree["/local/domain/5/name"] == "db")
        #expect(xen.tree["/local/domain/4/name"] == nil, "only the restarted domain's part of the plan")
    }

    @Test func poweroffDestroys() throws {
        let (session, _, backend, xen) = try session()
        backend.script = [.shutdown(domid: 4, reason: .poweroff), .shutdown(domid: 5, reason: .suspend), .death(domid: 5)]
        #expect(run(session, backend, xen) == [
            "web (domid 4): shut down (poweroff), on_poweroff=destroy: destroyed",
            "db (domid 5): shut down (suspend); nothing to do",
            "db (domid 5): destroyed (not by domb, e.g. xl destroy); no longer supervised",
        ])
    }

    /// A sealed image that no longer has the measured digest is never started.
    @Test func aRestartChecksTheMeasuredDigest() throws {
        let (session, _, backend, xen) = try session(tamper: true)
        backend.script = [.shutdown(domid: 4, reason: .reboot)]
        let lines = run(session, backend, xen)
        #expect(lines.first?.hasPrefix("web (domid 4): shut down (reboot), on_reboot=restart: not restarted: modules/web/kernel: the sealed image no longer has the measured sha256 0000") == true, "\(lines)")
        #expect(!backend.actions.contains { $0.hasPrefix("unpause web") })
    }
}
