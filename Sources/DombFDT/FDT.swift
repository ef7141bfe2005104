//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CLibFDT
import DombCore

/// Flattened device tree blobs through libfdt: `parse` checks a blob with
/// `fdt_check_full` before walking it; `serialize` writes one with libfdt's sequential
/// writer (`fdt_create` … `fdt_finish`), which is deterministic.
public enum FDT {
    /// Caps for untrusted blobs, sized so that the launch DTB of the largest launch
    /// `LaunchLimits` allows is read back (a test encodes it).
    public static let maxSize = 16 << 20
    public static let maxDepth = 16
    public static let maxNodes = 1 << 16
    public static let maxPropertiesPerNode = 256

    /// Reads a DTB into a tree of raw-valued nodes; the root node's name is "".
    /// - Throws: `ParseError` with the libfdt error text (`fdt_strerror`) for a malformed,
    ///   truncated or oversized blob, or a blob with bytes after `totalsize`.
    public static func parse(_ bytes: [UInt8]) throws -> DTNode {
        guard bytes.count <= maxSize else {
            throw ParseError.limit("device tree blob is \(bytes.count) bytes; at most \(maxSize) are accepted")
        }
        try checkHeader(bytes)  // before libfdt sees the blob: FDTWorkarounds.swift
        try refusePropertiesPastStructureBlock(bytes)  // before fdt_check_full: FDTWorkarounds.swift
        return try bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) throws -> DTNode in
            guard let base = buffer.baseAddress else { throw ParseError.truncated("empty device tree blob", offset: 0) }
            let check = fdt_check_full(base, buffer.count)
            guard check == 0 else {
                throw ParseError.invalid("not a valid device tree blob: \(errorText(check))")
            }
            let total = Int(CLibFDT_totalsize(base))
            guard total == buffer.count else {
                throw ParseError(.trailingBytes, "device tree blob has \(buffer.count - total) bytes after its totalsize \(total)", offset: total)
            }
            var nodes = 0
            return try walk(base, offset: 0, depth: 0, nodes: &nodes, isRoot: true)
        }
    }

    private static func walk(
        _ fdt: UnsafeRawPointer, offset: Int32, depth: Int, nodes: inout Int, isRoot: Bool
    ) throws(ParseError) -> DTNode {
        guard depth <= maxDepth else { throw .limit("device tree nests deeper than \(maxDepth) levels", offset: Int(offset)) }
        nodes += 1
        guard nodes <= maxNodes else { throw .limit("device tree has more than \(maxNodes) nodes") }
        var length: Int32 = 0
        guard let namePointer = fdt_get_name(fdt, offset, &length), length >= 0 else {
            throw .invalid("node name unreadable: \(errorText(length))", offset: Int(offset))
        }
        let name = isRoot ? "" : string(namePointer, count: Int(length))
        var node = DTNode(name)
        var property = fdt_first_property_offset(fdt, offset)
        while property >= 0 {
            guard node.properties.count < maxPropertiesPerNode else {
                throw .limit("node \(name) has more than \(maxPropertiesPerNode) properties", offset: Int(property))
            }
            var nameRef: UnsafePointer<CChar>?
            var valueLength: Int32 = 0
            guard let value = fdt_getprop_by_offset(fdt, property, &nameRef, &valueLength), valueLength >= 0,
                let nameRef
            else {
                throw .invalid("property unreadable in node \(name): \(errorText(valueLength))", offset: Int(property))
            }
            let bytes = Array(UnsafeRawBufferPointer(start: value, count: Int(valueLength)))
            node.properties.append(DTProperty(String(cString: nameRef), .bytes(bytes)))
            property = fdt_next_property_offset(fdt, property)
        }
        guard property == -FDT_ERR_NOTFOUND else {
            throw .invalid("properties of node \(name) unreadable: \(errorText(property))", offset: Int(offset))
        }
        var child = fdt_first_subnode(fdt, offset)
        while child >= 0 {
            node.children.append(try walk(fdt, offset: child, depth: depth + 1, nodes: &nodes, isRoot: false))
            child = fdt_next_subnode(fdt, child)
        }
        guard child == -FDT_ERR_NOTFOUND else {
            throw .invalid("subnodes of node \(name) unreadable: \(errorText(child))", offset: Int(offset))
        }
        return node
    }

    private static func string(_ pointer: UnsafePointer<CChar>, count: Int) -> String {
        let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: count)
        return String(decoding: raw, as: UTF8.self)
    }

    private static func errorText(_ code: Int32) -> String {
        guard let text = fdt_strerror(code) else { return "libfdt error \(code)" }
        return String(cString: text)
    }

    /// Writes a tree as a DTB (version 17, empty memory reservation map). Labels are
    /// resolved to `phandle` properties first. Same tree, same bytes.
    /// - Throws: `ParseError` for names libfdt refuses or references to unknown labels.
    public static func serialize(_ tree: DTNode) throws -> [UInt8] {
        let resolved = try resolvePhandles(tree)
        var capacity = 64 * 1024
        while capacity <= maxSize * 2 {
            var buffer = [UInt8](repeating: 0, count: capacity)
            let result = try buffer.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) throws -> Int32 in
                guard let base = raw.baseAddress else { return -FDT_ERR_NOSPACE }
                var rc = fdt_create(base, Int32(raw.count))
                if rc == 0 { rc = fdt_finish_reservemap(base) }
                if rc == 0 { rc = try write(resolved, into: base, isRoot: true) }
                if rc == 0 { rc = fdt_finish(base) }
                return rc
            }
            if result == -FDT_ERR_NOSPACE {
                capacity *= 2
                continue
            }
            guard result == 0 else { throw ParseError.invalid("libfdt could not write the tree: \(errorText(result))") }
            let total = buffer.withUnsafeBytes { Int(CLibFDT_totalsize($0.baseAddress)) }
            guard total <= buffer.count else { throw ParseError.invalid("libfdt reported totalsize \(total) beyond its buffer") }
            return Array(buffer[0..<total])
        }
        throw ParseError.limit("device tree would exceed \(maxSize * 2) bytes")
    }

    private static func write(_ node: DTNode, into fdt: UnsafeMutableRawPointer, isRoot: Bool) throws(ParseError) -> Int32 {
        guard !node.name.utf8.contains(0) else { throw .invalid("node name \"\(node.name)\" holds a NUL") }
        var rc = fdt_begin_node(fdt, isRoot ? "" : node.name)
        guard rc == 0 else { return rc }
        for property in node.properties {
            guard !property.name.isEmpty, !property.name.utf8.contains(0) else {
                throw .invalid("property name \"\(property.name)\" in node \(node.name) is empty or holds a NUL")
            }
            let bytes = try property.value.encoded(phandles: [:])
            // An empty value still gets a valid pointer: libfdt memcpy()s from it.
            let storage = bytes.isEmpty ? [0] : bytes
            rc = storage.withUnsafeBytes { fdt_property(fdt, property.name, $0.baseAddress, Int32(bytes.count)) }
            guard rc == 0 else { return rc }
        }
        for child in node.children {
            rc = try write(child, into: fdt, isRoot: false)
            guard rc == 0 else { return rc }
        }
        return fdt_end_node(fdt)
    }
}
