//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombTPM
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The signal that asked the launch to stop, 0 while none has. Written by the handler
/// (an atomic store is async-signal-safe), read by the boot flow at every step boundary.
private let pendingSignal = Atomic<Int32>(0)

/// SIGTERM and SIGINT during a launch: instead of dying mid-measurement (PCRs extended,
/// no log), domb notes the signal and the boot flow stops at the next event boundary,
/// persists the log of exactly what was extended, tears down what was built and exits
/// non-zero. After the first domain is unpaused the launch is committed and completes.
///
/// Handlers are installed with `SA_RESTART`, so a TPM command in flight is not cut short
/// by `EINTR`.
public enum LaunchSignals {
    /// The signals handled.
    public static let handled: [Int32] = [SIGTERM, SIGINT]

    /// Installs the handlers (idempotent). A signal that arrives before this takes its
    /// default action, which is safe: nothing has been extended yet.
    public static func install() {
        for signal in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in pendingSignal.store(number, ordering: .relaxed) }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
        // A parent may have started domb with these blocked (Foundation's Process does):
        // unblock them — after the handlers are in place, so one already pending is caught —
        // or the launch could not be stopped at all.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for signal in handled { sigaddset(&unblock, signal) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// Gives SIGTERM and SIGINT their default action again (they end the process): for the
    /// supervision after a launch, which has nothing to tear down (the domains stay).
    public static func restoreDefaults() {
        for signal in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = SIG_DFL
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }

    /// The pending signal, if one arrived since the last ``reset()``.
    public static var pending: Int32? {
        let value = pendingSignal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Forgets a pending signal (tests).
    public static func reset() { pendingSignal.store(0, ordering: .relaxed) }

    /// "SIGTERM", "SIGINT", or "signal N".
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        default: "signal \(signal)"
        }
    }

    /// The conventional exit status after `signal` (128 + N, as a shell reports it).
    public static func exitStatus(_ signal: Int32) -> Int32 { 128 + signal }
}

/// Where the launch lock of a TPM lives: one file per TPM
/// (``TCTIConfiguration/lockName``), so that two launches on one TPM exclude each other
/// however its TCTI is spelled, and launches on different TPMs do not.
public enum LaunchLock {
    public static func path(directory: String, tpm: TCTIConfiguration) -> String {
        "\(directory)/launch-\(tpm.lockName).lock"
    }
}
