//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

/// The file-system edges of every command: inputs are regular files opened without
/// blocking; outputs never replace device nodes, links, directories or the command's own
/// inputs.
@Suite(.timeLimit(.minutes(5))) struct FileEdgesCLITests {
    /// A description whose kernel module path is a FIFO (or a device).
    static func launchWithModule(_ module: String, in directory: TemporaryDirectory) throws -> String {
        let spec = LaunchSpec(domains: [
            DomainSpec(name: "guest", type: .pv, memoryKiB: 1 << 18, modules: [ModuleSpec(kind: .kernel, path: module)])
        ])
        return try directory.write("launch.json", Array(try JSONEncoder().encode(spec)))
    }

    @Test func aFIFOAsAnInputIsRefusedAtOnceEverywhere() throws {
        let directory = try TemporaryDirectory()
        let fifo = directory.file("kernel.fifo")
        try Tools.run("mkfifo", [fifo])
        let launch = try Self.launchWithModule(fifo, in: directory)
        // Each of these used to block forever in open(2) (inspect, config check --images).
        let runs: [[String]] = [
            ["inspect", fifo],
            ["digest", fifo],
            ["log", "show", fifo],
            ["config", "check", fifo],
            ["build", launch, "--key", fifo, "-o", directory.file("b.bundle")],
        ]
        for arguments in runs {
            let result = try DombBinary.run(arguments, timeout: 60)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderrText.contains("is a FIFO (named pipe), not a regular file"), "\(arguments): \(result.stderrText)")
        }
    }

    @Test func configExportNeverReplacesADeviceNodeOrItsInput() throws {
        let directory = try TemporaryDirectory()
        let description = try String(contentsOfFile: Repository.root + "/examples/system.dts", encoding: .utf8)
        let input = try directory.write("system.dts", description)
        // A device node like /dev/null (made here, so the real one is never at risk).
        let device = directory.file("null")
        try Tools.run("mknod", [device, "c", "1", "3"])
        let onDevice = try DombBinary.run(["config", "export", input, "--dts", "-o", device])
        #expect(onDevice.status != 0)
        #expect(onDevice.stderrText.contains("\(device): write: is a character device"), "\(onDevice.stderrText)")
        var status = stat()
        #expect(lstat(device, &status) == 0 && status.st_mode & S_IFMT == S_IFCHR, "the node is still a device")

        let onInput = try DombBinary.run(["config", "export", input, "--dts", "-o", input])
        #expect(onInput.status != 0)
        #expect(onInput.stderrText.contains("is one of this command's inputs"), "\(onInput.stderrText)")
        #expect(try String(contentsOfFile: input, encoding: .utf8) == description, "the description is untouched")

        let link = directory.file("out.dts")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: directory.file("elsewhere.dts"))
        let onLink = try DombBinary.run(["config", "export", input, "--dts", "-o", link])
        #expect(onLink.status != 0)
        #expect(onLink.stderrText.contains("is a symbolic link"), "\(onLink.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("elsewhere.dts")))

        // Standard output is written through, as documented.
        let toStdout = try DombBinary.run(["config", "export", input, "--dts", "-o", "-"])
        #expect(toStdout.status == 0, "\(toStdout.stderrText)")
        #expect(toStdout.stdoutText.hasPrefix("/dts-v1/;"))
        #expect(try DombBinary.run(["config", "export", input, "--dts", "-o", "/dev/stdout"]).stdoutText == toStdout.stdoutText)
    }

    @Test func buildRefusesToWriteOverItsDescriptionOrKey() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try BundleCLITests.makeLaunch(in: directory)
        let before = try Data(contentsOf: URL(fileURLWithPath: launch))
        let result = try DombBinary.run(["build", launch, "--key", pki.key("ed25519"), "-o", launch])
        #expect(result.status != 0)
        #expect(result.stderrText.contains("is one of this command's inputs"), "\(result.stderrText)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: launch)) == before)
        let key = directory.file("signer.key")
        try FileManager.default.copyItem(atPath: pki.key("ed25519"), toPath: key)
        let overKey = try DombBinary.run(["build", launch, "--key", key, "-o", key])
        #expect(overKey.status != 0)
        #expect(overKey.stderrText.contains("is one of this command's inputs"), "\(overKey.stderrText)")
    }

    @Test func buildRefusesAnExpiredOrNonCodeSigningCertificateUnlessTold() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try BundleCLITests.makeLaunch(in: directory)
        for signer in ["expired", "tlsserver"] {
            let output = directory.file("\(signer).bundle")
            let refused = try DombBinary.run(["build", launch, "--key", pki.key(signer), "--cert", pki.certificate(signer), "-o", output])
            #expect(refused.status != 0)
            let reason = signer == "expired" ? "has expired" : "does not include codeSigning"
            #expect(refused.stderrText.contains(reason), "\(refused.stderrText)")
            #expect(!FileManager.default.fileExists(atPath: output))
            let forced = try DombBinary.run(
                ["build", launch, "--key", pki.key(signer), "--cert", pki.certificate(signer), "-o", output, "--allow-unusable-certificate"])
            #expect(forced.status == 0, "\(forced.stderrText)")
            #expect(forced.stderrText.contains(reason))
        }
    }

    @Test func buildReportsSymbolicLinksAndKeepsPrivateInputsPrivate() throws {
        let pki = try TestPKI.shared()
        let directory = try TemporaryDirectory()
        let launch = try BundleCLITests.makeLaunch(in: directory)
        var spec = try JSONDecoder().decode(LaunchSpec.self, from: Data(contentsOf: URL(fileURLWithPath: launch)))
        // The PV kernel through a link, and the ramdisk readable by root only.
        let kernel = spec.domains[1].modules[0].path
        let link = directory.file("vmlinuz")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: kernel)
        spec.domains[1].modules[0].path = link
        let ramdisk = directory.file("private-initrd")
        try FileManager.default.copyItem(atPath: spec.domains[0].modules[1].path, toPath: ramdisk)
        chmod(ramdisk, 0o600)
        spec.domains[0].modules[1].path = ramdisk
        let edited = try directory.write("edited.json", Array(try JSONEncoder().encode(spec)))
        let output = directory.file("edited.bundle")
        let result = try DombBinary.run(["build", edited, "--key", pki.key("ed25519"), "-o", output])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stderrText.contains("\(link) is a symbolic link to"), "\(result.stderrText)")
        #expect(result.stderrText.contains("\(ramdisk) is not readable by other users: the bundle is written mode 0600"))
        let attributes = try FileManager.default.attributesOfItem(atPath: output)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}
