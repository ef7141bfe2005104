//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

internal import CXLUtil
import DombCore

#if canImport(Glibc)
import Glibc
#endif

/// An xl domain configuration file read by libxlutil, the parser `xl` itself uses
/// (`xlu_cfg_init` + `xlu_cfg_readdata`, from libxen-dev): the file syntax, numbers, strings,
/// lists, `+=` and comments mean exactly what they mean to `xl` of the same Xen.
///
/// Not thread-safe: libxlutil writes its messages to the file's report stream, which
/// every call reads back.
public final class XLUtilConfig {
    /// Caps on untrusted input, checked before (file size) and after libxlutil parses.
    public static let maxFileSize = 1 << 20
    /// Longest string value (after `+=`), in bytes.
    public static let maxStringLength = 4096
    /// Most items in one list (after `+=`).
    public static let maxListItems = 256
    /// Most statements (`key = value` and `key += value`) in a file.
    public static let maxSettings = 1024
    /// Deepest nesting of lists (`vsnd` uses three levels).
    public static let maxListDepth = 8

    /// Every key once, with the value xl reads for it (the last assignment, with `+=`
    /// applied), ordered by that assignment's line.
    public let settings: [XLSetting]
    private let config: OpaquePointer
    private let report: Report

    /// The name libxlutil puts in front of its messages; rewritten to `line N:` (see
    /// `Report.take`), so that callers add the file's real name once.
    fileprivate static let sourceLabel = "xl.cfg"

    /// Parses `bytes` as xl does (`xlu_cfg_readdata`).
    /// - Throws: `ParseError`: `.limitExceeded` past a cap, `.invalidValue` with
    ///   libxlutil's own message (line and the text near the error) for a syntax error,
    ///   or for a string that is not UTF-8.
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= Self.maxFileSize else {
            throw .limit("xl.cfg is \(bytes.count) bytes; at most \(Self.maxFileSize) are read")
        }
        // libxlutil aborts (xlu__cfgl_dequote's assertion) on a NUL byte inside a quoted
        // string, and so does xl: refuse any NUL before it gets there.
        if let offset = bytes.firstIndex(of: 0) {
            throw .invalid("xl.cfg has a NUL byte, which xl's parser cannot take", offset: offset)
        }
        let report = try Report()
        guard let config = xlu_cfg_init(report.file, Self.sourceLabel) else {
            throw .invalid("libxlutil: xlu_cfg_init failed (out of memory)")
        }
        let rc = bytes.withUnsafeBufferPointer { buffer in
            // An empty array may have no base address; libxlutil wants a pointer all the same.
            let data = buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
            return data.map { xlu_cfg_readdata(config, $0, Int32(buffer.count)) } ?? xlu_cfg_readdata(config, "", 0)
        }
        guard rc == 0 else {
            xlu_cfg_destroy(config)
            throw .invalid(report.take(orElse: "libxlutil could not parse the file: \(errnoText(rc))"))
        }
        do {
            settings = try Self.collect(config, report: report)
        } catch {
            xlu_cfg_destroy(config)
            throw error
        }
        self.config = config
        self.report = report
    }

    deinit { xlu_cfg_destroy(config) }

    /// The setting xl reads for `key`, if the file has one.
    public func setting(_ key: String) -> XLSetting? { settings.first { $0.name == key } }

    /// The key as a number, as xl reads it: `strtol` base 0 (`0400` is 256, `0x10` is 16),
    /// refused when given with `+=`; nil when the key is absent.
    /// - Throws: `ParseError` with libxlutil's message (not a number, out of range, a list).
    ///
    /// The corresponding C function is `xlu_cfg_get_long`.
    public func number(_ key: String) throws(ParseError) -> Int? {
        _ = report.take(orElse: "")
        var value: CLong = 0
        let rc = xlu_cfg_get_long(config, key, &value, 0)
        switch rc {
        case 0: return Int(value)
        case ESRCH: return nil
        default: throw .invalid(report.take(orElse: "\(key): \(errnoText(rc))"))
        }
    }

    /// One DISKSPEC (xl-disk-configuration(5)), as xl parses each item of `disk = [...]`.
    /// - Throws: `ParseError` with libxlutil's message naming the spec.
    ///
    /// The corresponding C function is `xlu_disk_parse` (one spec).
    public func parseDisk(_ spec: String) throws(ParseError) -> XLDiskSpec {
        _ = report.take(orElse: "")
        var disk = libxl_device_disk()
        libxl_device_disk_init(&disk)
        defer { libxl_device_disk_dispose(&disk) }
        let rc = spec.withCString { text in
            withUnsafePointer(to: Optional(text)) { specs in xlu_disk_parse(config, 1, specs, &disk) }
        }
        guard rc == 0 else {
            throw .invalid(report.take(orElse: "disk \"\(TerminalText.escape(spec))\": \(errnoText(rc))"))
        }
        return try XLDiskSpec(disk, spec: spec)
    }

    /// A VIFSPEC `rate=` value (`10Mb/s@20ms`).
    /// - Throws: `ParseError` with libxlutil's message.
    ///
    /// The corresponding C function is `xlu_vif_parse_rate`.
    public func parseVifRate(_ rate: String) throws(ParseError) -> XLVifRate {
        _ = report.take(orElse: "")
        var nic = libxl_device_nic()
        libxl_device_nic_init(&nic)
        defer { libxl_device_nic_dispose(&nic) }
        let rc = xlu_vif_parse_rate(config, rate, &nic)
        guard rc == 0 else {
            throw .invalid(report.take(orElse: "vif rate \"\(TerminalText.escape(rate))\": \(errnoText(rc))"))
        }
        return XLVifRate(bytesPerInterval: nic.rate_bytes_per_interval, intervalMicroseconds: nic.rate_interval_usecs)
    }

    // MARK: Walking what libxlutil stored

    /// One entry per key: the newest statement (the one `xlu_cfg_get_*` finds), ordered by
    /// line, with the lines of older `=` statements whose value it replaced. Each is checked
    /// against the public getters (see shim.h).
    private static func collect(_ config: OpaquePointer, report: Report) throws(ParseError) -> [XLSetting] {
        var index: [String: Int] = [:]
        // Per key: still inside the `+=` chain that ends at the newest statement.
        var merging: [String: Bool] = [:]
        var result: [XLSetting] = []
        var statements = 0
        var next = CXLUtil_newest_setting(config)
        while let setting = next {
            statements += 1
            guard statements <= maxSettings else {
                throw .limit("xl.cfg has more than \(maxSettings) settings")
            }
            next = UnsafePointer(setting.pointee.next)
            guard let namePointer = setting.pointee.name, let value = setting.pointee.value else {
                throw layoutMismatch("a setting without a name or value")
            }
            let name = String(cString: namePointer)
            let line = Int(setting.pointee.lineno)
            let addition = setting.pointee.op == XLU_OP_ADDITION
            if let existing = index[name] {
                // `+=` folded this statement's value into the newer one; past the chain's
                // first `=`, xl dropped it.
                if merging[name] == true {
                    merging[name] = addition
                } else {
                    result[existing].overriddenLines.insert(line, at: 0)
                }
                continue
            }
            try checkLayout(config, name: name, value: value)
            let converted = try convert(config, value, key: name, line: line, depth: 1)
            index[name] = result.count
            merging[name] = addition
            result.append(XLSetting(name: name, value: converted, line: line, isAddition: addition))
        }
        return result.sorted { ($0.line, $0.name) < ($1.line, $1.name) }
    }

    /// The setting read through the restated layout must be the one libxlutil's own
    /// lookup finds; otherwise the installed libxlutil is laid out differently.
    private static func checkLayout(_ config: OpaquePointer, name: String, value: OpaquePointer) throws(ParseError) {
        switch xlu_cfg_value_type(value) {
        case XLU_STRING:
            var mine: UnsafeMutablePointer<CChar>?
            var theirs: UnsafePointer<CChar>?
            guard xlu_cfg_value_get_string(config, value, &mine, 1) == 0,
                xlu_cfg_get_string(config, name, &theirs, 1) == 0, UnsafePointer(mine) == theirs
            else { throw layoutMismatch("string \(name)") }
        case XLU_LIST:
            var mine: OpaquePointer?
            var theirs: OpaquePointer?
            guard xlu_cfg_value_get_list(config, value, &mine, 1) == 0,
                xlu_cfg_get_list(config, name, &theirs, nil, 1) == 0, mine == theirs
            else { throw layoutMismatch("list \(name)") }
        default:
            throw layoutMismatch("value type of \(name)")
        }
    }

    private static func layoutMismatch(_ what: String) -> ParseError {
        .invalid("libxlutil's internal layout is not that of Xen 4.13–4.22 (\(what)); domb cannot list the settings")
    }

    private static func convert(
        _ config: OpaquePointer, _ value: OpaquePointer, key: String, line: Int, depth: Int
    ) throws(ParseError) -> XLValue {
        switch xlu_cfg_value_type(value) {
        case XLU_STRING:
            var text: UnsafeMutablePointer<CChar>?
            guard xlu_cfg_value_get_string(config, value, &text, 1) == 0, let text else {
                throw .invalid("line \(line): \(key): libxlutil returned no string")
            }
            return .string(try string(text, key: key, line: line))
        case XLU_LIST:
            guard depth <= maxListDepth else {
                throw .limit("line \(line): \(key): lists nested deeper than \(maxListDepth)")
            }
            var list: OpaquePointer?
            guard xlu_cfg_value_get_list(config, value, &list, 1) == 0, let list else {
                throw .invalid("line \(line): \(key): libxlutil returned no list")
            }
            var items: [XLValue] = []
            while let item = xlu_cfg_get_listitem2(list, Int32(items.count)) {
                guard items.count < maxListItems else {
                    throw .limit("line \(line): \(key) has more than \(maxListItems) items")
                }
                items.append(try convert(config, item, key: key, line: line, depth: depth + 1))
            }
            return .list(items)
        default:
            throw layoutMismatch("value type of \(key)")
        }
    }

    private static func string(_ pointer: UnsafePointer<CChar>, key: String, line: Int) throws(ParseError) -> String {
        let length = strlen(pointer)
        guard length <= maxStringLength else {
            throw .limit("line \(line): \(key): a string longer than \(maxStringLength) bytes")
        }
        guard let text = String(validatingCString: pointer) else {
            throw .invalid("line \(line): \(key): a string that is not UTF-8")
        }
        return text
    }
}

extension XLDiskSpec {
    /// What `xlu_disk_parse` left in `disk`.
    fileprivate init(_ disk: libxl_device_disk, spec: String) throws(ParseError) {
        func text(_ pointer: UnsafeMutablePointer<CChar>?) throws(ParseError) -> String? {
            guard let pointer else { return nil }
            guard let value = String(validatingCString: pointer) else {
                throw .invalid("disk \"\(TerminalText.escape(spec))\": a value that is not UTF-8")
            }
            return value
        }
        func flag(_ value: libxl_defbool) -> Bool? { value.val == 0 ? nil : value.val > 0 }
        // xlu_disk_parse refuses a spec without a vdev; this only guards the C contract.
        guard let vdev = try text(disk.vdev) else { throw .invalid("disk \"\(TerminalText.escape(spec))\": no vdev") }
        let format: Format
        switch disk.format {
        case LIBXL_DISK_FORMAT_QCOW: format = .qcow
        case LIBXL_DISK_FORMAT_QCOW2: format = .qcow2
        case LIBXL_DISK_FORMAT_VHD: format = .vhd
        case LIBXL_DISK_FORMAT_RAW: format = .raw
        case LIBXL_DISK_FORMAT_EMPTY: format = .empty
        case LIBXL_DISK_FORMAT_QED: format = .qed
        default: throw .invalid("disk \"\(TerminalText.escape(spec))\": libxlutil left format \(disk.format.rawValue)")
        }
        let backend: Backend?
        switch disk.backend {
        case LIBXL_DISK_BACKEND_UNKNOWN: backend = nil
        case LIBXL_DISK_BACKEND_PHY: backend = .phy
        case LIBXL_DISK_BACKEND_TAP: backend = .tap
        case LIBXL_DISK_BACKEND_QDISK: backend = .qdisk
        case LIBXL_DISK_BACKEND_STANDALONE: backend = .standalone
        default: throw .invalid("disk \"\(TerminalText.escape(spec))\": libxlutil left backend \(disk.backend.rawValue)")
        }
        let specification: Specification?
        switch disk.specification {
        case LIBXL_DISK_SPECIFICATION_UNKNOWN: specification = nil
        case LIBXL_DISK_SPECIFICATION_XEN: specification = .xen
        case LIBXL_DISK_SPECIFICATION_VIRTIO: specification = .virtio
        default:
            throw .invalid("disk \"\(TerminalText.escape(spec))\": libxlutil left specification \(disk.specification.rawValue)")
        }
        let colo = COLO(
            enable: flag(disk.colo_enable), host: try text(disk.colo_host),
            port: disk.colo_port == 0 ? nil : disk.colo_port, export: try text(disk.colo_export),
            activeDisk: try text(disk.active_disk), hiddenDisk: try text(disk.hidden_disk))
        self.init(
            backendDomain: try text(disk.backend_domname), target: try text(disk.pdev_path), vdev: vdev,
            backend: backend, format: format, script: try text(disk.script), removable: disk.removable != 0,
            readWrite: disk.readwrite != 0, isCDROM: disk.is_cdrom != 0, directIOSafe: disk.direct_io_safe,
            discard: flag(disk.discard_enable), specification: specification,
            colo: colo == COLO() ? nil : colo, trusted: flag(disk.trusted))
    }
}

/// libxlutil's report stream, in memory (`open_memstream`): what it prints about the
/// file becomes the text of domb's errors.
private final class Report {
    let file: UnsafeMutablePointer<FILE>
    private let buffer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let size: UnsafeMutablePointer<Int>
    private var consumed = 0

    init() throws(ParseError) {
        buffer = .allocate(capacity: 1)
        buffer.initialize(to: nil)
        size = .allocate(capacity: 1)
        size.initialize(to: 0)
        guard let file = open_memstream(buffer, size) else {
            buffer.deallocate()
            size.deallocate()
            throw .invalid("cannot open a memory stream for libxlutil's messages: \(errnoText(errno))")
        }
        self.file = file
    }

    deinit {
        fclose(file)
        free(buffer.pointee)
        buffer.deallocate()
        size.deallocate()
    }

    /// What libxlutil printed since the last call, one line per message, with its
    /// `xl.cfg:N:` prefix written `line N:` and control characters escaped; `fallback`
    /// when it printed nothing.
    func take(orElse fallback: String) -> String {
        fflush(file)
        guard let base = buffer.pointee, size.pointee > consumed else { return fallback }
        let bytes = UnsafeRawBufferPointer(start: base + consumed, count: size.pointee - consumed)
        consumed = size.pointee
        let label = XLUtilConfig.sourceLabel
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map { line -> String in
            var text = Substring(line)
            if text.hasPrefix(label + ":") {
                text = text.dropFirst(label.count + 1)
                let digits = text.prefix { $0.isASCII && $0.isNumber }
                if !digits.isEmpty, text.dropFirst(digits.count).hasPrefix(":") {
                    text = "line \(digits):" + text.dropFirst(digits.count + 1)
                } else {
                    text = text.drop { $0 == " " }
                }
            }
            return TerminalText.escape(String(text))
        }
        // The first lines are the useful ones; a hostile file cannot make the message huge.
        let joined = lines.prefix(8).joined(separator: "; ")
        return joined.isEmpty ? fallback : String(joined.prefix(2000))
    }
}

private func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
