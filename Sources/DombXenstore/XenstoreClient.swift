//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CXenstore
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// A connection to xenstored through libxenstore (`xs_open`: the unix socket
/// `/run/xenstored/socket` if xenstored runs here, else the `/dev/xen/xenbus` device).
public final class XenstoreClient: XenstoreWriting, XenstoreWatching {
    private let handle: OpaquePointer
    /// Paths with a watch on them (token "domb").
    private var watched = Set<String>()

    /// Opens a connection; off Xen (no xenstored socket, no xenbus device) this fails
    /// with an error that says so.
    public init() throws(XenstoreError) {
        guard let handle = xs_open(0) else {
            let code = errno
            throw XenstoreError(
                operation: "open", errno: code, errnoName: Self.name(code),
                detail: "no xenstored socket (/run/xenstored/socket) and no /dev/xen/xenbus: "
                    + "domb must run in dom0 on a Xen host with xenstored running")
        }
        self.handle = handle
    }

    deinit { xs_close(handle) }

    public func transactionStart() throws(XenstoreError) -> XenstoreTransaction {
        let t = xs_transaction_start(handle)
        guard t != 0 else { throw failure("transaction start") }
        return XenstoreTransaction(id: t)
    }

    public func transactionEnd(_ transaction: XenstoreTransaction, commit: Bool) throws(XenstoreError) -> Bool {
        if xs_transaction_end(handle, transaction.id, !commit) { return true }
        let code = errno
        if code == EAGAIN && commit { return false }
        throw XenstoreError(operation: commit ? "transaction commit" : "transaction abort", errno: code, errnoName: Self.name(code))
    }

    public func write(_ path: String, _ value: [UInt8], in transaction: XenstoreTransaction) throws(XenstoreError) {
        let ok = value.withUnsafeBytes { buffer in
            xs_write(handle, transaction.id, path, buffer.baseAddress, UInt32(buffer.count))
        }
        guard ok else { throw failure("write", path) }
    }

    public func mkdir(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) {
        guard xs_mkdir(handle, transaction.id, path) else { throw failure("mkdir", path) }
    }

    public func remove(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) {
        if xs_rm(handle, transaction.id, path) { return }
        let code = errno
        if code == ENOENT { return }
        throw XenstoreError(operation: "rm", path: path, errno: code, errnoName: Self.name(code))
    }

    public func setPermissions(_ path: String, _ perms: [XenstorePermission], in transaction: XenstoreTransaction) throws(XenstoreError) {
        var raw = perms.map { xs_permissions(id: $0.domid, perms: $0.access.bits) }
        let ok = raw.withUnsafeMutableBufferPointer { buffer in
            xs_set_permissions(handle, transaction.id, path, buffer.baseAddress, UInt32(buffer.count))
        }
        guard ok else { throw failure("set_permissions", path) }
    }

    public func introduceDomain(domid: UInt32, ringRef: UInt64, port: UInt32) throws(XenstoreError) {
        guard xs_introduce_domain(handle, domid, UInt(ringRef), port) else {
            throw failure("introduce domain \(domid)")
        }
    }

    public func read(_ path: String, in transaction: XenstoreTransaction) throws(XenstoreError) -> [UInt8]? {
        try read(path, transaction: transaction.id)
    }

    /// Reads a node outside any transaction; nil if it does not exist.
    public func read(_ path: String) throws(XenstoreError) -> [UInt8]? {
        try read(path, transaction: 0)
    }

    private func read(_ path: String, transaction: UInt32) throws(XenstoreError) -> [UInt8]? {
        var length: UInt32 = 0
        guard let pointer = xs_read(handle, transaction, path, &length) else {
            let code = errno
            if code == ENOENT { return nil }
            throw XenstoreError(operation: "read", path: path, errno: code, errnoName: Self.name(code))
        }
        defer { free(pointer) }
        return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
    }

    public func waitForChange(under paths: [String], seconds: Double) throws(XenstoreError) {
        for path in paths where !watched.contains(path) {
            // A new watch fires once at once; that only costs one more look.
            guard xs_watch(handle, path, "domb") else { throw failure("watch", path) }
            watched.insert(path)
        }
        // xs_fileno: readable when a watch event is queued (libxenstore.h).
        var descriptor = pollfd(fd: xs_fileno(handle), events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: Int(max(0, seconds) * 1000))
        if poll(&descriptor, 1, milliseconds) < 0 && errno != EINTR {
            throw failure("poll for watch events")
        }
        // Drain every queued event without blocking: one look serves them all.
        while let event = xs_check_watch(handle) { free(event) }
    }

    public func ownDomid() throws(XenstoreError) -> UInt32 {
        // Relative to this domain's home, /local/domain/<id>, as libxl__get_domid reads it.
        guard let bytes = try read("domid"), let domid = UInt32(String(decoding: bytes, as: UTF8.self)) else {
            throw XenstoreError(operation: "read", path: "domid", errno: ENOENT, errnoName: Self.name(ENOENT), detail: "this domain has no domid node")
        }
        return domid
    }

    private func failure(_ operation: String, _ path: String? = nil) -> XenstoreError {
        let code = errno
        return XenstoreError(operation: operation, path: path, errno: code, errnoName: Self.name(code))
    }

    static func name(_ code: Int32) -> String {
        let names: [Int32: String] = [
            EINVAL: "EINVAL", EACCES: "EACCES", EEXIST: "EEXIST", EISDIR: "EISDIR", ENOENT: "ENOENT", ENOMEM: "ENOMEM",
            ENOSPC: "ENOSPC", EIO: "EIO", ENOTEMPTY: "ENOTEMPTY", ENOSYS: "ENOSYS", EROFS: "EROFS", EBUSY: "EBUSY",
            EAGAIN: "EAGAIN", EISCONN: "EISCONN", E2BIG: "E2BIG", EPERM: "EPERM", ECONNREFUSED: "ECONNREFUSED",
        ]
        let text = String(cString: strerror(code))
        return names[code].map { "\($0) (\(text))" } ?? "errno \(code) (\(text))"
    }
}
