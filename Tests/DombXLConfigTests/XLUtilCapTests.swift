//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombXLUtil
import Testing

/// Every resource cap of the libxlutil wrapper, at the cap (accepted) and one past it
/// (refused with `.limitExceeded` and a message naming the cap).
@Suite struct XLUtilCapTests {
    static func isLimit(_ error: any Error, _ text: String) -> Bool {
        (error as? ParseError)?.code == .limitExceeded && "\(error)".contains(text)
    }

    @Test func fileSizeCap() throws {
        let head = Array("name = \"cap\"\n#".utf8)
        let atCap = head + [UInt8](repeating: UInt8(ascii: "x"), count: XLUtilConfig.maxFileSize - head.count - 1) + [0x0A]
        #expect(try XLUtilConfig(parsing: atCap).settings.count == 1)
        #expect { try XLUtilConfig(parsing: atCap + [0x0A]) } throws: { Self.isLimit($0, "at most \(XLUtilConfig.maxFileSize)") }
    }

    @Test func stringLengthCap() throws {
        func config(_ length: Int) -> [UInt8] { Array("extra = \"\(String(repeating: "a", count: length))\"\n".utf8) }
        #expect(try XLUtilConfig(parsing: config(XLUtilConfig.maxStringLength)).setting("extra")?.value.string?.count == XLUtilConfig.maxStringLength)
        #expect { try XLUtilConfig(parsing: config(XLUtilConfig.maxStringLength + 1)) } throws: {
            Self.isLimit($0, "longer than \(XLUtilConfig.maxStringLength) bytes")
        }
        // `+=` may not grow a string past the cap either.
        let half = String(repeating: "a", count: XLUtilConfig.maxStringLength / 2)
        #expect { try XLUtilConfig(parsing: Array("extra = \"\(half)\"\nextra += \"\(half)b\"\n".utf8)) } throws: {
            Self.isLimit($0, "longer than \(XLUtilConfig.maxStringLength) bytes")
        }
    }

    @Test func listItemCap() throws {
        func list(_ count: Int) -> String { "[" + (0..<count).map { "\"\($0)\"" }.joined(separator: ",") + "]" }
        let atCap = try XLUtilConfig(parsing: Array("disk = \(list(XLUtilConfig.maxListItems))\n".utf8))
        #expect(atCap.setting("disk")?.value == .list((0..<XLUtilConfig.maxListItems).map { .string(String($0)) }))
        #expect { try XLUtilConfig(parsing: Array("disk = \(list(XLUtilConfig.maxListItems + 1))\n".utf8)) } throws: {
            Self.isLimit($0, "more than \(XLUtilConfig.maxListItems) items")
        }
        // `+=` may not grow a list past the cap either.
        let half = XLUtilConfig.maxListItems / 2
        #expect(try XLUtilConfig(parsing: Array("disk = \(list(half))\ndisk += \(list(half))\n".utf8)).settings.count == 1)
        #expect { try XLUtilConfig(parsing: Array("disk = \(list(half))\ndisk += \(list(half + 1))\n".utf8)) } throws: {
            Self.isLimit($0, "more than \(XLUtilConfig.maxListItems) items")
        }
    }

    @Test func settingCountCap() throws {
        func settings(_ count: Int) -> [UInt8] { Array((0..<count).map { "k\($0) = 1\n" }.joined().utf8) }
        #expect(try XLUtilConfig(parsing: settings(XLUtilConfig.maxSettings)).settings.count == XLUtilConfig.maxSettings)
        #expect { try XLUtilConfig(parsing: settings(XLUtilConfig.maxSettings + 1)) } throws: {
            Self.isLimit($0, "more than \(XLUtilConfig.maxSettings) settings")
        }
    }

    @Test func listDepthCap() throws {
        func nested(_ depth: Int) -> [UInt8] {
            Array(("v = " + String(repeating: "[", count: depth) + "'x'" + String(repeating: "]", count: depth) + "\n").utf8)
        }
        #expect(throws: Never.self) { try XLUtilConfig(parsing: nested(XLUtilConfig.maxListDepth)) }
        #expect { try XLUtilConfig(parsing: nested(XLUtilConfig.maxListDepth + 1)) } throws: {
            Self.isLimit($0, "nested deeper than \(XLUtilConfig.maxListDepth)")
        }
    }
}
