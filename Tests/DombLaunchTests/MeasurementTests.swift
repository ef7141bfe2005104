//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombCrypto
import DombLaunch
import DombTPM
import DombTestSupport
import Foundation
import Testing

@Suite struct MeasurementTests {
    /// A small launch: two modules, a command line, a configuration blob.
    static func plan(kernel: [UInt8], ramdisk: [UInt8], banks: [HashAlgorithm]) throws -> [PlannedMeasurement] {
        [
            .configuration(pcr: 12, ConfigurationRecord(kind: "cmdline", subject: "dom1", content: Array("console=hvc0 root=/dev/xvda".utf8))),
            .module(pcr: 13, ModuleRecord(domain: "dom1", role: "kernel", size: UInt64(kernel.count), label: "vmlinuz",
                                         digests: try MultiHasher.digest(kernel, algorithms: banks))),
            .module(pcr: 13, ModuleRecord(domain: "dom1", role: "ramdisk", size: UInt64(ramdisk.count), label: "initrd",
                                         digests: try MultiHasher.digest(ramdisk, algorithms: banks))),
            .configuration(pcr: 12, ConfigurationRecord(kind: "config", subject: "", content: [0xD0, 0x0D, 0xFE, 0xED, 0, 1, 2])),
        ]
    }

    /// Measures into swtpm and checks the result with tpm2_eventlog, tpm2_pcrread and
    /// openssl dgst, and against an offline prediction of the same plan.
    @Test func measuredLaunchAgreesWithTpm2ToolsOpenSSLAndPrediction() throws {
        let directory = try TemporaryDirectory()
        let kernel = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let ramdisk = Array("ramdisk bytes".utf8)
        let kernelPath = try directory.write("vmlinuz", kernel)
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            let sink = try TPMMeasurementSink(tpm: tpm, requiredBanks: [.sha256])
            let banks = sink.banks
            let measurer = Measurer(sink: sink)
            let plan = try Self.plan(kernel: kernel, ramdisk: ramdisk, banks: banks)

            let before = tpm.commandCount
            for step in plan { try measurer.perform(step) }
            try measurer.closeLaunch()
            let extended = sink.log.events.filter(\.isExtended).count
            #expect(extended == plan.count + 2, "four measurements, two separators")
            #expect(tpm.commandCount - before == extended, "exactly one TPM command per extended event")

            // Prediction without a TPM gives the same bytes and PCR values.
            let prediction = try MeasurementPrediction.predict(plan, banks: banks)
            #expect(prediction.logBytes == sink.logBytes)

            let read = try tpm.readPCRs([12, 13], banks: banks)
            tpm.close()
            let replayed = try EventLog(parsing: sink.logBytes).replay(using: OpenSSLPCRHasher())
            for bank in banks {
                for pcr in [12, 13] {
                    #expect(replayed[bank, pcr] == read[bank, pcr], "\(bank) PCR \(pcr): replay = TPM")
                    #expect(prediction.pcrs[bank, pcr] == read[bank, pcr], "\(bank) PCR \(pcr): prediction = TPM")
                }
            }

            // tpm2_eventlog parses it without a warning and replays to the same values.
            let logPath = try directory.write("log.bin", sink.logBytes)
            let tools = try Tools.run("tpm2_eventlog", [logPath])
            #expect(tools.stderrText.isEmpty, "tpm2_eventlog stderr: \(tools.stderrText)")
            let section = try #require(tools.stdoutText.range(of: "\npcrs:"))
            let toolValues = try PCRValues(parsingText: String(tools.stdoutText[section.upperBound...]))
            #expect(toolValues == replayed)

            // tpm2_pcrread on the same TPM.
            for bank in banks {
                let output = directory.file("pcrs-\(bank.name).bin")
                try Tools.run("tpm2_pcrread", ["-T", swtpm.tcti, "\(bank.name):12,13", "-o", output],
                              environment: ["TSS2_LOG": "all+none"])
                let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
                #expect(raw == (read[bank, 12] ?? []) + (read[bank, 13] ?? []), "\(bank): tpm2_pcrread")
            }

            // The kernel's event digest is the file's; a configuration event's is its data's.
            let log = try EventLog(parsing: sink.logBytes)
            let kernelEvent = try #require(log.events.first { $0.type == .eventTag })
            let openssl = try Tools.run("openssl", ["dgst", "-sha256", "-binary", kernelPath]).stdout
            #expect(kernelEvent.digests[.sha256] == openssl)
            let configEvent = try #require(log.events.first { $0.type == .ipl })
            let dataPath = try directory.write("event-data", configEvent.data)
            for bank in banks {
                let expected = try Tools.run("openssl", ["dgst", "-\(bank.name)", "-binary", dataPath]).stdout
                #expect(configEvent.digests[bank] == expected, "\(bank) config digest = openssl dgst of event data")
            }
            // And the verifier agrees.
            #expect(log.verify(against: read, using: OpenSSLPCRHasher()).isVerified)
            for event in log.events { #expect(DombEvent.consistencyProblems(event, using: OpenSSLPCRHasher()).isEmpty) }
        }
    }

    /// No strict prefix of a domb-written log parses, except at a record boundary (where it
    /// is a shorter, valid log).
    @Test func dripFeedOfADombLog() throws {
        let plan = try Self.plan(kernel: [1, 2, 3], ramdisk: [4], banks: [.sha1, .sha256])
        let prediction = try MeasurementPrediction.predict(plan, banks: [.sha1, .sha256])
        let bytes = prediction.logBytes
        var boundaries: Set<Int> = [bytes.count]
        if let specID = prediction.log.specID { boundaries.insert(EventLog.headerRecord(specID).count) }
        for event in prediction.log.events { boundaries.insert(event.offset) }
        #expect(boundaries.count == prediction.log.events.count + 1)
        for length in 0..<bytes.count {
            let parsed = try? EventLog(parsing: bytes[..<length], strict: true)
            #expect((parsed != nil) == boundaries.contains(length), "prefix of \(length) bytes")
        }
        #expect(try EventLog(parsing: bytes, strict: true).serialized() == bytes)
    }

    @Test func missingRequiredBankIsRefusedBeforeAnyExtend() throws {
        try Swtpm.with { swtpm in
            let tpm = try TPM(try TCTIConfiguration(parsing: swtpm.tcti))
            #expect {
                try TPMMeasurementSink(tpm: tpm, requiredBanks: [.sha256, .sm3_256])
            } throws: { error in
                "\(error)".contains("requires bank(s) sm3_256")
            }
            #expect(tpm.commandCount == 1, "only the capability query")
        }
    }

    @Test func appendingRequiresTheSameBanks() throws {
        let sha256Only = try SoftwareMeasurementSink(banks: [.sha256])
        try Measurer(sink: sha256Only).measureModule([1, 2, 3], domain: "d", role: "kernel", label: "k")
        #expect(throws: ParseError.self) {
            try SoftwareMeasurementSink(banks: [.sha1, .sha256], existingLog: sha256Only.logBytes)
        }
        // Continuing with the same banks carries the PCR values on.
        let continued = try SoftwareMeasurementSink(banks: [.sha256], existingLog: sha256Only.logBytes)
        #expect(continued.pcrs == sha256Only.pcrs)
        try Measurer(sink: continued).measureModule([4], domain: "d", role: "ramdisk", label: "r")
        let replayed = try EventLog(parsing: continued.logBytes).replay(using: OpenSSLPCRHasher())
        #expect(replayed == continued.pcrs)
    }

    @Test func nothingIsMeasuredAfterTheSeparator() throws {
        let sink = try SoftwareMeasurementSink(banks: [.sha256])
        let measurer = Measurer(sink: sink)
        try measurer.measureConfiguration(kind: "cmdline", subject: "dom0", content: Array("quiet".utf8))
        try measurer.closeLaunch()
        #expect(sink.log.events.last?.type == .separator)
        #expect(sink.log.events.last?.pcr == 12)
        #expect(throws: ParseError.self) { try measurer.measureModule([1], domain: "x", role: "kernel", label: "k") }
        // A new measurer over the same log sees PCR 12 closed.
        #expect(throws: ParseError.self) {
            try Measurer(sink: sink).measureConfiguration(kind: "cmdline", subject: "dom0", content: [1])
        }
        #expect(sink.extendCount == 2)
    }

    @Test func moduleRecordRoundTripsAndRefusesDamage() throws {
        let record = ModuleRecord(
            domain: "dom1", role: "kernel", size: 42, label: "vmlinuz",
            digests: try MultiHasher.digest([1, 2, 3], algorithms: [.sha1, .sha256]))
        let bytes = try record.serialized()
        #expect(try ModuleRecord(parsing: bytes) == record)
        for length in 0..<bytes.count {
            #expect(throws: ParseError.self) { try ModuleRecord(parsing: Array(bytes[..<length])) }
        }
        var other = bytes
        other[0] ^= 1  // another tag: not domb's
        #expect(try ModuleRecord(parsing: other) == nil)
        #expect(throws: ParseError.self) {
            try ModuleRecord(domain: String(repeating: "x", count: 300), role: "k", size: 0, label: "", digests: DigestSet())
                .serialized()
        }
    }

    @Test func atomicWriteReplacesTheFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("log.bin")
        try MeasurementLogFile.writeAtomically([1, 2, 3], to: path)
        try MeasurementLogFile.writeAtomically([4, 5], to: path)
        #expect(try MeasurementLogFile.read(path: path) == [4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["log.bin"])
        #expect(try MeasurementLogFile.read(path: directory.file("missing")) == nil)
        // Files that report size 0 (securityfs, procfs) are read to the end.
        let procfs = try #require(try MeasurementLogFile.read(path: "/proc/self/maps"))
        #expect(procfs.count > 100)
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 >> 3) }
        #expect(try MeasurementLogFile.read(path: try directory.write("big", big)) == big)
        // The error names the directory that is missing.
        do {
            try MeasurementLogFile.writeAtomically([1], to: directory.file("no/such/dir"))
            Issue.record("wrote into a directory that does not exist")
        } catch {
            #expect("\(error)".contains(directory.file("no/such")))
        }
    }

    @Test func policyFileIsTheDefault() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Repository.root + "/policies/pcr-policy.json")))
        #expect(try PCRPolicy(json: bytes) == .default)
        #expect(throws: ParseError.self) {
            try PCRPolicy(json: Array(#"{"version":1,"pcrs":{"configuration":17,"commandLine":12,"image":13},"requiredBanks":[]}"#.utf8))
        }
        #expect(throws: ParseError.self) { try PCRPolicy(json: Array(#"{"version":1}"#.utf8)) }
    }
}
