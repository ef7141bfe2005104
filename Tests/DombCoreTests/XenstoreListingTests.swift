//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel
import DombTestSupport
import Foundation
import Testing

@Suite struct XenstoreListingTests {
    // What xenstore_client.c prints for `xenstore-ls -p /local/domain/2` (indented, padded
    // with ". ." to column 60 on an 80-column terminal) and `xenstore-ls -f -p`.
    static let indented = """
        vm = "/vm/9a6857f8-05a0-4c8d-92c3-1ea04bc28c32" . . . . . . . .  (n0,r2)
        name = "guest_centos7" . . . . . . . . . . . . . . . . . . . .  (n0,r2)
        control = "" . . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r2)
         shutdown = "" . . . . . . . . . . . . . . . . . . . . . . . .  (n2)
         platform-feature-xs_reset_watches = "1" . . . . . . . . . . .  (n0,r2)
        device = "" . . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r2)
         vif = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r2)
          0 = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n2,r1)
           backend = "/local/domain/1/backend/vif/2/0" . . . . . . .  (n2,r1)
           mac = "00:16:3e:07:df:91" . . . . . . . . . . . . . . . .  (n2,r1)
        error = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n2)
         device = "" . . . . . . . . . . . . . . . . . . . . . . . . .  (n2)
          vif = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n2)
           0 = "" . . . . . . . . . . . . . . . . . . . . . . . . . .  (n2)
            error = "1 allocating event channel" . . . . . . . . . . .  (n2)
        weird = "back\\\\slash \\012newline a.\\..."  (n0,r2)
        """

    @Test func readsTheIndentedForm() throws {
        let listing = try XenstoreListing(parsing: Self.indented, root: "/local/domain/2")
        #expect(listing.entries.count == 16)
        #expect(listing["/local/domain/2/vm"]?.value == "/vm/9a6857f8-05a0-4c8d-92c3-1ea04bc28c32")
        #expect(listing["/local/domain/2/control/shutdown"]?.perms == [XenstorePermission(.none, 2)])
        #expect(listing["/local/domain/2/device/vif/0/mac"]?.perms == [XenstorePermission(.none, 2), XenstorePermission(.read, 1)])
        #expect(listing["/local/domain/2/error/device/vif/0/error"]?.value == "1 allocating event channel")
        let weird = try #require(listing["/local/domain/2/weird"])
        #expect(weird.value == "back\\slash \nnewline a.")
        #expect(weird.truncated)
    }

    @Test func readsTheFullPathForm() throws {
        let text = """
            /local/domain/2/device/vif/0/backend = "/local/domain/1/backend/vif/2/0"  (n2,r1)
            /local/domain/2/control/platform-feature-multiprocessor-suspend = "1"  (n0,r2)
            /tool = ""
            """
        let listing = try XenstoreListing(parsing: text)
        #expect(listing.entries.map(\.path) == [
            "/local/domain/2/device/vif/0/backend", "/local/domain/2/control/platform-feature-multiprocessor-suspend", "/tool",
        ])
        #expect(listing.entries[2].perms.isEmpty)
    }

    @Test func rejectsBrokenListingsNamingTheLine() {
        for (text, line) in [
            ("/a = \"b\"\n/c = \"d", 2), ("/a/ = \"\"", 1), ("x = \"\"\n   y = \"\"", 2), ("/a = \"\"  (q0)", 1),
            ("/a = \"\\9\"", 1), ("/a \"\"", 1), ("/a = \"\"  ()", 1),
        ] {
            let error = #expect(throws: ParseError.self, "\(text)") { try XenstoreListing(parsing: text) }
            #expect(error?.reason.hasPrefix("line \(line):") == true, "\(text): \(error?.reason ?? "")")
        }
    }

    /// Drip-feed: no strict prefix of a listing reads as the same tree.
    @Test func noStrictPrefixParsesToTheSameTree() throws {
        let text = try String(contentsOfFile: "\(Repository.root)/Tests/DombCoreTests/Fixtures/xenstore/vif-driver-domain.txt", encoding: .utf8)
        let full = try XenstoreListing(parsing: text)
        let bytes = Array(text.utf8)
        #expect(bytes.last == UInt8(ascii: "\n"))
        // Every prefix that loses more than the final newline.
        var sameTree: [Int] = []
        for cut in 0..<(bytes.count - 1) {
            let prefix = String(decoding: bytes[..<cut], as: UTF8.self)
            if let partial = try? XenstoreListing(parsing: prefix), partial == full { sameTree.append(cut) }
        }
        #expect(sameTree.isEmpty, "prefixes parsed to the full tree: \(sameTree)")
        // Without the trailing newline the text still reads in full.
        #expect(try XenstoreListing(parsing: String(text.dropLast())) == full)
    }
}

@Suite struct XenstoreComparisonTests {
    static func setup() throws -> (XenstorePlan, XenstoreResolvedPlan, [XenstoreListing.Entry]) {
        let guest = XenstoreCast.guest(devices: [try DeviceSpec(kind: .vif, backend: "drv", settings: ["mac": "00:16:3e:0a:0b:0c"])])
        var driver = XenstoreCast.driver
        driver.domid = nil
        let plan = try XenstorePlanner().plan(LaunchSpec(domains: [guest, driver]))
        var values = XenstoreCast.values(for: plan)
        values["drv"]?.domid = 23
        let resolved = try plan.resolve(values)
        let entries = resolved.nodes.map { XenstoreListing.Entry(path: $0.path, value: $0.value, perms: $0.perms) }
        return (plan, resolved, entries)
    }

    @Test func aPlanEqualsItsOwnTree() throws {
        let (plan, resolved, entries) = try Self.setup()
        // Unrelated nodes outside the plan's subtrees do not matter.
        let listing = XenstoreListing(entries: entries + [.init(path: "/local/domain/0/name", value: "Domain-0", perms: [XenstorePermission(.none, 0)])])
        #expect(resolved.compare(with: listing).isEqual)
        // The build-time values read back from the tree resolve to the same plan.
        let inferred = try plan.buildValues(from: listing)
        #expect(inferred["drv"]?.domid == 23)
        #expect(try plan.resolve(inferred) == resolved)
    }

    @Test func findsEveryKindOfDifference() throws {
        let (_, resolved, entries) = try Self.setup()
        var changed = entries
        let valueIndex = try #require(changed.firstIndex { $0.path == "/local/domain/5/memory/target" })
        changed[valueIndex].value = "1"
        let permsIndex = try #require(changed.firstIndex { $0.path == "/local/domain/5/device/vif/0/mtu" })
        changed[permsIndex].perms = [XenstorePermission(.none, 5)]
        changed.removeAll { $0.path == "/libxl/5/type" }
        changed.append(.init(path: "/local/domain/23/backend/vif/5/0/feature-sg", value: "1", perms: [XenstorePermission(.none, 23)]))
        let comparison = resolved.compare(with: XenstoreListing(entries: changed))
        #expect(Set(comparison.differences) == [
            .value(path: "/local/domain/5/memory/target", planned: "524288", actual: "1"),
            .perms(path: "/local/domain/5/device/vif/0/mtu", planned: [XenstorePermission(.none, 23), XenstorePermission(.read, 5)], actual: [XenstorePermission(.none, 5)]),
            .missing(path: "/libxl/5/type"),
            .extra(path: "/local/domain/23/backend/vif/5/0/feature-sg", value: "1"),
        ])
        // A running domain's backend features and state changes are forgiven, the rest not.
        changed[changed.firstIndex { $0.path == "/local/domain/5/device/vif/0/state" } ?? 0].value = "4"
        let running = resolved.compare(with: XenstoreListing(entries: changed), options: .running)
        #expect(Set(running.differences) == [
            .perms(path: "/local/domain/5/device/vif/0/mtu", planned: [XenstorePermission(.none, 23), XenstorePermission(.read, 5)], actual: [XenstorePermission(.none, 5)]),
            .missing(path: "/libxl/5/type"),
        ])
    }

    @Test func aKeptNodeMayHoldTheDaemonsValue() throws {
        let plan = try XenstoreApplierTests.plan()
        let store = FakeXenstore()
        _ = try XenstoreApplier().apply(plan, to: store)
        store.tree["/local/domain/5/console/tty"]?.value = Array("/dev/pts/0".utf8)
        let entries = store.tree.map { XenstoreListing.Entry(path: $0.key, value: String(decoding: $0.value.value, as: UTF8.self), perms: $0.value.perms, truncated: false) }
        #expect(plan.compare(with: XenstoreListing(entries: entries)).isEqual)
        // Any other value that differs still does.
        store.tree["/local/domain/5/console/type"]?.value = Array("ioemu".utf8)
        let changed = store.tree.map { XenstoreListing.Entry(path: $0.key, value: String(decoding: $0.value.value, as: UTF8.self), perms: $0.value.perms, truncated: false) }
        #expect(plan.compare(with: XenstoreListing(entries: changed)).differences == [
            .value(path: "/local/domain/5/console/type", planned: "xenconsoled", actual: "ioemu")
        ])
    }

    @Test func globs() {
        #expect(XenstoreComparisonOptions.matches("/local/domain/5/device/vif/0/state", "/local/domain/*/device/*/*/state"))
        #expect(XenstoreComparisonOptions.matches("/local/domain/5/data/a/b", "/local/domain/*/data/**"))
        #expect(!XenstoreComparisonOptions.matches("/local/domain/5/data", "/local/domain/*/data/*"))
        #expect(!XenstoreComparisonOptions.matches("/local/domain/5/device/vif/0/mac", "/local/domain/*/device/*/*/state"))
    }
}

@Suite struct XenstoreApplierTests {
    static func plan() throws -> XenstoreResolvedPlan {
        try XenstoreCast.resolvedPlan([
            XenstoreCast.guest(devices: [try DeviceSpec(kind: .vif, backend: "drv")]), XenstoreCast.driver,
        ])
    }

    @Test func writesEveryNodeWithItsPermissionsThenIntroduces() throws {
        let plan = try Self.plan()
        let store = FakeXenstore()
        // Stale nodes of an earlier domain with the same id are removed first.
        store.tree["/local/domain/5/stale"] = .init(value: Array("x".utf8), perms: [XenstorePermission(.none, 0)])
        store.tree["/local/domain/0/name"] = .init(value: Array("Domain-0".utf8), perms: [XenstorePermission(.none, 0)])
        let report = try XenstoreApplier().apply(plan, to: store)
        #expect(report.attempts == 1)
        #expect(report.nodesWritten == plan.nodes.count)
        for node in plan.nodes {
            #expect(store.tree[node.path] == .init(value: Array(node.value.utf8), perms: node.perms), "\(node.path)")
        }
        #expect(store.tree["/local/domain/5/stale"] == nil)
        #expect(store.tree["/local/domain/0/name"] != nil)
        #expect(store.introduced.map(\.0) == [3, 5])
        #expect(store.introduced.last.map { ($0.1, $0.2) } ?? (0, 0) == (1_044_476, 1))
        #expect(store.pending.isEmpty)
    }

    @Test func retriesOnEAGAINAndGivesUpAfterTheBound() throws {
        let plan = try Self.plan()
        let store = FakeXenstore()
        store.conflicts = 3
        let report = try XenstoreApplier(maximumAttempts: 4).apply(plan, to: store)
        #expect(report.attempts == 4)
        #expect(store.commitsAttempted == 4)
        #expect(store.tree.count >= plan.nodes.count)

        let busy = FakeXenstore()
        busy.conflicts = 100
        let error = #expect(throws: XenstoreApplyError.self) { try XenstoreApplier(maximumAttempts: 5).apply(plan, to: busy) }
        #expect(error?.reason.contains("EAGAIN") == true)
        #expect(busy.commitsAttempted == 5)
        #expect(busy.tree.isEmpty)
        #expect(busy.introduced.isEmpty)
        #expect(busy.pending.isEmpty)
    }

    @Test func aFailedRequestAbortsTheWholeTransaction() throws {
        let plan = try Self.plan()
        let store = FakeXenstore()
        store.tree["/local/domain/0/name"] = .init(value: Array("Domain-0".utf8), perms: [XenstorePermission(.none, 0)])
        let before = store.tree
        store.failWriteAt = plan.nodes[plan.nodes.count / 2].path
        let error = #expect(throws: XenstoreApplyError.self) { try XenstoreApplier().apply(plan, to: store) }
        #expect(error?.underlying?.errnoName == "EACCES")
        #expect(error?.description.contains(store.failWriteAt ?? "?") == true)
        #expect(store.tree == before)
        #expect(store.introduced.isEmpty)
        #expect(store.pending.isEmpty)
    }

    /// xenconsoled writes console 0's `tty` when libxl introduces the domain, before domb's
    /// transaction (seen on Xen 4.17); the plan keeps that value, read inside the transaction.
    @Test func consoleTTYWrittenByXenconsoledIsKept() throws {
        let plan = try Self.plan()
        let tty = "/local/domain/5/console/tty"
        #expect(plan.nodes.filter(\.keep).map(\.path).sorted() == ["/local/domain/3/console/tty", tty])

        let fresh = FakeXenstore()
        _ = try XenstoreApplier().apply(plan, to: fresh)
        #expect(fresh.tree[tty]?.value == [], "no pty yet: libxl's empty value")

        let running = FakeXenstore()
        running.tree[tty] = .init(value: Array("/dev/pts/3".utf8), perms: [XenstorePermission(.none, 0), XenstorePermission(.read, 5)])
        _ = try XenstoreApplier().apply(plan, to: running)
        #expect(running.tree[tty]?.value == Array("/dev/pts/3".utf8))
        #expect(running.tree[tty]?.perms == plan.nodes.first { $0.path == tty }?.perms)

        // xenconsoled writes while the transaction is open: the commit conflicts, the retry
        // reads its value.
        let racing = FakeXenstore()
        racing.daemonWrites = [(tty, Array("/dev/pts/7".utf8))]
        let report = try XenstoreApplier().apply(plan, to: racing)
        #expect(report.attempts == 2)
        #expect(racing.tree[tty]?.value == Array("/dev/pts/7".utf8))
    }

    @Test func aFailedIntroductionRemovesThePlanAgain() throws {
        let plan = try Self.plan()
        let store = FakeXenstore()
        store.failIntroduce = 5
        let error = #expect(throws: XenstoreApplyError.self) { try XenstoreApplier().apply(plan, to: store) }
        #expect(error?.introduced == ["drv"])
        #expect(error?.description.contains("guest") == true)
        #expect(!store.tree.keys.contains { $0.hasPrefix("/local/domain/5") || $0.hasPrefix("/libxl/5") })
    }
}
