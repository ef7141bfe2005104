//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

/// A launch description as read from its files: the model, where each domain came from,
/// and notes on what was read but not carried into the model.
public struct LaunchDocument: Sendable {
    public var spec: LaunchSpec
    /// Domain name → where it was described: "file: node path", or the xl.cfg file.
    public var origins: [String: String]
    public var notes: [LaunchNote]
    /// The directory relative module paths are read from: the description file's own.
    public var baseDirectory: String

    public init(spec: LaunchSpec, origins: [String: String] = [:], notes: [LaunchNote] = [], baseDirectory: String = ".") {
        self.spec = spec
        self.origins = origins
        self.notes = notes
        self.baseDirectory = baseDirectory
    }

    /// A problem with its domain's node or file named; `file` names problems that
    /// concern no single domain.
    public func describe(_ problem: LaunchProblem, file: String) -> String {
        if let domain = problem.domain, let origin = origins[domain] {
            return "\(origin): \(problem)"
        }
        return "\(file): \(problem)"
    }

    /// The gate (``LaunchSpec/validated(images:)``) with each problem located in `file`.
    public func validated(images: (any ImageCapabilityChecking)? = nil, file: String) throws(LaunchValidationError) -> ValidatedLaunch {
        do {
            return try spec.validated(images: images)
        } catch {
            throw LaunchValidationError(problems: error.problems, lines: error.problems.map { describe($0, file: file) })
        }
    }

    /// Several documents as one system (xl.cfg files each describe one domain); module
    /// paths are rebased to the first document's directory.
    public static func combining(_ documents: [LaunchDocument]) -> LaunchDocument {
        var combined = LaunchDocument(spec: LaunchSpec(), baseDirectory: documents.first?.baseDirectory ?? ".")
        for document in documents {
            combined.spec.domains += LaunchFile.rebase(document.spec, from: document.baseDirectory, to: combined.baseDirectory).domains
            combined.spec.cpupools += document.spec.cpupools
            combined.spec.eventChannels += document.spec.eventChannels
            combined.spec.sharedMemory += document.spec.sharedMemory
            combined.spec.staticMode = combined.spec.staticMode || document.spec.staticMode
            combined.origins.merge(document.origins) { first, _ in first }
            combined.notes += document.notes
        }
        return combined
    }
}

/// Something a front end read but did not carry into the model, or a default it filled
/// in. Typed, so that `--strict` decides by kind.
public struct LaunchNote: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable {
        /// xl knows the key, but it has no place in a launch description (display, emulated hardware…).
        case ignoredKey = "ignored key"
        /// Neither xl 4.17 nor domb knows the key.
        case unknownKey = "unknown key"
        /// A device-tree node that is not part of the model (Xen's own `xen,config` modules).
        case ignoredNode = "ignored node"
        /// Accepted, with a remark (a default filled in, a key xl itself ignores here).
        case remark
    }

    public var kind: Kind
    /// The file the note is about (set by the loader).
    public var file: String?
    /// The 1-based line (xl.cfg) or nil.
    public var line: Int?
    /// The xl.cfg key or device-tree node path.
    public var key: String?
    public var message: String

    public init(kind: Kind, file: String? = nil, key: String? = nil, line: Int? = nil, message: String) {
        self.kind = kind
        self.file = file
        self.key = key
        self.line = line.flatMap { $0 > 0 ? $0 : nil }
        self.message = message
    }

    /// Whether something in the input was left out of the model (what `--strict` refuses).
    public var dropsInput: Bool { kind != .remark }

    public var description: String {
        var text = file.map { "\($0): " } ?? ""
        if let line { text += "line \(line): " }
        if let key { text += "\(kind.rawValue) \"\(key)\": " } else if kind != .remark { text += "\(kind.rawValue): " }
        return text + message
    }
}
