//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
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

    /// The guard does not refuse what libfdt accepts: every example still parses.
    @Test func guardAcceptsTheExamples() throws {
        for name in ["examples/system.dts", "examples/xl/equivalent.dts"] {
            let dtb = try Tools.run("dtc", ["-q", "-I", "dts", "-O", "dtb", Repository.root + "/" + name]).stdout
            #expect(try FDT.parse(dtb).children.isEmpty == false)
        }
    }
}
