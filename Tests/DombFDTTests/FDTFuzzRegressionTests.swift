//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombFDT
import DombTestSupport
import Foundation
import Testing

/// Inputs FuzzLaunchDTB (FuzzTesting/) hung or crashed the DTB reader with, committed under
/// Tests/DombCoreTests/Fixtures/fuzz/. Each must be refused promptly with a ParseError.
@Suite struct FDTFuzzRegressionTests {
    /// A property length of 0xfffffff4 in the structure block: libfdt 1.6.1's
    /// `fdt_check_full` loops forever on it (its `fdt_next_tag` adds the length as a signed
    /// int and steps back onto the same tag), so domb refuses it before calling libfdt.
    @Test func negativePropertyLengthIsRefusedBeforeLibfdt() throws {
        let path = Repository.root + "/Tests/DombCoreTests/Fixtures/fuzz/FuzzLaunchDTB-negative-prop-len.dtb"
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect { try FDT.parse(bytes) } throws: { error in
            (error as? ParseError)?.code == .invalidValue && "\(error)".contains("has length 4294967284, past the end")
                && (error as? ParseError)?.offset == 0x774 + 4
        }
        #expect(!LaunchFuzz.dtb(bytes))
    }

    /// A version-10 header made libfdt 1.6.1's `fdt_check_full` dereference NULL (found by
    /// the 20 s FuzzLaunchDTB run in CI); the header check refuses it before libfdt.
    @Test func oldVersionHeaderIsRefusedBeforeLibfdt() throws {
        let path = Repository.root + "/Tests/DombCoreTests/Fixtures/fuzz/FuzzLaunchDTB-version-10-header.dtb"
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(throws: ParseError.self) { try FDT.parse(bytes) }
        #expect(!LaunchFuzz.dtb(bytes))
        // With its trailing bytes cut (totalsize 4038), the version is what is refused.
        bytes = Array(bytes.prefix(4038))
        do {
            _ = try FDT.parse(bytes)
            Issue.record("a version-10 blob was accepted")
        } catch let error as ParseError {
            #expect(error.reason.contains("version 10"), "\(error)")
            #expect(error.offset == 20)
        }
    }

    /// The guard does not refuse what libfdt accepts: every example still parses.
    @Test func guardAcceptsTheExamples() throws {
        for name in ["examples/system.dts", "examples/xl/equivalent.dts"] {
            let dtb = try Tools.run("dtc", ["-q", "-I", "dts", "-O", "dtb", Repository.root + "/" + name]).stdout
            #expect(try FDT.parse(dtb).children.isEmpty == false)
        }
    }
}
