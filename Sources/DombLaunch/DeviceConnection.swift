//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import Foundation

/// One run of a hotplug script, as libxl makes it (libxl_linux.c `get_hotplug_env`,
/// `libxl__hotplug_disk`, `libxl__hotplug_nic`).
public struct HotplugCommand: Hashable, Sendable, CustomStringConvertible {
    public var script: String
    public var arguments: [String]
    /// Added to the caller's environment.
    public var environment: [String: String]

    public init(script: String, arguments: [String], environment: [String: String]) {
        self.script = script
        self.arguments = arguments
        self.environment = environment
    }

    /// What libxl runs for `device` when its backend is in this domain: `block add` for a
    /// vbd, `vif-bridge online type_if=vif` (or the vif's own script) for a vif.
    public init?(device: XenbusDevice) {
        guard let script = device.hotplugScript else { return nil }
        var environment = [
            "script": script, "XENBUS_TYPE": device.backendKind,
            "XENBUS_PATH": "backend/\(device.backendKind)/\(device.domid)/\(device.devid)", "XENBUS_BASE_PATH": "backend",
        ]
        switch device.backendKind {
        case "vif":
            environment["netdev"] = device.backendKeys["gatewaydev"] ?? ""
            environment["vif"] = "vif\(device.domid).\(device.devid)"
            if device.backendKeys["type"] == "vif_ioemu" { environment["INTERFACE"] = "vif\(device.domid).\(device.devid)-emu" }
            self.init(script: script, arguments: ["online", "type_if=vif"], environment: environment)
        default:
            self.init(script: script, arguments: ["add"], environment: environment)
        }
    }

    public var description: String { ([script] + arguments).joined(separator: " ") }
}

/// How a hotplug script ended.
public enum HotplugOutcome: Hashable, Sendable {
    case exited(Int32)
    case timedOut
    case notStarted(String)
}

/// Runs hotplug scripts: ``ProcessHotplugRunner`` in production, a fake in tests.
public protocol HotplugRunning {
    /// Runs `command` with stdin from /dev/null and its output on domb's standard error (as
    /// libxl does), stopping it after `seconds`.
    func run(_ command: HotplugCommand, seconds: Double) -> HotplugOutcome
}

/// A PV device that did not come up, with what each end showed.
public struct DeviceFailure: Error, CustomStringConvertible, Sendable {
    public var device: String
    public var reason: String

    public var description: String { "\(device): \(reason)" }
}

/// Brings up the PV devices of a launch the way `xl create` and `xl devd` do, and waits
/// until they connect.
///
/// The three steps follow the launch order (docs/boot.md):
/// 1. ``setUpLocalBackends(_:)`` before any domain is unpaused: every backend in this
///    domain (dom0 when domb is the toolstack there) must be taken by its driver
///    (`XenbusStateInitWait`); then the hotplug scripts run as libxl runs them, and what they
///    report is checked (`hotplug-status`, `hotplug-error`).
/// 2. ``waitForBackends(of:)`` before a domain is unpaused: each of its devices' backends
///    has reached InitWait or later, and where a hotplug script runs, it reported
///    `connected`. Backends in a driver domain are set up by `xl devd` there, so this can
///    only succeed once that driver domain runs; the start order unpauses it first.
/// 3. ``waitForConnection(of:)`` once the frontends run: both ends `XenbusStateConnected`.
public final class DeviceConnector {
    private let store: any XenstoreWatching
    private let hotplug: any HotplugRunning
    /// How long each wait may take, in seconds.
    public let timeout: Double
    /// libxl's `LIBXL_HOTPLUG_TIMEOUT`: how long a hotplug script may run.
    public let scriptTimeout: Double
    private let now: () -> Double
    private let progress: (String) -> Void
    /// Names of domains by domid, for messages (dom0 is "Domain-0").
    public var domainNames: [UInt32: String] = [:]

    public init(
        store: any XenstoreWatching, hotplug: any HotplugRunning, timeout: Double, scriptTimeout: Double = 40,
        now: @escaping () -> Double = DeviceConnector.monotonicSeconds,
        progress: @escaping (String) -> Void = { _ in }
    ) {
        self.store = store
        self.hotplug = hotplug
        self.timeout = timeout
        self.scriptTimeout = scriptTimeout
        self.now = now
        self.progress = progress
    }

    public static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// What one device's two ends show in Xenstore.
    struct Status {
        var frontend: XenbusState?
        var backend: XenbusState?
        var hotplugStatus: String?
        var hotplugError: String?
        var frontendError: String?
        var backendError: String?
    }

    /// Step 1: every backend in this domain taken by its driver, then its hotplug script.
    /// - Returns: how many hotplug scripts ran.
    @discardableResult
    public func setUpLocalBackends(_ devices: [XenbusDevice]) throws(DeviceFailure) -> Int {
        let own: UInt32
        do { own = try store.ownDomid() } catch {
            throw DeviceFailure(device: "this domain", reason: "cannot read its domid: \(error)")
        }
        let local = devices.filter { $0.usesXenbusStates && $0.backendDomid == own }
        guard !local.isEmpty else { return 0 }
        // libxl__wait_device_connection: the backend driver must have taken the device.
        try wait(for: local, what: "for the backend driver to take the device") { device, status in
            if let state = status.backend, state.rawValue >= XenbusState.initWait.rawValue, state.rawValue <= XenbusState.connected.rawValue {
                return .done
            }
            return .waiting(self.backendWaitReason(device, status))
        }
        var scripts = 0
        for device in local {
            guard let command = HotplugCommand(device: device) else { continue }
            scripts += 1
            let started = now()
            let outcome = hotplug.run(command, seconds: scriptTimeout)
            let status = read(device)
            switch outcome {
            case .exited(0):
                progress("\(device): \(command) (\(Self.seconds(now() - started)))")
            case .exited(let code):
                throw DeviceFailure(
                    device: "\(device)",
                    reason: "its hotplug script \(command) failed with exit status \(code)\(Self.hotplugError(status))")
            case .timedOut:
                throw DeviceFailure(
                    device: "\(device)", reason: "its hotplug script \(command) did not finish within \(Self.seconds(scriptTimeout)) and was killed")
            case .notStarted(let why):
                throw DeviceFailure(device: "\(device)", reason: "its hotplug script \(command) could not be started: \(why)")
            }
        }
        return scripts
    }

    /// Step 2: every backend of `devices` ready for its frontend.
    public func waitForBackends(of devices: [XenbusDevice]) throws(DeviceFailure) {
        let watched = devices.filter(\.usesXenbusStates)
        guard !watched.isEmpty else { return }
        try wait(for: watched, what: "for its backend") { device, status in
            if let failure = Self.hotplugFailure(status) { return .failed(failure) }
            guard let state = status.backend, state.rawValue >= XenbusState.initWait.rawValue, state.rawValue <= XenbusState.connected.rawValue
            else { return .waiting(self.backendWaitReason(device, status)) }
            if device.hotplugScript != nil, status.hotplugStatus != "connected" {
                let runner = device.backendDomid == 0 ? "domb" : "xl devd in \(self.name(device.backendDomid))"
                return .waiting(
                    "its backend \(device.backendPath) waits in state \(state) but its hotplug script (\(runner)) has not reported connected (hotplug-status \"\(status.hotplugStatus ?? "")\")")
            }
            return .done
        }
    }

    /// Step 3: both ends of every device `XenbusStateConnected`.
    public func waitForConnection(of devices: [XenbusDevice]) throws(DeviceFailure) {
        let watched = devices.filter(\.usesXenbusStates)
        guard !watched.isEmpty else { return }
        try wait(for: watched, what: "for it to connect") { device, status in
            if let failure = Self.hotplugFailure(status) { return .failed(failure) }
            for (end, state, error) in [("frontend", status.frontend, status.frontendError), ("backend", status.backend, status.backendError)] {
                if let state, state == .closing || state == .closed {
                    return .failed("its \(end) went to state \(state)\(error.map { ": \"\($0)\"" } ?? "") (\(Self.ends(device, status)))")
                }
            }
            if status.frontend == .connected && status.backend == .connected { return .done }
            return .waiting("not connected: \(Self.ends(device, status))")
        }
    }

    // MARK: Waiting

    enum Verdict {
        case done
        case waiting(String)
        case failed(String)
    }

    private func wait(for devices: [XenbusDevice], what: String, _ check: (XenbusDevice, Status) -> Verdict) throws(DeviceFailure) {
        let deadline = now() + timeout
        let paths = devices.flatMap { [$0.frontendPath, $0.backendPath] }
        while true {
            var pending: (XenbusDevice, String)?
            for device in devices {
                switch check(device, read(device)) {
                case .done: continue
                case .waiting(let why): if pending == nil { pending = (device, why) }
                case .failed(let why): throw DeviceFailure(device: "\(device)", reason: why)
                }
            }
            guard let (device, why) = pending else { return }
            let left = deadline - now()
            guard left > 0 else {
                throw DeviceFailure(device: "\(device)", reason: "after waiting \(Self.seconds(timeout)) \(what): \(why)")
            }
            do {
                // Watches wake us; a second at most between looks in case one is missed.
                try store.waitForChange(under: paths, seconds: min(left, 1))
            } catch {
                throw DeviceFailure(device: "\(device)", reason: "waiting for Xenstore failed: \(error)")
            }
        }
    }

    private func read(_ device: XenbusDevice) -> Status {
        func text(_ path: String) -> String? {
            (try? store.read(path))?.map { String(decoding: $0, as: UTF8.self) }
        }
        // Written by scripts and guests: untrusted, 300 bytes at most; the boot failure and
        // the supervisor's lines are escaped for the terminal where they are printed.
        func message(_ path: String) -> String? {
            (try? store.read(path))?.map { String(decoding: $0.prefix(300), as: UTF8.self) }
        }
        // xenbus_dev_error writes under the reporting domain's home: error/<its path>/error.
        func error(_ path: String, domid: UInt32) -> String? {
            let home = "/local/domain/\(domid)/"
            guard path.hasPrefix(home) else { return nil }
            return message("\(home)error/\(path.dropFirst(home.count))/error")
        }
        return Status(
            frontend: text("\(device.frontendPath)/state").flatMap(XenbusState.init(text:)),
            backend: text("\(device.backendPath)/state").flatMap(XenbusState.init(text:)),
            hotplugStatus: text("\(device.backendPath)/hotplug-status"),
            hotplugError: message("\(device.backendPath)/hotplug-error"),
            frontendError: error(device.frontendPath, domid: device.domid),
            backendError: error(device.backendPath, domid: device.backendDomid))
    }

    // MARK: Messages

    private func name(_ domid: UInt32) -> String { domid == 0 ? "Domain-0" : domainNames[domid] ?? "domain \(domid)" }

    private func backendWaitReason(_ device: XenbusDevice, _ status: Status) -> String {
        let state = status.backend.map { "is in state \($0)" } ?? "has no state node"
        var hint = "no backend driver in \(name(device.backendDomid)) took it"
        switch device.backendKind {
        case "vbd": hint += " (is xen-blkback loaded there?)"
        case "vif": hint += " (is xen-netback loaded there?)"
        case "qdisk": hint += " (qdisk backends are QEMU processes, which domb does not start)"
        default: break
        }
        return "its backend \(device.backendPath) \(state): \(hint)"
    }

    private static func ends(_ device: XenbusDevice, _ status: Status) -> String {
        "frontend \(device.frontendPath) state \(status.frontend.map(\.description) ?? "missing"), "
            + "backend \(device.backendPath) state \(status.backend.map(\.description) ?? "missing")"
    }

    private static func hotplugFailure(_ status: Status) -> String? {
        guard let value = status.hotplugStatus, value == "error" || value == "busy" else { return nil }
        return "its hotplug script reported \(value)\(hotplugError(status))"
    }

    private static func hotplugError(_ status: Status) -> String {
        status.hotplugError.map { ": \"\($0)\"" } ?? ""
    }

    static func seconds(_ value: Double) -> String { String(format: "%.1f s", value) }
}

/// Runs hotplug scripts as child processes, as libxl does (`libxl__exec`): stdin
/// `/dev/null`, output on standard error, the caller's environment plus the command's,
/// SIGTERM and SIGINT at their default action and no signal blocked in the child.
public struct ProcessHotplugRunner: HotplugRunning {
    public init() {}

    public func run(_ command: HotplugCommand, seconds: Double) -> HotplugOutcome {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in command.environment { environment[key] = value }
        let argv = ([command.script] + command.arguments).map { strdup($0) }
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") }
        defer { for pointer in argv + envp { free(pointer) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid: pid_t = 0
        let spawned = (argv + [nil]).withUnsafeBufferPointer { args in
            (envp + [nil]).withUnsafeBufferPointer { env in
                guard let args = args.baseAddress, let env = env.baseAddress else { return EINVAL }
                return posix_spawn(&pid, command.script, &actions, &attributes, args, env)
            }
        }
        guard spawned == 0 else { return .notStarted(String(cString: strerror(spawned))) }
        // Polled: a script takes seconds, so 20 ms of latency costs nothing.
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, seconds) * 1e9)
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result < 0 && errno != EINTR { return .notStarted("waitpid: \(String(cString: strerror(errno)))") }
            if DispatchTime.now().uptimeNanoseconds >= deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return .timedOut
            }
            usleep(20_000)
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG (function-like macros in C).
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .exited(128 + signal)
    }
}
