//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import Foundation
import Synchronization

/// `--no-progress`, on every command that can take more than a second on big inputs
/// (`build`, `boot`, `measure`, `digest`, `predict`, `bundle verify|extract`, `log replay`,
/// `attest verify --bundle`).
struct ProgressOptions: ParsableArguments {
    @Flag(help: "Never show progress. It is shown only when standard error is a terminal, and never with --json.")
    var noProgress = false

    /// The progress to feed, drawn on standard error as one line; nil when it would not be
    /// shown (``noProgress``, `json`, or standard error is not a terminal), so the
    /// libraries skip the counting altogether.
    ///
    /// - Parameters:
    ///   - action: what is being done, as the line starts ("verifying").
    ///   - file: the file it is done to; the line shows its last path component.
    func progress(_ action: String, _ file: String? = nil, json: Bool = false) -> TerminalProgress? {
        guard !noProgress, !json, isatty(STDERR_FILENO) == 1 else { return nil }
        return TerminalProgress(action: file.map { "\(action) \(URL(fileURLWithPath: $0).lastPathComponent)" } ?? action)
    }
}

/// The one progress line: bytes done of the total, percent, rate and the current item, on
/// standard error, redrawn in place (`\r` and erase-to-end-of-line) and erased when the
/// work finishes, so the command's own output follows on a clean line.
final class TerminalProgress: Sendable {
    /// Feed this to the libraries.
    let bytes: ByteProgress
    private let screen: Screen

    /// Whether a line is on the screen; shared by the observer and ``clear()``.
    private final class Screen: Sendable {
        let drawn = Mutex(false)

        func draw(_ text: String?) {
            drawn.withLock { drawn in
                if let text {
                    TerminalProgress.write("\r" + text + "\u{1B}[K")
                    drawn = true
                } else if drawn {
                    TerminalProgress.write("\r\u{1B}[K")
                    drawn = false
                }
            }
        }
    }

    init(action: String) {
        let screen = Screen()
        self.screen = screen
        let prefix = TerminalText.escape(action)
        bytes = ByteProgress { snapshot in
            screen.draw(snapshot.finished ? nil : Self.render(prefix, snapshot, width: Self.terminalWidth()))
        }
    }

    /// Erases the line (before other output on the terminal); the next update redraws it.
    func clear() { screen.draw(nil) }

    /// Ends the work and erases the line.
    func finish() { bytes.finish() }

    /// "verifying launch.bundle: 48% 123.4 MiB of 256.0 MiB, 812.3 MiB/s modules/web/kernel",
    /// cut to the terminal's width (the item, untrusted, escaped).
    static func render(_ prefix: String, _ snapshot: ByteProgress.Snapshot, width: Int) -> String {
        var text = "\(prefix): "
        if snapshot.total > 0 {
            let percent = min(100, snapshot.completed * 100 / snapshot.total)
            text += "\(percent)% \(size(snapshot.completed)) of \(size(snapshot.total))"
        } else {
            text += size(snapshot.completed)
        }
        if let rate = snapshot.bytesPerSecond, snapshot.completed > 0 { text += ", \(size(UInt64(rate)))/s" }
        if !snapshot.item.isEmpty { text += " " + TerminalText.escape(snapshot.item) }
        // One column short of the width: a full line would wrap on some terminals.
        return String(text.prefix(max(20, width - 1)))
    }

    /// Bytes in KiB, MiB or GiB with one decimal.
    static func size(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f", value) + " " + units[unit]
    }

    private static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    fileprivate static func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }  // a closed terminal loses the line, nothing more
            bytes = bytes.dropFirst(written)
        }
    }
}
