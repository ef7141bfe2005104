//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombLaunch
import DombModel
import DombLibxl
import DombTPM
import DombTestSupport
import Foundation
import Testing

/// An in-memory xenstored with simulated drivers, for the orchestration of PV devices (the
/// real thing is the e2e scenario on Xen 4.17). Each time the connector waits, time moves on
/// by what it asked for and the drivers act: a backend in a domain whose backend driver is
/// loaded (and which runs) goes to InitWait; in a driver domain that runs, `xl devd` reports
/// the hotplug script connected; a running frontend whose backend is ready connects, both
/// ends going to Connected.
final class SimulatedXen: XenstoreWriting, XenstoreWatching {
    var tree: [String: String] = ["/local/domain/0/domid": "0"]
    private var pending: [String: String] = [:]
    var clock = 0.0
    /// Domains whose backend drivers (blkback, netback) are loaded.
    var backendDrivers: Set<UInt32> = [0]
    /// The backend kinds those drivers serve (no QEMU: no qdisk).
    var servedKinds: Set<String> = ["vbd", "vif"]
    /// Unpaused domains (dom0 always runs).
    var running: Set<UInt32> = [0]
    /// Whether running frontends connect (a guest with PV drivers).
    var frontendsConnect = true
    /// What happened, in order.
    var events: [String] = []

    func transactionStart() throws(XenstoreError) -> XenstoreTransaction {
        pending = tree
        return XenstoreTransaction(id: 1)
    }
    func transactionEnd(_ transaction: XenstoreTransaction, commit: Bool) throws(XenstoreError) -> Bool {
        if commit { tree = pending }
        return true
    }
    func write(_ path: String, _ value: [UInt8], in transaction: XenstoreTransaction) throws(XenstoreError) {
        pending[path] = String(decoding: value, as: UTF8.self)
    }
    func read(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) -> [UInt8]? { pending[path].map { Array($0.utf8) } }
    func mkdir(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) { pending[path] = pending[path] ?? "" }
    func remove(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) {
        pending = pending.filter { !($0.key == path || $0.key.hasPrefix(path + "/")) }
    }
    func setPermissions(_ path: String, _ perms: [XenstorePermission], in transaction: XenstoreTransaction) throws(XenstoreError) {}
    func introduceDomain(domid: UInt32, ringRef: UInt64, port: UInt32) throws(XenstoreError) {}

    func read(_ path: String) throws(XenstoreError) -> [UInt8]? { tree[path].map { Array($0.utf8) } }
    func ownDomid() throws(XenstoreError) -> UInt32 { 0 }
    func waitForChange(under paths: [String], seconds: Double) throws(XenstoreError) {
        clock += seconds
        step()
    }

    func step() {
        let backends = tree.keys.filter { $0.hasSuffix("/state") && $0.contains("/backend/") }.map { String($0.dropLast(6)) }.sorted()
        for backend in backends {
            let parts = backend.split(separator: "/")  // local domain B backend KIND D DEVID
            guard parts.count == 7, let owner = UInt32(parts[2]), parts[4] != "console" else { continue }
            if tree["\(backend)/state"] == "1", backendDrivers.contains(owner), running.contains(owner), servedKinds.contains(String(parts[4])) {
                tree["\(backend)/state"] = "2"
                events.append("backend \(parts[4]) \(parts[5])/\(parts[6]) InitWait")
            }
            if owner != 0, running.contains(owner), tree["\(backend)/state"] == "2", tree["\(backend)/script"] != nil,
                tree["\(backend)/hotplug-status"] ?? "" == ""
            {
                tree["\(backend)/hotplug-status"] = "connected"
                events.append("xl devd in \(owner): \(parts[4]) \(parts[5])/\(parts[6]) connected")
            }
            guard frontendsConnect, let frontend = tree["\(backend)/frontend"], let domid = UInt32(parts[5]), running.contains(domid),
                tree["\(backend)/state"] == "2", tree["\(backend)/script"] == nil || tree["\(backend)/hotplug-status"] == "connected"
            else { continue }
            tree["\(frontend)/state"] = "4"
            tree["\(backend)/state"] = "4"
            events.append("connected \(parts[4]) \(parts[5])/\(parts[6])")
        }
    }
}

/// Hotplug scripts that report as Xen's do: `connected`, or `error` with a message.
final class FakeHotplug: HotplugRunning {
    let xen: SimulatedXen
    var failWith: String?
    var commands: [HotplugCommand] = []
    init(_ xen: SimulatedXen) { self.xen = xen }

    func run(_ command: HotplugCommand, seconds: Double) -> HotplugOutcome {
        commands.append(command)
        let path = "/local/domain/0/\(command.environment["XENBUS_PATH"] ?? "")"
        xen.events.append("hotplug \(command) \(command.environment["XENBUS_PATH"] ?? "")")
        if let failWith {
            xen.tree["\(path)/hotplug-error"] = failWith
            xen.tree["\(path)/hotplug-status"] = "error"
            return .exited(1)
        }
        xen.tree["\(path)/hotplug-status"] = "connected"
        return .exited(0)
    }
}

/// Tells the simulated Xen which domains run.
final class SimulatedBuilder: DomainBuilding {
    let inner = PlanBackend()
    let xen: SimulatedXen
    init(_ xen: SimulatedXen) { self.xen = xen }
    var backendName: String { "simulated" }
    func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain { try inner.build(domain, images: images) }
    func unpause(_ domain: BuiltDomain) throws {
        xen.running.insert(domain.domid)
        xen.events.append("unpause \(domain.name)")
        try inner.unpause(domain)
    }
    func destroy(_ domain: BuiltDomain) throws {
        xen.running.remove(domain.domid)
        try inner.destroy(domain)
    }
}

@Suite struct XenstoreDeviceTests {
    static func plan() throws -> XenstoreResolvedPlan {
        let spec = LaunchSpec(domains: [
            DomainSpec(
                name: "web", domid: 5, type: .pv, memoryKiB: 65_536, modules: [ModuleSpec(kind: .kernel, path: "k")],
                devices: [
                    try DeviceSpec(kind: .vbd, settings: ["target": "/srv/web.img", "vdev": "xvda", "backendtype": "phy"]),
                    try DeviceSpec(kind: .vif, backend: "net", settings: ["mac": "00:16:3e:00:00:01", "gatewaydev": "eth1"]),
                ]),
            DomainSpec(name: "net", domid: 3, type: .pv, memoryKiB: 65_536, isDriverDomain: true, modules: [ModuleSpec(kind: .kernel, path: "k")]),
        ])
        let plan = try XenstorePlanner().plan(spec.validated())
        return try plan.resolve([
            "web": XenstoreBuildValues(
                domid: 5, uuid: "00000000-0000-4000-8000-000000000005", storePort: 1, storeRingRef: 9, consolePort: 2, consoleRingRef: 8,
                startTime: "1.00"),
            "net": XenstoreBuildValues(
                domid: 3, uuid: "00000000-0000-4000-8000-000000000003", storePort: 1, storeRingRef: 9, consolePort: 2, consoleRingRef: 8,
                startTime: "1.00"),
        ])
    }

    /// The devices come from libxl's copy under /libxl/<domid>/device, with their backend
    /// keys; hotplug runs as libxl_linux.c sets it up.
    @Test func devicesOfAPlanAndTheirHotplugCommands() throws {
        let devices = try Self.plan().devices
        #expect(devices.map(\.description).sorted() == ["console 0 of net", "console 0 of web", "vbd 51712 (xvda) of web", "vif 0 of web"])
        let vbd = try #require(devices.first { $0.kind == "vbd" })
        #expect(vbd.frontendPath == "/local/domain/5/device/vbd/51712")
        #expect(vbd.backendPath == "/local/domain/0/backend/vbd/5/51712")
        #expect(vbd.backendDomid == 0 && vbd.backendKind == "vbd" && vbd.usesXenbusStates)
        #expect(vbd.hotplugScript == "/etc/xen/scripts/block")
        #expect(
            HotplugCommand(device: vbd)
                == HotplugCommand(
                    script: "/etc/xen/scripts/block", arguments: ["add"],
                    environment: [
                        "script": "/etc/xen/scripts/block", "XENBUS_TYPE": "vbd", "XENBUS_PATH": "backend/vbd/5/51712",
                        "XENBUS_BASE_PATH": "backend",
                    ]))
        let vif = try #require(devices.first { $0.kind == "vif" })
        #expect(vif.backendPath == "/local/domain/3/backend/vif/5/0" && vif.backendDomid == 3)
        #expect(
            HotplugCommand(device: vif)
                == HotplugCommand(
                    script: "/etc/xen/scripts/vif-bridge", arguments: ["online", "type_if=vif"],
                    environment: [
                        "script": "/etc/xen/scripts/vif-bridge", "XENBUS_TYPE": "vif", "XENBUS_PATH": "backend/vif/5/0",
                        "XENBUS_BASE_PATH": "backend", "netdev": "eth1", "vif": "vif5.0",
                    ]))
        let console = try #require(devices.first { $0.description == "console 0 of web" })
        #expect(!console.usesXenbusStates && console.hotplugScript == nil)
    }

    @Test func xenbusStates() {
        #expect(XenbusState(text: "4") == .connected)
        #expect(XenbusState(text: "9") == nil && XenbusState(text: "") == nil && XenbusState(text: "x") == nil)
        #expect("\(XenbusState.initWait)" == "2 (InitWait)")
    }
}

@Suite struct DeviceConnectorTests {
    func connector(_ xen: SimulatedXen, _ hotplug: FakeHotplug, timeout: Double = 5) -> DeviceConnector {
        let connector = DeviceConnector(store: xen, hotplug: hotplug, timeout: timeout, now: { xen.clock })
        connector.domainNames = [5: "web", 3: "net"]
        return connector
    }

    func applied() throws -> (SimulatedXen, [XenbusDevice]) {
        let xen = SimulatedXen()
        let plan = try XenstoreDeviceTests.plan()
        _ = try XenstoreApplier(introduce: false).apply(plan, to: xen)
        return (xen, plan.devices)
    }

    /// As xl does for its own backends: wait for InitWait, then the script, nothing for the
    /// driver domain's vif (xl devd runs that one there).
    @Test func localBackendsAreTakenThenHotplugged() throws {
        let (xen, devices) = try applied()
        let hotplug = FakeHotplug(xen)
        try connector(xen, hotplug).setUpLocalBackends(devices)
        #expect(hotplug.commands.map(\.description) == ["/etc/xen/scripts/block add"])
        #expect(xen.events == ["backend vbd 5/51712 InitWait", "hotplug /etc/xen/scripts/block add backend/vbd/5/51712"])
        #expect(xen.tree["/local/domain/0/backend/vbd/5/51712/hotplug-status"] == "connected")
    }

    /// A backend in this domain with no script (a qdisk, served by a QEMU domb does not
    /// start) must still be taken before anything runs.
    @Test func aLocalBackendWithoutScriptMustBeTakenToo() throws {
        let xen = SimulatedXen()
        let spec = LaunchSpec(domains: [
            DomainSpec(
                name: "web", domid: 5, type: .pv, memoryKiB: 65_536, modules: [ModuleSpec(kind: .kernel, path: "k")],
                devices: [try DeviceSpec(kind: .vbd, settings: ["target": "/srv/web.img", "vdev": "xvda", "backendtype": "qdisk"])])
        ])
        let plan = try XenstorePlanner().plan(spec.validated()).resolve([
            "web": XenstoreBuildValues(
                domid: 5, uuid: "00000000-0000-4000-8000-000000000005", storePort: 1, storeRingRef: 9, consolePort: 2, consoleRingRef: 8,
                startTime: "1.00")
        ])
        _ = try XenstoreApplier(introduce: false).apply(plan, to: xen)
        let hotplug = FakeHotplug(xen)
        let failure = #expect(throws: DeviceFailure.self) { try connector(xen, hotplug, timeout: 2).setUpLocalBackends(plan.devices) }
        #expect(failure?.description == "vbd 51712 (xvda) of web: after waiting 2.0 s for the backend driver to take the device: its backend /local/domain/0/backend/qdisk/5/51712 is in state 1 (Initialising): no backend driver in Domain-0 took it (qdisk backends are QEMU processes, which domb does not start)")
        #expect(hotplug.commands.isEmpty)
    }

    @Test func aFailedScriptNamesTheDeviceAndWhatItReported() throws {
        let (xen, devices) = try applied()
        let hotplug = FakeHotplug(xen)
        hotplug.failWith = "/srv/web.img does not exist.\u{1b}[2J"
        let failure = #expect(throws: DeviceFailure.self) { try connector(xen, hotplug).setUpLocalBackends(devices) }
        #expect(failure?.device == "vbd 51712 (xvda) of web")
        #expect(failure?.reason == "its hotplug script /etc/xen/scripts/block add failed with exit status 1: \"/srv/web.img does not exist.\u{1b}[2J\"")
        // Escaped where it is printed: the boot failure's reason.
        #expect(TerminalText.escape(failure.map(\.reason) ?? "").hasSuffix("does not exist.\\e[2J\""))
    }

    @Test func aBackendNobodyTakesTimesOutNamingIt() throws {
        let (xen, devices) = try applied()
        xen.backendDrivers = []
        let failure = #expect(throws: DeviceFailure.self) { try connector(xen, FakeHotplug(xen), timeout: 3).setUpLocalBackends(devices) }
        #expect(failure?.device == "vbd 51712 (xvda) of web")
        #expect(
            failure?.reason
                == "after waiting 3.0 s for the backend driver to take the device: its backend /local/domain/0/backend/vbd/5/51712 is in state 1 (Initialising): no backend driver in Domain-0 took it (is xen-blkback loaded there?)"
        )
        #expect(xen.clock >= 3 && xen.clock < 4.5, "it waited the timeout, not much longer")
    }

    /// A backend in a driver domain is ready once that domain runs and its xl devd reported.
    @Test func driverDomainBackendsNeedTheDriverDomainRunning() throws {
        let (xen, devices) = try applied()
        xen.backendDrivers = [0, 3]
        let hotplug = FakeHotplug(xen)
        let web = devices.filter { $0.domain == "web" }
        try connector(xen, hotplug).setUpLocalBackends(devices)
        let waiting = #expect(throws: DeviceFailure.self) { try connector(xen, hotplug, timeout: 2).waitForBackends(of: web) }
        #expect(waiting?.device == "vif 0 of web")
        #expect(waiting?.reason.contains("no backend driver in net took it (is xen-netback loaded there?)") == true, "\(waiting?.reason ?? "")")
        xen.running.insert(3)
        try connector(xen, hotplug).waitForBackends(of: web)
        #expect(xen.tree["/local/domain/3/backend/vif/5/0/hotplug-status"] == "connected")
        #expect(xen.tree["/local/domain/5/device/vif/0/state"] == "1", "the frontend has not run")

        xen.running.insert(5)
        try connector(xen, hotplug).waitForConnection(of: web)
        for path in ["/local/domain/5/device/vif/0", "/local/domain/3/backend/vif/5/0", "/local/domain/5/device/vbd/51712", "/local/domain/0/backend/vbd/5/51712"] {
            #expect(xen.tree["\(path)/state"] == "4", "\(path)")
        }
    }

    @Test func aDriverDomainsScriptErrorFailsAtOnce() throws {
        let (xen, devices) = try applied()
        xen.tree["/local/domain/3/backend/vif/5/0/hotplug-status"] = "error"
        xen.tree["/local/domain/3/backend/vif/5/0/hotplug-error"] = "Could not find bridge device xenbr0"
        let failure = #expect(throws: DeviceFailure.self) {
            try connector(xen, FakeHotplug(xen), timeout: 30).waitForBackends(of: devices.filter { $0.kind == "vif" })
        }
        #expect(failure?.description == "vif 0 of web: its hotplug script reported error: \"Could not find bridge device xenbr0\"")
        #expect(xen.clock == 0, "no waiting for what already failed")
    }

    @Test func aFrontendThatNeverConnectsIsNamedWithBothEnds() throws {
        let (xen, devices) = try applied()
        xen.backendDrivers = [0, 3]
        xen.running = [0, 3, 5]
        xen.frontendsConnect = false
        let connector = connector(xen, FakeHotplug(xen), timeout: 4)
        try connector.setUpLocalBackends(devices)
        let failure = #expect(throws: DeviceFailure.self) { try connector.waitForConnection(of: devices) }
        #expect(failure?.device == "vbd 51712 (xvda) of web")
        #expect(
            failure?.reason
                == "after waiting 4.0 s for it to connect: not connected: frontend /local/domain/5/device/vbd/51712 state 1 (Initialising), backend /local/domain/0/backend/vbd/5/51712 state 2 (InitWait)"
        )
        // A frontend that gives up (Closed, with its error node) fails at once.
        xen.tree["/local/domain/5/device/vbd/51712/state"] = "6"
        xen.tree["/local/domain/5/error/device/vbd/51712/error"] = "-19 reading virtual-device"
        let closed = #expect(throws: DeviceFailure.self) { try connector.waitForConnection(of: devices) }
        #expect(closed?.reason.hasPrefix("its frontend went to state 6 (Closed): \"-19 reading virtual-device\"") == true, "\(closed?.reason ?? "")")
    }
}

@Suite struct BootFlowDeviceTests {
    func run(
        _ xen: SimulatedXen, hotplug: FakeHotplug? = nil, timeout: Double = 5
    ) throws -> (Result<BootReport, BootFailure>, SimulatedBuilder, String) {
        let fixture = try BootFixture()
        let builder = SimulatedBuilder(xen)
        let log = fixture.directory.file("eventlog.bin")
        let connector = DeviceConnector(store: xen, hotplug: hotplug ?? FakeHotplug(xen), timeout: timeout, now: { xen.clock })
        var result: Result<BootReport, BootFailure>!
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            do {
                result = .success(
                    try BootFlow.run(
                        bundle: fixture.bundle, options: BootOptions(trust: try fixture.trust(), eventLogPath: log),
                        environment: environment(tpm, builder: builder, xenstore: xen, devices: connector)))
            } catch let failure as BootFailure {
                result = .failure(failure)
            }
        }
        let events = try EventLog(parsing: try [UInt8](Data(contentsOf: URL(fileURLWithPath: log))), strict: true)
        let separators = events.events.filter { $0.type == .separator }.count
        return (result, builder, "\(separators) separators")
    }

    /// dom0's vbd is hotplugged before anything runs; the driver domain runs before web, whose
    /// vif backend it serves; web runs once its backends are ready; the launch returns once
    /// both devices are connected.
    @Test func devicesComeUpInLaunchOrder() throws {
        let xen = SimulatedXen()
        xen.backendDrivers = [0, 2]
        let (result, _, separators) = try run(xen)
        let report = try result.get()
        #expect(report.devicesConnected == 2)
        #expect(separators == "2 separators")
        #expect(
            xen.events == [
                "backend vbd 3/51712 InitWait", "hotplug /etc/xen/scripts/block add backend/vbd/3/51712", "unpause xenstore",
                "unpause netback", "backend vif 3/0 InitWait", "xl devd in 2: vif 3/0 connected", "unpause web",
                "connected vbd 3/51712", "connected vif 3/0",
            ])
        #expect(report.session.started.map(\.name) == ["xenstore", "netback", "web"])
    }

    @Test func aBackendNobodyServesRefusesTheLaunchBeforeAnythingRuns() throws {
        let xen = SimulatedXen()
        xen.backendDrivers = []
        let (result, builder, separators) = try run(xen, timeout: 2)
        guard case .failure(let failure) = result else { Issue.record("launched"); return }
        #expect(failure.stage == .devices)
        #expect(failure.unpaused.isEmpty && failure.record.closedPCRs.isEmpty)
        #expect(Set(failure.tornDown) == ["xenstore", "netback", "web"])
        #expect(builder.inner.actions.filter { if case .unpause = $0 { true } else { false } }.isEmpty)
        #expect(failure.description.hasPrefix("launch refused while setting up device backends: vbd 51712 (xvda) of web: after waiting 2.0 s"))
        #expect(failure.description.contains("\n  - no domain was unpaused"))
        #expect(separators == "0 separators")
    }

    @Test func aFailedHotplugScriptRefusesTheLaunch() throws {
        let xen = SimulatedXen()
        let hotplug = FakeHotplug(xen)
        hotplug.failWith = "/dev/vg/web does not exist."
        let (result, _, _) = try run(xen, hotplug: hotplug)
        guard case .failure(let failure) = result else { Issue.record("launched"); return }
        #expect(failure.stage == .devices && failure.unpaused.isEmpty)
        #expect(failure.reason.contains("/etc/xen/scripts/block add failed with exit status 1: \"/dev/vg/web does not exist.\""))
    }

    /// The driver domain has run by the time its backend is found missing: the message says so.
    @Test func aDriverDomainThatNeverServesItsBackend() throws {
        let xen = SimulatedXen()
        let (result, _, _) = try run(xen, timeout: 2)
        guard case .failure(let failure) = result else { Issue.record("launched"); return }
        #expect(failure.stage == .backends)
        #expect(failure.unpaused == ["xenstore", "netback"])
        #expect(failure.reason.hasPrefix("vif 0 of web: after waiting 2.0 s for its backend: its backend /local/domain/2/backend/vif/3/0 is in state 1"))
        #expect(failure.description.contains("launch refused while waiting for a driver domain's backends"))
        #expect(failure.description.contains("\n  - unpaused: xenstore, netback"))
        #expect(Set(failure.tornDown) == ["xenstore", "netback", "web"])
    }

    /// Connection can only be seen once the frontends run: the launch was closed, everything
    /// ran, and it is torn down with a message that says all of that.
    @Test func aDeviceThatNeverConnectsFailsTheLaunchAfterItRan() throws {
        let xen = SimulatedXen()
        xen.backendDrivers = [0, 2]
        xen.frontendsConnect = false
        let (result, _, separators) = try run(xen, timeout: 2)
        guard case .failure(let failure) = result else { Issue.record("launched"); return }
        #expect(failure.stage == .connect)
        #expect(failure.record.closedPCRs == [12, 13] && failure.unpaused == ["xenstore", "netback", "web"])
        #expect(Set(failure.tornDown) == ["xenstore", "netback", "web"])
        #expect(failure.description.hasPrefix("launch refused while waiting for devices to connect: vbd 51712 (xvda) of web: after waiting 2.0 s for it to connect"))
        #expect(failure.description.contains("every launch PCR is closed by its EV_SEPARATOR"))
        #expect(failure.description.contains("\n  - unpaused: xenstore, netback, web"))
        #expect(separators == "2 separators", "the log on disk is the closed launch's")
    }
}

/// The real runner, on real scripts: libxl's environment and stdin, exit status, timeout.
/// The scripts run through /bin/sh: tests running in parallel may still hold a freshly
/// written file open in a child they spawn, and executing it directly fails with ETXTBSY.
@Suite struct ProcessHotplugRunnerTests {
    @Test func runsWithTheEnvironmentAndStdinLibxlGives() throws {
        let directory = try TemporaryDirectory(prefix: "domb-hotplug")
        let out = directory.file("out")
        let script = try directory.write(
            "script", "echo \"$1 $2 $XENBUS_PATH $vif $(cat | wc -c)\" > \(out)\n[ \"$1\" = online ] || exit 3\n")
        let command = HotplugCommand(
            script: "/bin/sh", arguments: [script, "online", "type_if=vif"],
            environment: ["XENBUS_PATH": "backend/vif/5/0", "vif": "vif5.0"])
        #expect(ProcessHotplugRunner().run(command, seconds: 30) == .exited(0))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "online type_if=vif backend/vif/5/0 vif5.0 0\n")
        let failing = HotplugCommand(script: "/bin/sh", arguments: [script, "add"], environment: [:])
        #expect(ProcessHotplugRunner().run(failing, seconds: 30) == .exited(3))
    }

    @Test func aScriptThatHangsIsKilledAtTheTimeout() throws {
        let started = Date()
        let hang = HotplugCommand(script: "/bin/sh", arguments: ["-c", "sleep 30"], environment: [:])
        #expect(ProcessHotplugRunner().run(hang, seconds: 0.5) == .timedOut)
        #expect(Date().timeIntervalSince(started) < 10)
        let missing = HotplugCommand(script: "/nonexistent/domb-hotplug", arguments: [], environment: [:])
        guard case .notStarted = ProcessHotplugRunner().run(missing, seconds: 1) else {
            Issue.record("a missing script must not count as run")
            return
        }
    }
}
