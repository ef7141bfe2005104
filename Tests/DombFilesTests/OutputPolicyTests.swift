//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFiles
import DombTestSupport
import Foundation
import Testing

/// The one output policy: outputs replace only regular files that are not inputs.
@Suite struct OutputPolicyTests {
    @Test func aDeviceNodeIsNeverReplaced() throws {
        // As root, renaming over /dev/null would destroy it for the whole machine.
        let directory = try TemporaryDirectory()
        let device = directory.file("null")
        try Tools.run("mknod", [device, "c", "1", "3"])
        #expect {
            try AtomicFile.write([1, 2, 3], to: device)
        } throws: { error in
            "\(error)".contains("is a character device")
        }
        var status = stat()
        #expect(lstat(device, &status) == 0)
        #expect(status.st_mode & S_IFMT == S_IFCHR, "still the device node")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["null"], "no temporary file left")
    }

    @Test func aSymbolicLinkIsNotReplacedNorWrittenThrough() throws {
        let directory = try TemporaryDirectory()
        let target = try directory.write("target", [9])
        let link = directory.file("link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        #expect {
            try AtomicFile.write([1], to: link)
        } throws: { error in
            "\(error)".contains("is a symbolic link")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data([9]))
    }

    @Test func directoriesAndFIFOsAreRefused() throws {
        let directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.file("dir"), withIntermediateDirectories: false)
        try Tools.run("mkfifo", [directory.file("fifo")])
        #expect { try AtomicFile.write([1], to: directory.file("dir")) } throws: { "\($0)".contains("is a directory") }
        #expect { try AtomicFile.write([1], to: directory.file("fifo")) } throws: { "\($0)".contains("is a FIFO") }
    }

    @Test func anInputIsNeverTheOutputEvenThroughALinkOrASecondName() throws {
        let directory = try TemporaryDirectory()
        let input = try directory.write("launch.dts", "/dts-v1/; / {};")
        let link = directory.file("alias.dts")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: input)
        let hard = directory.file("hard.dts")
        try FileManager.default.linkItem(atPath: input, toPath: hard)
        for output in [input, hard] {
            #expect {
                try AtomicFile.write([0], to: output, inputs: [input])
            } throws: { error in
                "\(error)".contains("is one of this command's inputs")
            }
            // The input named through a symbolic link is the same file.
            #expect(throws: FileError.self) { try AtomicFile.write([0], to: output, inputs: [link]) }
        }
        #expect(try String(contentsOfFile: input, encoding: .utf8) == "/dts-v1/; / {};")
        // A different file is fine, and replaced atomically.
        let other = try directory.write("out.dts", "old")
        try AtomicFile.write(Array("new".utf8), to: other, inputs: [input])
        #expect(try String(contentsOfFile: other, encoding: .utf8) == "new")
    }

    @Test func aLinkPlantedBeforeTheRenameIsRefusedThen() throws {
        let directory = try TemporaryDirectory()
        let output = directory.file("out")
        let file = try AtomicFile(path: output)
        try file.replaceContents([1, 2])
        let victim = try directory.write("victim", [7])
        try FileManager.default.createSymbolicLink(atPath: output, withDestinationPath: victim)
        #expect(throws: FileError.self) { try file.commit() }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: output) == victim)
    }

    @Test func aFullFileSystemIsFoundWhenSpaceIsReservedNotWhenWriting() throws {
        let filesystem = try SmallFileSystem(kibibytes: 64)
        let file = try AtomicFile(path: filesystem.file("eventlog.bin"))
        #expect {
            try file.reserve(1 << 20)
        } throws: { error in
            (error as? FileError)?.code == ENOSPC
        }
        // Space reserved first is there when it is written, even once the rest is full.
        let second = try AtomicFile(path: filesystem.file("log2"))
        try second.reserve(16 << 10)
        try filesystem.fill()
        try second.replaceContents([UInt8](repeating: 1, count: 16 << 10))
        try second.commit()
        #expect(FileManager.default.fileExists(atPath: filesystem.file("log2")))
    }

    @Test func aReadOnlyFileSystemIsFoundWhenTheTemporaryFileIsMade() throws {
        let filesystem = try SmallFileSystem(kibibytes: 64)
        try filesystem.remountReadOnly()
        #expect {
            _ = try AtomicFile(path: filesystem.file("eventlog.bin"))
        } throws: { error in
            (error as? FileError)?.code == EROFS
        }
    }

    @Test func abandonKeepsTheTemporaryFile() throws {
        let directory = try TemporaryDirectory()
        let file = try AtomicFile(path: directory.file("log"))
        try file.replaceContents([1, 2, 3])
        let kept = file.abandon()
        #expect(try Data(contentsOf: URL(fileURLWithPath: kept)) == Data([1, 2, 3]))
        #expect(!FileManager.default.fileExists(atPath: directory.file("log")))
    }
}

/// Directories domb creates: `mkdir -p` with plain-word failures naming the component.
@Suite struct DirectoryTests {
    @Test func createsParentsAndAcceptsAnExistingDirectory() throws {
        let directory = try TemporaryDirectory()
        let nested = directory.file("a/b//c/")
        try Directory.create(nested, mode: 0o700)
        var status = stat()
        #expect(stat(directory.file("a/b/c"), &status) == 0 && status.st_mode & S_IFMT == S_IFDIR)
        #expect(status.st_mode & 0o777 == 0o700 & ~currentUmask())
        try Directory.create(nested)
        #expect(try Directory.entries(directory.file("a")) == ["b"])
    }

    @Test func aFileInThePathIsNamed() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("state", [1])
        #expect {
            try Directory.create(file + "/agent/keys")
        } throws: { error in
            let error = error as? FileError
            return error?.code == ENOTDIR && error?.path == file + "/agent/keys"
                && error?.message == "\(file) is a regular file, not a directory"
        }
        #expect { try Directory.create(file) } throws: { "\($0)".hasSuffix("\(file) is a regular file, not a directory") }
        #expect { try Directory.entries(directory.file("missing")) } throws: {
            ($0 as? FileError)?.code == ENOENT && "\($0)".contains("missing: list the directory")
        }
        #expect { try Directory.create("") } throws: { "\($0)".contains("the path is empty") }
    }

    private func currentUmask() -> mode_t {
        let mask = umask(0o022)
        umask(mask)
        return mask
    }
}
