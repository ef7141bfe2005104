//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import Synchronization

/// Progress of one long piece of work, counted in bytes: the one progress type of domb.
///
/// The command that starts the work makes it with an observer (the CLI's terminal line);
/// the libraries feed it from where the bytes pass — ``MultiHasher`` counts every byte it
/// hashes, the event-log replay its parse position — and never draw anything themselves.
/// Feeding is cheap enough for the hashing paths: ``advance(by:)`` takes an uncontended
/// lock and reads the clock once per call (a call per 64–512 KiB chunk there), and the
/// observer runs at most once per ``interval`` (plus once when the work starts and once at
/// ``finish()``).
public final class ByteProgress: Sendable {
    /// What the observer is shown.
    public struct Snapshot: Sendable, Equatable {
        /// Bytes done so far.
        public var completed: UInt64
        /// Bytes expected in all (0 while unknown).
        public var total: UInt64
        /// What is being worked on now (a file, a bundle member); untrusted text — the
        /// observer escapes it before it reaches a terminal.
        public var item: String
        /// Time since the first byte was expected.
        public var elapsed: Duration
        /// True for the last snapshot, sent by ``finish()``.
        public var finished: Bool

        /// Bytes per second so far; nil before any time has passed.
        public var bytesPerSecond: Double? {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return seconds > 0 ? Double(completed) / seconds : nil
        }
    }

    /// The least time between two observer calls.
    public let interval: Duration
    private let observer: @Sendable (Snapshot) -> Void
    private let state: Mutex<State>

    private struct State {
        var completed: UInt64 = 0
        var total: UInt64 = 0
        var item = ""
        var start: ContinuousClock.Instant?
        var lastReport: ContinuousClock.Instant?
        var finished = false
    }

    /// - Parameters:
    ///   - interval: the least time between two observer calls (100 ms: ten redraws a second).
    ///   - observer: called with the state, on the thread that fed the progress.
    public init(interval: Duration = .milliseconds(100), observer: @escaping @Sendable (Snapshot) -> Void) {
        self.interval = interval
        self.observer = observer
        state = Mutex(State())
    }

    /// Adds `bytes` to the work expected (several calls add up: one per file to hash).
    /// The first call starts the clock and shows the work at 0.
    public func expect(_ bytes: UInt64) {
        let snapshot: Snapshot? = state.withLock { state in
            state.total &+= bytes
            guard state.start == nil else { return nil }
            let now = ContinuousClock.now
            state.start = now
            state.lastReport = now
            return Self.snapshot(state, now: now)
        }
        if let snapshot { observer(snapshot) }
    }

    /// Names what is being worked on from now on (shown with the next snapshot).
    public func begin(_ item: String) {
        state.withLock { $0.item = item }
    }

    /// Counts `bytes` more done.
    public func advance(by bytes: Int) {
        guard bytes > 0 else { return }
        report { $0.completed &+= UInt64(bytes) }
    }

    /// Sets the bytes done (for work that knows its position, such as a parser's offset).
    public func update(completed: UInt64) {
        report { $0.completed = completed }
    }

    /// Ends the work: the observer gets a last snapshot with ``Snapshot/finished`` set, and
    /// later calls change nothing. Calling it twice is harmless.
    public func finish() {
        let snapshot: Snapshot? = state.withLock { state in
            guard !state.finished, state.start != nil else {
                state.finished = true
                return nil
            }
            state.finished = true
            return Self.snapshot(state, now: .now)
        }
        if let snapshot { observer(snapshot) }
    }

    /// The state now, without calling the observer (for tests and summaries).
    public var snapshot: Snapshot {
        state.withLock { Self.snapshot($0, now: .now) }
    }

    private func report(_ change: (inout State) -> Void) {
        let snapshot: Snapshot? = state.withLock { state in
            guard !state.finished else { return nil }
            change(&state)
            let now = ContinuousClock.now
            if state.start == nil { state.start = now }
            if let last = state.lastReport, now - last < interval { return nil }
            state.lastReport = now
            return Self.snapshot(state, now: now)
        }
        if let snapshot { observer(snapshot) }
    }

    private static func snapshot(_ state: State, now: ContinuousClock.Instant) -> Snapshot {
        Snapshot(
            completed: state.completed, total: state.total, item: state.item,
            elapsed: state.start.map { now - $0 } ?? .zero, finished: state.finished)
    }
}
