//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

extension XenstorePlanner {
    /// The plan of a description, through the validation gate (as `build` plans it).
    func plan(_ spec: LaunchSpec) throws -> XenstorePlan { try plan(spec.validated()) }
}

/// The fixed cast of the golden tests (see Fixtures/xenstore/README.md).
enum XenstoreCast {
    static let uuid = "11111111-2222-4333-8444-555555555555"

    static func guest(type: GuestType = .pv, devices: [DeviceSpec] = []) -> DomainSpec {
        switch type {
        case .hvm:
            DomainSpec(
                name: "guest", domid: 5, uuid: uuid, type: .hvm, memoryKiB: 1_048_576, vcpus: 1,
                modules: [ModuleSpec(kind: .firmware, path: "/usr/lib/xen-4.17/boot/hvmloader")], devices: devices)
        default:
            DomainSpec(
                name: "guest", domid: 5, uuid: uuid, type: type, memoryKiB: 524_288, maxMemoryKiB: 1_048_576, vcpus: 2,
                maxVcpus: 3,
                modules: [
                    ModuleSpec(kind: .kernel, path: "/boot/vmlinuz", bootargs: "root=/dev/xvda1 console=hvc0"),
                    ModuleSpec(kind: .ramdisk, path: "/boot/initrd.img"),
                ], devices: devices)
        }
    }

    static let driver = DomainSpec(
        name: "drv", domid: 3, type: .pvh, memoryKiB: 262_144, isDriverDomain: true, modules: [ModuleSpec(kind: .kernel, path: "/boot/vmlinuz")])
    static let vtpmManager = DomainSpec(name: "vtpmmgr", domid: 4, type: .pvh, memoryKiB: 16_384, modules: [ModuleSpec(kind: .kernel, path: "/boot/vtpmmgr")])

    static func values(for plan: XenstorePlan) -> [String: XenstoreBuildValues] {
        var values: [String: XenstoreBuildValues] = [:]
        var next: UInt32 = 10
        for domain in plan.domains {
            values[domain.name] = XenstoreBuildValues(
                domid: next, uuid: String(format: "00000000-0000-4000-8000-%012x", next),
                storePort: 1, storeRingRef: 1_044_476, consolePort: 2, consoleRingRef: 1_044_479, startTime: "1700000000.42")
            next += 1
        }
        return values
    }

    static func resolvedPlan(_ domains: [DomainSpec]) throws -> XenstoreResolvedPlan {
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: domains))
        return try plan.resolve(values(for: plan))
    }

    static func fixture(_ name: String) throws -> XenstoreListing {
        let path = "\(Repository.root)/Tests/DombCoreTests/Fixtures/xenstore/\(name).txt"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try XenstoreListing(parsing: text)
    }

    /// Planned nodes below `roots`, minus those below `excluding`, as listing entries.
    static func nodes(of plan: XenstoreResolvedPlan, under roots: [String], excluding: [String] = []) -> [XenstoreListing.Entry] {
        plan.nodes.filter { node in
            roots.contains { XenstorePath.isWithin(node.path, $0) } && !excluding.contains { XenstorePath.isWithin(node.path, $0) }
        }.map { XenstoreListing.Entry(path: $0.path, value: $0.value, perms: $0.perms, truncated: false) }
    }

    /// Expects the plan's nodes below the fixture's top-level paths to be exactly the fixture.
    static func expectGolden(_ plan: XenstoreResolvedPlan, _ name: String, excluding: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try fixture(name).entries
        let paths = Set(expected.map(\.path))
        let roots = expected.map(\.path).filter { path in XenstorePath.parent(of: path).map { !paths.contains($0) } ?? true }
        let actual = nodes(of: plan, under: roots, excluding: excluding)
        let missing = expected.filter { !actual.contains($0) }
        let unexpected = actual.filter { !expected.contains($0) }
        #expect(missing.isEmpty, "fixture \(name): not planned as expected: \(missing.map(describe))", sourceLocation: sourceLocation)
        #expect(unexpected.isEmpty, "fixture \(name): planned but not in the fixture: \(unexpected.map(describe))", sourceLocation: sourceLocation)
        #expect(!expected.isEmpty, sourceLocation: sourceLocation)
    }

    static func describe(_ entry: XenstoreListing.Entry) -> String {
        "\(entry.path) = \"\(entry.value)\" (\(entry.perms.map(\.description).joined(separator: ",")))"
    }
}

/// An in-memory xenstored: transactions work on a copy that replaces the tree on commit.
final class FakeXenstore: XenstoreWriting, @unchecked Sendable {
    struct Node: Equatable {
        var value: [UInt8]
        var perms: [XenstorePermission]
    }

    var tree: [String: Node] = [:]
    var pending: [UInt32: [String: Node]] = [:]
    var nextID: UInt32 = 1
    /// Commits that answer EAGAIN before one succeeds.
    var conflicts = 0
    var commitsAttempted = 0
    /// Fail a write to this path with EACCES.
    var failWriteAt: String?
    var failIntroduce: UInt32?
    var introduced: [(UInt32, UInt64, UInt32)] = []
    /// Writes another client (a daemon) makes while the first commit is under way; that
    /// commit then conflicts, as xenstored's does when a node the transaction read changed.
    var daemonWrites: [(String, [UInt8])] = []

    func transactionStart() throws(XenstoreError) -> XenstoreTransaction {
        let id = nextID
        nextID += 1
        pending[id] = tree
        return XenstoreTransaction(id: id)
    }

    func transactionEnd(_ transaction: XenstoreTransaction, commit: Bool) throws(XenstoreError) -> Bool {
        guard let copy = pending.removeValue(forKey: transaction.id) else {
            throw XenstoreError(operation: "transaction end", errno: 22, errnoName: "EINVAL")
        }
        guard commit else { return true }
        commitsAttempted += 1
        if !daemonWrites.isEmpty {
            for (path, value) in daemonWrites { tree[path, default: Node(value: [], perms: [XenstorePermission(.none, 0)])].value = value }
            daemonWrites = []
            return false
        }
        if conflicts > 0 {
            conflicts -= 1
            return false
        }
        tree = copy
        return true
    }

    private func parentPerms(_ copy: [String: Node], _ path: String) -> [XenstorePermission] {
        var parent = XenstorePath.parent(of: path)
        while let current = parent, current != "/" {
            if let node = copy[current] { return node.perms }
            parent = XenstorePath.parent(of: current)
        }
        return [XenstorePermission(.none, 0)]
    }

    private func create(_ copy: inout [String: Node], _ path: String) {
        guard copy[path] == nil else { return }
        if let parent = XenstorePath.parent(of: path), parent != "/" { create(&copy, parent) }
        copy[path] = Node(value: [], perms: parentPerms(copy, path))
    }

    func write(_ path: String, _ value: [UInt8], in transaction: XenstoreTransaction) throws(XenstoreError) {
        if path == failWriteAt { throw XenstoreError(operation: "write", path: path, errno: 13, errnoName: "EACCES") }
        guard var copy = pending[transaction.id] else { throw XenstoreError(operation: "write", errno: 22, errnoName: "EINVAL") }
        do { try XenstorePath.validate(path) } catch { throw XenstoreError(operation: "write", path: path, errno: 22, errnoName: "EINVAL") }
        create(&copy, path)
        copy[path]?.value = value
        pending[transaction.id] = copy
    }

    func read(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) -> [UInt8]? {
        guard let copy = pending[transaction.id] else { throw XenstoreError(operation: "read", errno: 22, errnoName: "EINVAL") }
        return copy[path]?.value
    }

    func mkdir(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) {
        guard var copy = pending[transaction.id] else { throw XenstoreError(operation: "mkdir", errno: 22, errnoName: "EINVAL") }
        create(&copy, path)
        pending[transaction.id] = copy
    }

    func remove(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) {
        guard var copy = pending[transaction.id] else { throw XenstoreError(operation: "rm", errno: 22, errnoName: "EINVAL") }
        for key in copy.keys where XenstorePath.isWithin(key, path) { copy.removeValue(forKey: key) }
        pending[transaction.id] = copy
    }

    func setPermissions(_ path: String, _ perms: [XenstorePermission], in transaction: XenstoreTransaction) throws(XenstoreError) {
        guard var copy = pending[transaction.id], copy[path] != nil else {
            throw XenstoreError(operation: "set_permissions", path: path, errno: 2, errnoName: "ENOENT")
        }
        copy[path]?.perms = perms
        pending[transaction.id] = copy
    }

    func introduceDomain(domid: UInt32, ringRef: UInt64, port: UInt32) throws(XenstoreError) {
        if domid == failIntroduce { throw XenstoreError(operation: "introduce", errno: 16, errnoName: "EBUSY") }
        introduced.append((domid, ringRef, port))
    }
}
