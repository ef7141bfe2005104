//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles
import DombTestSupport
import Foundation
import Testing

/// The one way domb opens inputs: regular files only, never blocking on a FIFO or device.
@Suite(.timeLimit(.minutes(1))) struct InputFileTests {
    @Test func aFIFOIsRefusedAtOnceInsteadOfBlocking() throws {
        let directory = try TemporaryDirectory()
        let fifo = directory.file("pipe")
        try Tools.run("mkfifo", [fifo])
        // open(2) without O_NONBLOCK would wait here for a writer forever.
        #expect {
            _ = try InputFile(path: fifo)
        } throws: { error in
            "\(error)".contains("\(fifo): open: is a FIFO (named pipe), not a regular file")
        }
        #expect(throws: ParseError.self) { _ = try FileImageSource(path: fifo) }
    }

    @Test(arguments: ["/dev/null", "/dev/zero", "/dev/tty", "/"])
    func devicesAndDirectoriesAreRefusedByKind(path: String) throws {
        let kind = path == "/" ? "is a directory" : "is a character device"
        #expect {
            _ = try InputFile(path: path)
        } throws: { error in
            // /dev/tty may not exist for a process without a terminal: then open fails.
            let text = "\(error)"
            return text.contains(kind) || (path == "/dev/tty" && text.contains("/dev/tty: open:"))
        }
    }

    @Test func aSymbolicLinkIsFollowedAndReported() throws {
        let directory = try TemporaryDirectory()
        let target = try directory.write("real", [1, 2, 3])
        let link = directory.file("link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let file = try InputFile(path: link)
        #expect(file.symbolicLinkTarget == URL(fileURLWithPath: target).resolvingSymlinksInPath().path)
        #expect(try file.readAll(limit: 10) == [1, 2, 3])
        #expect(try InputFile(path: target).symbolicLinkTarget == nil)
    }

    @Test func missingAndOversizedFilesAreNamedInPlainWords() throws {
        let directory = try TemporaryDirectory()
        #expect {
            _ = try InputFile(path: directory.file("nope"))
        } throws: { error in
            "\(error)" == "\(directory.file("nope")): open: no such file"
        }
        #expect(try InputFile.readIfPresent(directory.file("nope"), limit: 10) == nil)
        let big = try directory.write("big", [UInt8](repeating: 7, count: 100))
        #expect {
            _ = try InputFile.read(big, limit: 99)
        } throws: { error in
            "\(error)".contains("100 bytes, more than the 99 bytes")
        }
    }

    @Test func aPseudoFileOfSizeZeroIsReadToItsEnd() throws {
        // procfs, like securityfs' binary_bios_measurements, reports st_size 0.
        let file = try InputFile(path: "/proc/self/status")
        #expect(file.size == 0)
        let text = String(decoding: try file.readAll(limit: 1 << 20), as: UTF8.self)
        #expect(text.contains("Pid:"))
    }
}
