//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombTestSupport
import Foundation
import Testing

@Suite struct InspectCLITests {
    static func images() throws -> String {
        try GuestImages.directory()
    }

    @Test func inspectJSONReportsModesNotesAndDigest() throws {
        let out = try Self.images()
        let result = try DombBinary.run(["inspect", "--json", "\(out)/pv-kernel.elf", "\(out)/pvh-kernel.elf",
            "\(out)/ramdisk.cpio.gz"])
        #expect(result.status == 0, "\(result.stderrText)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        #expect(document["format"] as? String == "domb-image-inspection")
        let reports = try #require(document["images"] as? [[String: Any]])
        #expect(reports.count == 3)
        #expect(reports[0]["supportedModes"] as? [String] == ["pv"])
        #expect(reports[1]["supportedModes"] as? [String] == ["pvh"])
        #expect((reports[1]["entryPoints"] as? [String: String])?["phys32"] == "0x100000")
        #expect(reports[2]["kind"] as? String == "ramdisk")
        #expect(reports[2]["compression"] as? String == "gzip")
        // The digest is the file's sha256, checked with sha256sum.
        let sha = try Tools.run("sha256sum", ["\(out)/pv-kernel.elf"]).stdoutText.prefix(64)
        #expect(reports[0]["sha256"] as? String == String(sha))
        let notes = try #require(reports[0]["notes"] as? [[String: Any]])
        #expect(notes.contains { $0["name"] as? String == "HYPERCALL_PAGE" && $0["value"] as? String == "0x1000" })
    }

    @Test func inspectTextAndReadnotesFormat() throws {
        let out = try Self.images()
        let text = try DombBinary.run(["inspect", "\(out)/pvh-kernel.elf"])
        #expect(text.status == 0)
        #expect(text.stdoutText.contains("supported:     pvh"))
        #expect(text.stdoutText.contains("refused pv:    PV needs LOADER \"generic\" or GUEST_OS \"linux\""))
        let notes = try DombBinary.run(["inspect", "--readnotes", "\(out)/pv-kernel.elf"])
        let readnotes = try Tools.run("readnotes", ["\(out)/pv-kernel.elf"])
        #expect(notes.stdoutText == readnotes.stdoutText)
    }

    @Test func badImagesFailWithTheFileAndOffset() throws {
        let directory = try TemporaryDirectory()
        let out = try Self.images()
        let elf = Array(try Data(contentsOf: URL(fileURLWithPath: "\(out)/pv-kernel.elf")))
        let truncated = try directory.write("truncated.elf", Array(elf.prefix(100)))
        let result = try DombBinary.run(["inspect", truncated, "\(out)/pv-kernel.elf"])
        #expect(result.status == 1)
        #expect(result.stderrText.contains("truncated.elf: program header table"), "\(result.stderrText)")
        #expect(result.stderrText.contains("at offset 64"), "\(result.stderrText)")
        // The good image is still reported.
        #expect(result.stdoutText.contains("pv-kernel.elf"))
        let missing = try DombBinary.run(["inspect", directory.file("nope")])
        #expect(missing.status == 2, "a file that cannot be opened: could not run")
        #expect(missing.stderrText.contains("nope: cannot open"))
    }
}
