//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombCore
import DombCrypto
import DombFiles
import DombLaunch
import DombTPM
import Foundation

/// `domb measure`: measure files (or strings) into a PCR and log them, as
/// `systemd-pcrextend` does for strings.
struct MeasureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Measure files into a PCR of every active bank and record them in a TCG event log.",
        discussion: """
            Each FILE is read once and hashed in every active bank in one pass, extended with one \
            TPM2_PCR_Extend, and logged as a domb module record (EV_EVENT_TAG; the digest is the \
            file's, so `openssl dgst` reproduces it). With --inline, the content is carried in the \
            log instead (EV_IPL; digest = hash of the event data). --string measures text inline. \
            The log is appended to if it exists: its banks must be the TPM's and it must replay to \
            the TPM's PCRs (a log of another boot or another TPM is refused before anything is \
            extended); a new log needs the PCRs it extends in their reset state. The log is written \
            atomically, also after a failure (it then holds exactly what was extended). The launch \
            lock of the TPM is held meanwhile (a running `domb boot` is not interleaved). \
            Default PCRs come from the policy: images 13, configuration 12.
            """ + "\n\n" + ExitStatus.help(success: "everything was measured and logged", refused: "an input, the log or the PCRs were refused (what was extended is in the log)"))

    @OptionGroup var tpm: TPMOptions
    @Option(help: "PCR to extend (default: from the policy).") var pcr: Int?
    @Option(help: "Event log to create or append to.") var log: String
    @Option(help: "PCR policy JSON (default: the built-in one, as policies/pcr-policy.json).") var policy: String?
    @Option(help: "Domain the files belong to (recorded in module records).") var domain: String = ""
    @Option(help: "Role recorded in module records (kernel, ramdisk, firmware, file…).") var role: String = "file"
    @Flag(help: "Carry each file's content inline in the log (configuration record).") var inline = false
    @Option(help: "Kind recorded in inline configuration records.") var kind: String = "config"
    @Option(name: .customLong("string"), help: "Measure this text inline (repeatable).") var strings: [String] = []
    @Flag(help: "Close the launch: append an EV_SEPARATOR on every PCR measured.") var close = false
    @Flag(help: "Print to stderr how many TPM commands were sent for how many extended events.") var stats = false
    @Option(help: "Directory of the launch locks (one per TPM, shared with `domb boot`).") var lockDir: String = "/run/domb"
    @OptionGroup var progressOptions: ProgressOptions
    @Argument(help: "Files to measure.") var files: [String] = []

    func validate() throws {
        if let pcr, !PCRPolicy.isExtendableFromLocality0(pcr) {
            throw ValidationError("PCR \(pcr) cannot be extended by domb: use 0–16 or 23")
        }
        if files.isEmpty && strings.isEmpty && !close { throw ValidationError("nothing to measure: give FILE… or --string") }
    }

    func run() async throws {
        // Refuse unreadable inputs before anything is extended, so a typo does not leave a
        // half-measured set behind.
        for file in files { try requireInputFile(file) }
        let policy = try loadPolicy()
        let existing = try MeasurementLogFile.read(path: log)
        // The log's destination is checked (and its temporary file made) before anything
        // is extended: the log may not be one of the files measured.
        let output = try AtomicFile(path: log, inputs: files + [self.policy].compactMap { $0 })
        let connection = try tpm.open()
        let sink = try ContextError.wrap(log) {
            try TPMMeasurementSink(tpm: connection, requiredBanks: policy.requiredBanks, existingLog: existing)
        }
        // One writer per TPM at a time, and only onto a log that explains the PCRs: what is
        // appended must replay, or the log is worthless to every verifier.
        let lock = try FileLock(path: LaunchLock.path(directory: lockDir, tpm: connection.configuration))
        defer { lock.release() }
        var targets = Set(sink.log.extendedPCRs)
        if !files.isEmpty { targets.insert(pcr ?? (inline ? policy.pcr(forConfigurationKind: kind) : policy.pcrs.image)) }
        if !strings.isEmpty { targets.insert(pcr ?? policy.pcr(forConfigurationKind: "string")) }
        let current = try connection.readPCRs(targets.sorted(), banks: sink.banks)
        let differences = sink.log.differences(from: current, pcrs: targets.sorted(), using: OpenSSLPCRHasher())
        guard differences.isEmpty else {
            throw CommandError(
                existing == nil
                    ? "\(log): a new log cannot explain PCRs that are not in their reset state: \(differences.joined(separator: "; ")); continue the log that explains them, or measure into another PCR"
                    : "\(log) does not replay to this TPM's PCRs (a log of another boot or another TPM): \(differences.joined(separator: "; ")); give a new --log")
        }
        let measurer = Measurer(sink: sink, policy: policy)
        let progress = progressOptions.progress("measuring")
        var failure: (any Error)?
        do {
            defer { progress?.finish() }
            for file in files {
                let label = URL(fileURLWithPath: file).lastPathComponent
                let event = try ContextError.wrap(file) { () throws -> UnverifiedEvent in
                    if inline {
                        let content = try InputFile.read(file, limit: ConfigurationRecord.maximumContentSize)
                        return try measurer.measureConfiguration(kind: kind, subject: domain, content: content, pcr: pcr)
                    }
                    return try measurer.measureFile(
                        path: file, domain: domain, role: role, label: label, pcr: pcr, progress: progress?.bytes)
                }
                progress?.clear()
                report(event, file)
            }
            for text in strings {
                let event = try measurer.measureConfiguration(
                    kind: "string", subject: domain, content: Array(text.utf8), pcr: pcr)
                report(event, "\"\(text)\"")
            }
            if close { try measurer.closeLaunch() }
        } catch {
            failure = error
        }
        // Whatever was extended must be in the log: write it even after a failure.
        try output.replaceContents(sink.logBytes)
        try output.commit()
        if stats {
            let extended = sink.log.events.count - (existing.map { (try? EventLog(parsing: $0).events.count) ?? 0 } ?? 0)
            FileHandle.standardError.write(
                Data("tpm-commands \(connection.commandCount) (1 TPM2_GetCapability + extends) extended-events \(extended)\n".utf8))
        }
        if let failure { throw failure }
    }

    private func loadPolicy() throws -> PCRPolicy {
        guard let policy else { return .default }
        let bytes = try InputFile.read(policy, limit: 1 << 20)
        return try ContextError.wrap(policy) { try PCRPolicy(json: bytes) }
    }

    private func report(_ event: UnverifiedEvent, _ what: String) {
        let sha256 = event.digests[.sha256].map { " sha256:\($0.hexString)" } ?? ""
        print("PCR \(event.pcr) \(event.type)\(sha256) \(what)")
    }
}

/// `domb digest`: the digests domb would extend for files, every bank in one read pass.
struct DigestCommand: AsyncParsableCommand {
    /// User plus system CPU time of this process (as `openssl speed` counts time).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }

    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print the digests of files in several banks, computed in one read pass.",
        discussion: """
            The banks are hashed in parallel, one thread per core this process may use (the affinity mask and a \
            cgroup CPU quota count); \(HashingParallelism.environmentVariable)=N sets the number of threads and \
            \(HashingParallelism.environmentVariable)=1 forces the single-thread path. The same holds for build, \
            boot, measure and bundle verify.
            """ + "\n\n" + ExitStatus.help(success: "every file was hashed", refused: "a bank cannot be hashed"))

    @Option(help: "Banks, e.g. sha1,sha256,sha384,sha512 (default sha256).") var banks: String = "sha256"
    @Flag(help: "Print bytes read, read() calls, hashing threads and throughput to stderr.") var stats = false
    @OptionGroup var progressOptions: ProgressOptions
    @Argument(help: "Files to hash.") var files: [String]

    func validate() throws { _ = try parseBankList(banks) }

    func run() async throws {
        let progress = progressOptions.progress("hashing")
        defer { progress?.finish() }
        let digester = FileDigester(algorithms: try parseBankList(banks), progress: progress?.bytes)
        for file in files {
            let start = ContinuousClock.now
            let cpuStart = Self.cpuSeconds()
            let result = try digester.digest(path: file)
            let cpu = Self.cpuSeconds() - cpuStart
            let elapsed = ContinuousClock.now - start
            progress?.clear()
            for digest in result.digests.digests { print("\(digest.algorithm.name):\(digest.bytes.hexString)  \(file)") }
            if stats {
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let rate = seconds > 0 ? Double(result.bytesRead) / seconds / 1_048_576 : 0
                let cpuRate = cpu > 0 ? Double(result.bytesRead) / cpu / 1_048_576 : 0
                FileHandle.standardError.write(
                    Data(
                        "\(file): size \(result.size) bytes-read \(result.bytesRead) read-calls \(result.readCalls) hash-threads \(result.hashingThreads) wall-seconds \(seconds) cpu-seconds \(cpu) wall-MiB/s \(rate) cpu-MiB/s \(cpuRate)\n"
                            .utf8))
            }
        }
    }
}
