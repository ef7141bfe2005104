//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// Progress (issue 19): every command that can take more than a second on big inputs
/// draws one progress line on standard error when it is a terminal — and only then: not
/// into a file, not with --json, not with --no-progress.
@Suite(.serialized) struct ProgressCLITests {
    /// The line's signature: erase-to-end-of-line after a redraw.
    static let eraseLine = "\u{1B}[K"
    static let environment = ["TSS2_LOG": "all+none", "SOURCE_DATE_EPOCH": "1700000000"]

    /// A one-domain system whose ramdisk is a 256 MiB cpio archive (one file of zeros,
    /// sparse: it costs no disk, and hashing it costs what hashing any 256 MiB costs), with
    /// its signer's key.
    struct BigSystem {
        let work: TemporaryDirectory
        let ramdisk: String
        let dts: String
        let key: String
        let publicKey: String
        var bundle: String { work.file("big.bundle") }
    }

    static func bigSystem() throws -> BigSystem {
        let work = try TemporaryDirectory(prefix: "domb-progress")
        let ramdisk = work.file("ramdisk.img")
        // cpio "newc": a 110-byte header, the NUL-terminated name padded to 4 bytes, the
        // data padded to 4 bytes; then the TRAILER!!! entry.
        func header(name: String, size: Int, mode: Int) -> [UInt8] {
            let fields = [1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, name.utf8.count + 1, 0]
            var bytes = Array(("070701" + fields.map { String(format: "%08X", $0) }.joined()).utf8) + Array(name.utf8) + [0]
            while bytes.count % 4 != 0 { bytes.append(0) }
            return bytes
        }
        let dataSize = (256 << 20) - 512
        let first = header(name: "big", size: dataSize, mode: 0o100644)
        let trailer = header(name: "TRAILER!!!", size: 0, mode: 0)
        #expect(FileManager.default.createFile(atPath: ramdisk, contents: Data(first)))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: ramdisk))
        try handle.truncate(atOffset: UInt64(first.count + dataSize))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(trailer))
        // Padded to exactly 256 MiB (cpio archives are padded to a block size).
        try handle.truncate(atOffset: 256 << 20)
        try handle.close()
        let kernel = try GuestImages.directory() + "/pv-kernel.elf"
        let dts = try work.write(
            "big.dts",
            """
            /dts-v1/;
            / { chosen { hypervisor {
                compatible = "hypervisor,xen", "xen,x86";
                big {
                    compatible = "xen,domain";
                    domid = <1>;
                    mode = <5>;
                    memory = <0x0 0x60000>;
                    cpus = <1>;
                    kernel { compatible = "module,kernel", "multiboot,module"; domb,path = "\(kernel)"; };
                    ramdisk { compatible = "module,ramdisk", "multiboot,module"; domb,path = "ramdisk.img"; };
                };
            }; }; };
            """)
        let key = work.file("signer.pem")
        try Tools.run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])
        try Tools.run("openssl", ["pkey", "-in", key, "-pubout", "-out", work.file("signer.pub.pem")])
        return BigSystem(work: work, ramdisk: ramdisk, dts: dts, key: key, publicKey: work.file("signer.pub.pem"))
    }

    /// `arguments` at a terminal shows a progress line naming `action` and the 256 MiB;
    /// with standard error going to a file (a pipe here) the same command shows none.
    /// `second` gives the arguments of the run without a terminal when the first run
    /// changed state (a TPM, an output path).
    static func expectProgress(
        _ arguments: [String], action: String, total: String = "of 256.0 MiB", second: [String]? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let terminal = try DombBinary.runInTerminal(arguments, environment: environment)
        #expect(terminal.status == 0, "\(arguments): \(terminal.stdoutText.suffix(2000))", sourceLocation: sourceLocation)
        let screen = terminal.stdoutText
        #expect(screen.contains("\r\(action)"), "\(arguments): no progress line: \(screen.suffix(1000))", sourceLocation: sourceLocation)
        #expect(screen.contains(total), "\(arguments): no total \(total): \(screen.suffix(1000))", sourceLocation: sourceLocation)
        #expect(screen.contains(Self.eraseLine), "\(arguments)", sourceLocation: sourceLocation)
        let file = try DombBinary.run(second ?? arguments, environment: environment)
        #expect(file.status == 0, "\(arguments): \(file.stderrText)", sourceLocation: sourceLocation)
        for text in [file.stderrText, file.stdoutText] {
            #expect(!text.contains(Self.eraseLine) && !text.contains("\r"), "\(arguments): progress into a file: \(text.prefix(500))", sourceLocation: sourceLocation)
            #expect(!text.contains(action + ":"), "\(arguments): \(text.prefix(500))", sourceLocation: sourceLocation)
        }
    }

    @Test func bundleCommandsShowProgressOnlyAtATerminal() throws {
        let system = try Self.bigSystem()
        try Self.expectProgress(
            ["build", system.dts, "--key", system.key, "-o", system.bundle], action: "building",
            second: ["build", system.dts, "--key", system.key, "-o", system.work.file("again.bundle")])
        try Self.expectProgress(["bundle", "verify", system.bundle, "--pubkey", system.publicKey], action: "verifying")
        try Self.expectProgress(
            ["bundle", "extract", system.bundle, "--pubkey", system.publicKey, "-o", system.work.file("x1")],
            action: "extracting",
            second: ["bundle", "extract", system.bundle, "--pubkey", system.publicKey, "-o", system.work.file("x2")])
        try Self.expectProgress(["predict", system.bundle, "--pubkey", system.publicKey], action: "verifying")
        try Self.expectProgress(["digest", "--banks", "sha1,sha256", system.ramdisk], action: "hashing")

        // Never with --json, never with --no-progress, even at a terminal.
        for quiet in [
            ["bundle", "verify", system.bundle, "--pubkey", system.publicKey, "--json"],
            ["bundle", "verify", system.bundle, "--pubkey", system.publicKey, "--no-progress"],
            ["digest", system.ramdisk, "--no-progress"],
        ] {
            let result = try DombBinary.runInTerminal(quiet, environment: Self.environment)
            #expect(result.status == 0, "\(quiet): \(result.stdoutText.suffix(1000))")
            #expect(!result.stdoutText.contains(Self.eraseLine), "\(quiet): \(result.stdoutText.prefix(500))")
        }
        // The JSON is still JSON, and the digests are the bytes' (an independent hash).
        let json = try DombBinary.runInTerminal(
            ["bundle", "verify", system.bundle, "--pubkey", system.publicKey, "--json"], environment: Self.environment)
        #expect(json.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{"), "\(json.stdoutText.prefix(300))")
        let openssl = try Tools.run("openssl", ["dgst", "-sha256", "-r", system.ramdisk]).stdoutText.prefix(64)
        let digest = try DombBinary.runInTerminal(["digest", system.ramdisk], environment: Self.environment)
        #expect(digest.stdoutText.contains("sha256:\(openssl)"), "\(digest.stdoutText.suffix(300))")
    }

    @Test func tpmCommandsShowProgressOnlyAtATerminal() throws {
        let system = try Self.bigSystem()
        try #require(try DombBinary.run(["build", system.dts, "--key", system.key, "-o", system.bundle], environment: Self.environment).status == 0)
        // Each boot needs PCRs in their reset state: one swtpm per run.
        try Swtpm.with { first in
            try Swtpm.with { second in
                let boot = { (tpm: Swtpm, log: String) in
                    [
                        "boot", system.bundle, "--pubkey", system.publicKey, "--tpm", tpm.tcti, "--backend", "plan",
                        "--eventlog", system.work.file(log), "--lock-dir", system.work.path,
                    ]
                }
                try Self.expectProgress(boot(first, "one.log"), action: "reading", second: boot(second, "two.log"))
            }
        }
        try Swtpm.with { swtpm in
            // The second run continues the first run's log (it replays to the TPM's PCRs).
            let measure = [
                "measure", "--tpm", swtpm.tcti, "--pcr", "16", "--log", system.work.file("measure.log"),
                "--lock-dir", system.work.path, system.ramdisk,
            ]
            try Self.expectProgress(measure, action: "measuring")
        }
    }

    /// A crypto-agile log of 120 MiB (near the 128 MiB cap on logs): 4 KiB EV_IPL
    /// records on PCR 16 (the line does not depend on the record size; a million small
    /// records would only make the debug build's replay slow).
    @Test func logReplayShowsProgressOnlyAtATerminal() throws {
        let work = try TemporaryDirectory(prefix: "domb-progress-log")
        let specID = SpecIDEvent(banks: [.sha256])
        var record = EventLog.event2Record(
            UnverifiedEvent(pcr: 16, type: .ipl, digests: DigestSet([TaggedDigest(.sha256, Array(repeating: 0xAB, count: 32))]), data: Array(repeating: 0x41, count: 4096)),
            specID: specID)
        let count = (120 << 20) / record.count
        var log = Data(EventLog.headerRecord(specID))
        log.reserveCapacity(log.count + count * record.count)
        record.withUnsafeMutableBytes { bytes in
            for _ in 0..<count { log.append(contentsOf: bytes) }
        }
        let path = work.file("big.log")
        try log.write(to: URL(fileURLWithPath: path))
        try Self.expectProgress(["log", "replay", path], action: "replaying", total: "of 120.0 MiB")
    }
}
