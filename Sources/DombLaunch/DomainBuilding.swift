//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombModel

/// A domain that a backend has built (paused) and that the boot flow may unpause or must
/// tear down.
public struct BuiltDomain: Hashable, Sendable, Codable {
    public var name: String
    public var domid: UInt32
    /// What only the hypervisor knew until the build (domid, uuid, store and console rings),
    /// for the Xenstore plan's placeholders.
    public var values: XenstoreBuildValues

    public init(name: String, domid: UInt32, values: XenstoreBuildValues? = nil) {
        self.name = name
        self.domid = domid
        self.values = values ?? XenstoreBuildValues(domid: domid)
    }
}

/// The images of one domain as the builder must load them: the verified, measured bytes
/// and a path that refers to exactly those bytes (a sealed memfd), never the original file.
public struct DomainImages: Sendable {
    public var modules: [ModuleKind: SealedImage]

    public init(modules: [ModuleKind: SealedImage] = [:]) { self.modules = modules }

    public subscript(kind: ModuleKind) -> SealedImage? { modules[kind] }
}

/// Builds, starts and destroys domains. Implementations: ``LibxlBackend`` on Xen and
/// ``PlanBackend`` off Xen (and in tests).
public protocol DomainBuilding: AnyObject {
    /// "libxl" or "plan", for messages and the boot report.
    var backendName: String { get }
    /// Builds `domain` from `images` and leaves it paused.
    func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain
    func unpause(_ domain: BuiltDomain) throws
    func destroy(_ domain: BuiltDomain) throws
}

/// One step the plan backend recorded.
public enum PlanAction: Hashable, Sendable, CustomStringConvertible {
    /// `affinity`: the xl settings of the CPU affinities as described (`cpus = "nodes:0,^3"`),
    /// unresolved: off Xen the plan does not know the host's CPUs and NUMA nodes.
    case build(name: String, domid: UInt32, type: GuestType, memoryKiB: UInt64, vcpus: UInt32, images: [String], affinity: [String])
    case unpause(name: String, domid: UInt32)
    case destroy(name: String, domid: UInt32)

    public var description: String {
        switch self {
        case let .build(name, domid, type, memory, vcpus, images, affinity):
            "build \(name) as domid \(domid): \(type.rawValue), \(memory / 1024) MiB, \(vcpus) vCPU(s)"
                + affinity.map { ", \($0)" }.joined() + ", paused; images \(images.joined(separator: ", "))"
        case let .unpause(name, domid): "unpause \(name) (domid \(domid))"
        case let .destroy(name, domid): "destroy \(name) (domid \(domid))"
        }
    }
}

/// The backend off Xen: assigns domids as Xen would (the requested one, else the next
/// free one from 1), checks every image is there, and records what it would do.
public final class PlanBackend: DomainBuilding, @unchecked Sendable {
    public let backendName = "plan"
    public private(set) var actions: [PlanAction] = []
    private var usedDomids = Set<UInt32>()
    private let report: (PlanAction) -> Void

    /// - Parameter report: called for each action as it happens (the CLI prints them).
    public init(report: @escaping (PlanAction) -> Void = { _ in }) { self.report = report }

    public func build(_ domain: DomainSpec, images: DomainImages) throws -> BuiltDomain {
        let domid: UInt32
        if let requested = domain.domid, requested != 0 {
            guard !usedDomids.contains(requested) else {
                throw BootError.build(domain: domain.name, reason: "domid \(requested) is already in use")
            }
            domid = requested
        } else {
            var candidate: UInt32 = 1
            while usedDomids.contains(candidate) { candidate += 1 }
            domid = candidate
        }
        for module in domain.modules where images[module.kind] == nil {
            throw BootError.build(domain: domain.name, reason: "no verified bytes for its \(module.kind.rawValue) module")
        }
        usedDomids.insert(domid)
        // Values a real build learns from Xen; here they are the plan's stand-ins: the
        // guest's magic-page frames and the first event channels, as libxl would pick them.
        let values = XenstoreBuildValues(
            domid: domid, uuid: domain.uuid ?? Self.planUUID(for: domain.name), storePort: 1, storeRingRef: 0xFEFFC,
            consolePort: 2, consoleRingRef: 0xFEFFD, startTime: XenstoreBuildValues.startTime(seconds: 0, microseconds: 0))
        let names = domain.modules.compactMap { module in
            images[module.kind].map { "\(module.kind.rawValue) \($0.count) bytes" }
        }
        var affinity: [String] = []
        for (key, value) in [("cpus", domain.cpuAffinity), ("cpus_soft", domain.softCPUAffinity)] {
            switch value {
            case .allVCPUs(let set)?: affinity.append("\(key) = \"\(set.cpuList)\"")
            case .perVCPU(let sets)?: affinity.append("\(key) = [\(sets.map { "\"\($0.cpuList)\"" }.joined(separator: ", "))]")
            case nil: break
            }
        }
        record(
            .build(
                name: domain.name, domid: domid, type: domain.type, memoryKiB: domain.memoryKiB, vcpus: domain.vcpus, images: names,
                affinity: affinity))
        return BuiltDomain(name: domain.name, domid: domid, values: values)
    }

    /// A stable, well-formed (version 4 layout) UUID for a domain that has none, so that
    /// plan runs are reproducible.
    static func planUUID(for name: String) -> String {
        func fnv1a(_ basis: UInt64) -> String {
            var hash = basis
            for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let hex = String(hash, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
        var hex = Array(fnv1a(0xcbf2_9ce4_8422_2325) + fnv1a(0x8422_2325_cbf2_9ce4))
        hex[12] = "4"  // version
        hex[16] = "8"  // variant 10xx
        let text = String(hex)
        func part(_ from: Int, _ to: Int) -> Substring {
            text[text.index(text.startIndex, offsetBy: from)..<text.index(text.startIndex, offsetBy: to)]
        }
        return "\(part(0, 8))-\(part(8, 12))-\(part(12, 16))-\(part(16, 20))-\(part(20, 32))"
    }

    public func unpause(_ domain: BuiltDomain) throws {
        record(.unpause(name: domain.name, domid: domain.domid))
    }

    public func destroy(_ domain: BuiltDomain) throws {
        usedDomids.remove(domain.domid)
        record(.destroy(name: domain.name, domid: domain.domid))
    }

    private func record(_ action: PlanAction) {
        actions.append(action)
        report(action)
    }
}
