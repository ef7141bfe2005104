//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A device-tree node in memory. Trees read from a DTB hold raw `.bytes` values; trees
/// built for output hold typed values and labels, which `FDT.serialize` turns into
/// `phandle` properties and `DTSWriter` prints as `&label` references.
public struct DTNode: Hashable, Sendable {
    public var name: String
    public var label: String?
    public var properties: [DTProperty]
    public var children: [DTNode]

    public init(_ name: String, label: String? = nil, properties: [DTProperty] = [], children: [DTNode] = []) {
        self.name = name
        self.label = label
        self.properties = properties
        self.children = children
    }

    public func property(_ name: String) -> DTProperty? { properties.first { $0.name == name } }
    public func child(_ name: String) -> DTNode? { children.first { $0.name == name } }
}

public struct DTProperty: Hashable, Sendable {
    public var name: String
    public var value: DTValue

    public init(_ name: String, _ value: DTValue) {
        self.name = name
        self.value = value
    }
}

/// A property value (Devicetree Specification v0.4 §2.2.4 "Property values").
public enum DTValue: Hashable, Sendable {
    /// No value: a boolean property that is true by being present.
    case empty
    /// One or more NUL-terminated strings.
    case strings([String])
    /// 32-bit big-endian cells; references become the target's phandle.
    case cells([DTCell])
    /// Raw bytes (what every value read from a DTB is).
    case bytes([UInt8])

    public static func string(_ text: String) -> DTValue { .strings([text]) }
    public static func u32(_ value: UInt32) -> DTValue { .cells([.value(value)]) }
    /// A 64-bit value as two cells, high first (as `memory` is written).
    public static func u64(_ value: UInt64) -> DTValue {
        .cells([.value(UInt32(truncatingIfNeeded: value >> 32)), .value(UInt32(truncatingIfNeeded: value))])
    }
    public static func reference(_ label: String) -> DTValue { .cells([.reference(label)]) }

    /// The value's bytes, with references resolved through `phandles`.
    /// - Throws: `ParseError` for a string holding a NUL or a reference to an unknown label.
    public func encoded(phandles: [String: UInt32]) throws(ParseError) -> [UInt8] {
        switch self {
        case .empty:
            return []
        case .strings(let list):
            var out: [UInt8] = []
            for text in list {
                guard !text.utf8.contains(0) else { throw .invalid("a string property holds a NUL") }
                out += Array(text.utf8) + [0]
            }
            return out
        case .cells(let cells):
            var writer = ByteWriter(capacity: cells.count * 4)
            for cell in cells {
                switch cell {
                case .value(let value):
                    writer.writeBE(value)
                case .reference(let label):
                    guard let phandle = phandles[label] else { throw .invalid("reference to unknown label &\(label)") }
                    writer.writeBE(phandle)
                }
            }
            return writer.bytes
        case .bytes(let bytes):
            return bytes
        }
    }
}

public enum DTCell: Hashable, Sendable {
    case value(UInt32)
    /// The phandle of the node carrying this label.
    case reference(String)
}

/// Resolves labels to phandles: every labelled node that is referenced gets a
/// `phandle` property, numbered 1, 2, … in document order (deterministic output), and
/// every value becomes raw bytes (what `FDT.serialize` writes).
public func resolvePhandles(_ root: DTNode) throws(ParseError) -> DTNode {
    var referenced: Set<String> = []
    var labels: [String] = []
    func scan(_ node: DTNode) {
        if let label = node.label { labels.append(label) }
        for property in node.properties {
            if case .cells(let cells) = property.value {
                for case .reference(let label) in cells { referenced.insert(label) }
            }
        }
        node.children.forEach(scan)
    }
    scan(root)
    guard Set(labels).count == labels.count else { throw .invalid("a label is used on more than one node") }
    var phandles: [String: UInt32] = [:]
    for label in labels where referenced.contains(label) {
        phandles[label] = UInt32(phandles.count + 1)
    }
    if let missing = referenced.subtracting(labels).sorted().first {
        throw .invalid("reference to unknown label &\(missing)")
    }
    func rewrite(_ node: DTNode) throws(ParseError) -> DTNode {
        var out = DTNode(node.name)
        for property in node.properties {
            out.properties.append(DTProperty(property.name, .bytes(try property.value.encoded(phandles: phandles))))
        }
        if let label = node.label, let phandle = phandles[label] {
            out.properties.append(DTProperty("phandle", .bytes(try DTValue.u32(phandle).encoded(phandles: [:]))))
        }
        for child in node.children { out.children.append(try rewrite(child)) }
        return out
    }
    return try rewrite(root)
}
