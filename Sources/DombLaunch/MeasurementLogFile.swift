//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles

/// Reading and atomically replacing an event log file.
public enum MeasurementLogFile {
    /// Largest log file read (the parser's own limit).
    public static let maximumSize = EventLog.Limits.default.maximumLogSize

    /// The file's bytes, or nil when it does not exist. Read through ``InputFile`` (a
    /// regular file; securityfs' `binary_bios_measurements` reports size 0 and is read to
    /// its end).
    public static func read(path: String) throws(FileError) -> [UInt8]? {
        try InputFile.readIfPresent(path, limit: maximumSize)
    }

    /// Replaces `path` with `bytes` atomically (``AtomicFile``): a crash leaves either the
    /// old log or the new one, never a torn one.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, inputs: [String] = []) throws(FileError) {
        try AtomicFile.write(bytes, to: path, inputs: inputs)
    }
}
