//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombFDT
import Testing

/// The DTB reader's caps (``FDT/maxSize``, ``FDT/maxDepth``, ``FDT/maxNodes``,
/// ``FDT/maxPropertiesPerNode``): a blob at each cap is read, one past it is refused with
/// `limitExceeded` and a message naming the cap. Blobs are written by libfdt's own writer.
@Suite struct FDTCapTests {
    static func isLimit(_ error: any Error, _ text: String) -> Bool {
        (error as? ParseError)?.code == .limitExceeded && "\(error)".contains(text)
    }

    /// A chain of `depth` nodes below the root.
    static func chain(_ depth: Int) -> DTNode {
        var node = DTNode("n\(depth)", properties: [DTProperty("leaf", .u32(1))])
        for level in stride(from: depth - 1, through: 1, by: -1) { node = DTNode("n\(level)", children: [node]) }
        return DTNode("", children: depth > 0 ? [node] : [])
    }

    @Test func depthCap() throws {
        let atCap = try FDT.parse(FDT.serialize(Self.chain(FDT.maxDepth)))
        var node = atCap
        var depth = 0
        while let child = node.children.first {
            node = child
            depth += 1
        }
        #expect(depth == FDT.maxDepth && node.property("leaf") != nil)
        #expect { try FDT.parse(FDT.serialize(Self.chain(FDT.maxDepth + 1))) } throws: {
            Self.isLimit($0, "deeper than \(FDT.maxDepth) levels")
        }
    }

    /// A root with `count - 1` children: `count` nodes in all.
    static func wide(_ count: Int) -> DTNode {
        DTNode("", children: (1..<count).map { DTNode("c\($0)") })
    }

    @Test func nodeCountCap() throws {
        #expect(try FDT.parse(FDT.serialize(Self.wide(FDT.maxNodes))).children.count == FDT.maxNodes - 1)
        #expect { try FDT.parse(FDT.serialize(Self.wide(FDT.maxNodes + 1))) } throws: {
            Self.isLimit($0, "more than \(FDT.maxNodes) nodes")
        }
    }

    @Test func propertyCountCap() throws {
        func node(_ count: Int) -> DTNode {
            DTNode("", children: [DTNode("many", properties: (0..<count).map { DTProperty("p\($0)", .u32(UInt32($0))) })])
        }
        #expect(try FDT.parse(FDT.serialize(node(FDT.maxPropertiesPerNode))).child("many")?.properties.count
            == FDT.maxPropertiesPerNode)
        #expect { try FDT.parse(FDT.serialize(node(FDT.maxPropertiesPerNode + 1))) } throws: {
            Self.isLimit($0, "more than \(FDT.maxPropertiesPerNode) properties")
        }
    }

    @Test func sizeCap() throws {
        func blob(_ valueSize: Int) throws -> [UInt8] {
            try FDT.serialize(DTNode("", properties: [DTProperty("big", .bytes([UInt8](repeating: 0xA5, count: valueSize)))]))
        }
        let overhead = try blob(4).count - 4
        let atCap = try blob(FDT.maxSize - overhead)
        #expect(atCap.count == FDT.maxSize)
        #expect(try FDT.parse(atCap).property("big")?.value == .bytes([UInt8](repeating: 0xA5, count: FDT.maxSize - overhead)))
        #expect { try FDT.parse(atCap + [0]) } throws: { Self.isLimit($0, "at most \(FDT.maxSize) are accepted") }
    }
}
