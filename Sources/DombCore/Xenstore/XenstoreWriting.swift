//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A Xenstore transaction id (`xs_transaction_t`).
public struct XenstoreTransaction: Hashable, Sendable {
    public var id: UInt32
    public init(id: UInt32) { self.id = id }
}

/// A failed Xenstore request, with the errno xenstored (or the transport) returned.
public struct XenstoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String?
    public var errno: Int32
    public var errnoName: String
    public var detail: String

    /// Linux `EAGAIN`: a transaction conflicted and must be retried.
    public static let eagain: Int32 = 11

    public init(operation: String, path: String? = nil, errno: Int32, errnoName: String, detail: String = "") {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.errnoName = errnoName
        self.detail = detail
    }

    public var isAgain: Bool { errno == Self.eagain }

    public var description: String {
        var text = "Xenstore \(operation)"
        if let path { text += " \(path)" }
        text += " failed: \(errnoName)"
        if !detail.isEmpty { text += " (\(detail))" }
        return text
    }
}

/// What the plan applier needs from a Xenstore connection: libxenstore in production
/// (`DombXenstore.XenstoreClient`), a fake in tests.
public protocol XenstoreWriting {
    func transactionStart() throws(XenstoreError) -> XenstoreTransaction
    /// Commits (or aborts); returns false when xenstored answered `EAGAIN` and the whole
    /// transaction must be redone.
    func transactionEnd(_ transaction: XenstoreTransaction, commit: Bool) throws(XenstoreError) -> Bool
    func write(_ path: String, _ value: [UInt8], in transaction: XenstoreTransaction) throws(XenstoreError)
    /// The node's value inside the transaction; nil if it does not exist.
    func read(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) -> [UInt8]?
    func mkdir(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError)
    /// Removes a subtree; a missing path is not an error.
    func remove(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError)
    func setPermissions(_ path: String, _ perms: [XenstorePermission], in transaction: XenstoreTransaction) throws(XenstoreError)
    /// `XS_INTRODUCE`: xenstored maps the ring and starts serving the domain.
    func introduceDomain(domid: UInt32, ringRef: UInt64, port: UInt32) throws(XenstoreError)
}

/// What waiting for PV devices needs from Xenstore: reads, and a way to sleep until
/// something under watched paths changes (libxenstore watches in production, a simulated
/// store in tests).
public protocol XenstoreWatching: AnyObject {
    /// A node's value outside any transaction; nil if it does not exist.
    func read(_ path: String) throws(XenstoreError) -> [UInt8]?
    /// Returns when a node at or below one of `paths` changes, or after `seconds`. The
    /// watches are added the first time a path is given and stay until the connection ends.
    func waitForChange(under paths: [String], seconds: Double) throws(XenstoreError)
    /// The id of the domain this runs in: its `domid` node, read relative to its home as
    /// `libxl__get_domid` does.
    func ownDomid() throws(XenstoreError) -> UInt32
}

/// Why applying a plan failed. Nothing of the plan stays written: a failed transaction is
/// aborted, and a failed introduction removes the plan's nodes again.
public struct XenstoreApplyError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var underlying: XenstoreError?
    /// Introductions that succeeded before the failure (the nodes were rolled back).
    public var introduced: [String]

    public var description: String {
        var text = "applying the Xenstore plan failed: \(reason)"
        if let underlying { text += ": \(underlying)" }
        if !introduced.isEmpty { text += " (already introduced: \(introduced.joined(separator: ", ")))" }
        return text
    }
}

/// Writes a resolved plan in one transaction, all or nothing, then introduces the domains.
public struct XenstoreApplier: Sendable {
    /// How many times a transaction that ends in `EAGAIN` is redone before giving up.
    public var maximumAttempts: Int
    public var introduce: Bool

    public static let defaultMaximumAttempts = 16

    public init(maximumAttempts: Int = Self.defaultMaximumAttempts, introduce: Bool = true) {
        self.maximumAttempts = max(1, maximumAttempts)
        self.introduce = introduce
    }

    public struct Report: Hashable, Sendable {
        /// Transactions started (1 when nothing conflicted).
        public var attempts: Int
        public var nodesWritten: Int
        public var introduced: [String]
    }

    public func apply(_ plan: XenstoreResolvedPlan, to store: some XenstoreWriting) throws(XenstoreApplyError) -> Report {
        var attempts = 0
        while true {
            attempts += 1
            let outcome = transaction(store) { (t) throws(XenstoreError) in
                // Read inside the transaction: a daemon writing one of these meanwhile makes
                // the commit fail with EAGAIN, and the retry reads its value.
                var kept: [String: [UInt8]] = [:]
                for node in plan.nodes where node.keep {
                    if let current = try store.read(node.path, in: t) { kept[node.path] = current }
                }
                for path in plan.removals { try store.remove(path, in: t) }
                for node in plan.nodes {
                    try store.write(node.path, kept[node.path] ?? Array(node.value.utf8), in: t)
                    try store.setPermissions(node.path, node.perms, in: t)
                }
            }
            switch outcome {
            case .committed: break
            case .again where attempts < maximumAttempts: continue
            case .again:
                throw XenstoreApplyError(reason: "the transaction conflicted (EAGAIN) \(attempts) times", underlying: nil, introduced: [])
            case .failed(let error):
                throw XenstoreApplyError(reason: "the transaction was aborted, nothing was written", underlying: error, introduced: [])
            }
            break
        }

        var introduced: [String] = []
        if introduce {
            for introduction in plan.introductions {
                do throws(XenstoreError) {
                    try store.introduceDomain(domid: introduction.domid, ringRef: introduction.ringRef, port: introduction.port)
                    introduced.append(introduction.domain)
                } catch {
                    // Fail closed: take the nodes away again so no half-set-up domain is left.
                    _ = rollback(plan, store)
                    throw XenstoreApplyError(
                        reason: "introducing domain \"\(introduction.domain)\" (domid \(introduction.domid)) failed; the plan's nodes were removed",
                        underlying: error, introduced: introduced)
                }
            }
        }
        return Report(attempts: attempts, nodesWritten: plan.nodes.count, introduced: introduced)
    }

    enum Outcome {
        case committed
        case again
        case failed(XenstoreError)
    }

    func transaction(_ store: some XenstoreWriting, _ body: (XenstoreTransaction) throws(XenstoreError) -> Void) -> Outcome {
        let t: XenstoreTransaction
        do throws(XenstoreError) {
            t = try store.transactionStart()
        } catch {
            return error.isAgain ? .again : .failed(error)
        }
        do throws(XenstoreError) {
            try body(t)
        } catch {
            _ = try? store.transactionEnd(t, commit: false)
            return error.isAgain ? .again : .failed(error)
        }
        do throws(XenstoreError) {
            return try store.transactionEnd(t, commit: true) ? .committed : .again
        } catch {
            return error.isAgain ? .again : .failed(error)
        }
    }

    func rollback(_ plan: XenstoreResolvedPlan, _ store: some XenstoreWriting) -> Bool {
        for _ in 0..<maximumAttempts {
            switch transaction(store, { (t) throws(XenstoreError) in for path in plan.removals { try store.remove(path, in: t) } }) {
            case .committed: return true
            case .again: continue
            case .failed: return false
            }
        }
        return false
    }
}
