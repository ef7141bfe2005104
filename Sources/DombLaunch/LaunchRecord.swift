//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

/// What a launch did, step by step, as it did it. A failure message is rendered from this
/// record, never written by hand, so it can only say what ran: "no domain was unpaused"
/// appears because no unpause is in the record.
public struct LaunchRecord: Sendable {
    /// One completed action.
    public enum Step: Hashable, Sendable {
        case verified(bundle: String, generation: UInt64, signer: String)
        case locked(path: String)
        case logDestinationReady(path: String, reservedBytes: Int)
        case built(BuiltDomain)
        case xenstoreWritten(nodes: Int, attempts: Int)
        /// The plan backend has no Xenstore: the plan was resolved, not written.
        case xenstoreResolved(nodes: Int)
        case logWritten(path: String, events: Int)
        case pcrsMatchLog(pcrs: [Int], banks: [HashAlgorithm])
        case secretsReleased(String)
        /// The released secrets were taken back (the launch failed after their release).
        case secretsWithdrawn(problems: [String])
        /// The hotplug scripts of the backends in this domain ran (docs/boot.md, "Devices").
        case backendsSetUp(devices: Int)
        case unpaused(BuiltDomain)
        /// Built and left paused (`domb,paused`).
        case leftPaused(BuiltDomain)
        /// Both ends of every device of the running domains reached XenbusStateConnected.
        case devicesConnected(Int)
        case destroyed(BuiltDomain)
        case destroyFailed(BuiltDomain, reason: String)
        /// The log could not be renamed into place; its temporary file was kept.
        case logKept(temporaryPath: String, path: String, events: Int, reason: String)
        /// The log could not be written at all.
        case logLost(path: String, events: Int, reason: String)
    }

    public private(set) var steps: [Step] = []
    /// Every event that reached the TPM, in order: the measurement sink's log, which
    /// records an event only once its extend succeeded.
    public internal(set) var extended: [UnverifiedEvent] = []
    /// The banks each event was extended in.
    public internal(set) var banks: [HashAlgorithm] = []

    public init() {}

    mutating func append(_ step: Step) { steps.append(step) }

    public var built: [BuiltDomain] {
        steps.compactMap { if case .built(let domain) = $0 { domain } else { nil } }
    }
    public var unpaused: [BuiltDomain] {
        steps.compactMap { if case .unpaused(let domain) = $0 { domain } else { nil } }
    }
    public var destroyed: [BuiltDomain] {
        steps.compactMap { if case .destroyed(let domain) = $0 { domain } else { nil } }
    }
    /// Domains built and neither destroyed nor known to be gone: still there, paused or running.
    public var remaining: [BuiltDomain] {
        let gone = Set(destroyed.map(\.name))
        return built.filter { !gone.contains($0.name) }
    }
    /// PCRs closed by an EV_SEPARATOR in this launch.
    public var closedPCRs: [Int] {
        Set(extended.filter { $0.type == .separator }.map { Int($0.pcr) }).sorted()
    }

    /// The record as lines a person reads: one per kind of action, in order, ending with
    /// whether any domain was unpaused. Untrusted text is escaped (``TerminalText``).
    public var summary: [String] {
        var lines: [String] = []
        var extendedSaid = false
        func sayExtended() {
            guard !extendedSaid else { return }
            extendedSaid = true
            lines.append(extendedLine)
        }
        for step in steps {
            switch step {
            case .verified(let bundle, let generation, let signer):
                lines.append("verified \(TerminalText.escape(bundle)): generation \(generation), signed by \(TerminalText.escape(signer))")
            case .locked(let path):
                lines.append("took the launch lock \(TerminalText.escape(path))")
            case .logDestinationReady(let path, let reserved):
                lines.append("checked the event-log destination \(TerminalText.escape(path)) (\(reserved) bytes reserved)")
            case .built, .xenstoreWritten, .xenstoreResolved, .logWritten, .logKept, .logLost, .pcrsMatchLog,
                .secretsReleased, .secretsWithdrawn, .backendsSetUp, .unpaused, .leftPaused, .devicesConnected, .destroyed, .destroyFailed:
                break
            }
        }
        sayExtended()
        let built = self.built
        if !built.isEmpty {
            lines.append("built \(built.map { "\($0.name) (domid \($0.domid))" }.joined(separator: ", ")), paused")
        }
        for step in steps {
            switch step {
            case .xenstoreWritten(let nodes, let attempts):
                lines.append("wrote \(nodes) Xenstore nodes in one transaction (\(attempts) attempt\(attempts == 1 ? "" : "s"))")
            case .xenstoreResolved(let nodes):
                lines.append("resolved the Xenstore plan: \(nodes) nodes (not written: no Xenstore with this backend)")
            case .logWritten(let path, let events):
                lines.append("wrote the event log \(TerminalText.escape(path)): exactly the \(events) event(s) extended")
            case .logKept(let temporary, let path, let events, let reason):
                lines.append(
                    "could not put the event log in place at \(TerminalText.escape(path)) (\(reason)); the log of the \(events) event(s) extended is kept at \(TerminalText.escape(temporary))")
            case .logLost(let path, let events, let reason):
                lines.append(
                    "could not write the event log of the \(events) event(s) extended to \(TerminalText.escape(path)) (\(reason)): no log on disk explains the PCRs")
            case .pcrsMatchLog(let pcrs, let banks):
                lines.append("read PCR \(pcrs.map(String.init).joined(separator: ", ")) back: equal to the log's replay in \(banks.map(\.name).joined(separator: ", "))")
            case .secretsReleased(let what):
                lines.append(what)
            case .secretsWithdrawn(let problems):
                lines.append(
                    problems.isEmpty
                        ? "took the released secrets back"
                        : "took the released secrets back, except: \(problems.map { TerminalText.escape($0) }.joined(separator: "; "))")
            case .backendsSetUp(let devices):
                lines.append("set up \(devices) device backend(s) in this domain (taken by their drivers, hotplug scripts run)")
            default:
                break
            }
        }
        let unpaused = self.unpaused
        if unpaused.isEmpty {
            lines.append("no domain was unpaused")
        } else {
            lines.append("unpaused: \(unpaused.map(\.name).joined(separator: ", "))")
        }
        for step in steps {
            switch step {
            case .leftPaused(let domain): lines.append("left \(domain.name) paused (domb,paused)")
            case .devicesConnected(let count): lines.append("\(count) PV device(s) connected at both ends")
            default: break
            }
        }
        let destroyed = self.destroyed
        if !destroyed.isEmpty { lines.append("destroyed: \(destroyed.map(\.name).joined(separator: ", "))") }
        for step in steps {
            if case .destroyFailed(let domain, let reason) = step {
                lines.append("could NOT destroy \(domain.name) (domid \(domain.domid)): \(reason): it is still there")
            }
        }
        return lines
    }

    /// "extended N events into PCR 12 (k), PCR 13 (m) in sha1, sha256; separators …".
    private var extendedLine: String {
        guard !extended.isEmpty else { return "no PCR was extended" }
        var perPCR: [Int: Int] = [:]
        for event in extended { perPCR[Int(event.pcr), default: 0] += 1 }
        let pcrs = perPCR.keys.sorted().map { "PCR \($0) (\(perPCR[$0] ?? 0))" }.joined(separator: ", ")
        var line = "extended \(extended.count) event(s) into \(pcrs) in \(banks.map(\.name).joined(separator: ", "))"
        let open = Set(perPCR.keys).subtracting(closedPCRs).sorted()
        if open.isEmpty {
            line += "; every launch PCR is closed by its EV_SEPARATOR"
        } else {
            line += "; no EV_SEPARATOR on PCR \(open.map(String.init).joined(separator: ", ")): a verifier sees an unfinished launch"
        }
        return line
    }
}
