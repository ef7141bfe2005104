//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore

// Trees written for upstream Xen (docs/binding.md, "Trees written for upstream Xen"):
// Arm dom0less (`docs/misc/arm/device-tree/booting.txt`, `cpupools.txt`,
// `xen/common/device-tree/{bootfdt.c,bootinfo-fdt.c,dom0less-bindings.c,dom0less-build.c,kernel.c}`)
// and the x86 Hyperlaunch series. They leave to the boot loader what a launch description
// must say — where a module's image is, and (Arm) the guest type — so the caller supplies
// it through ``LaunchLoadOptions``.

/// What a reader of a launch description is given besides the file: the image files of
/// module nodes that locate their image in memory (`reg`, `module-index`), and the reader
/// of kernels that decides the guest type of a domain without `mode`.
public struct LaunchLoadOptions: Sendable {
    /// `--module NODE=PATH`, in command-line order. Paths are as given (relative to the
    /// current directory, or absolute); ``LaunchFile`` rebases them to the description's
    /// directory.
    public var moduleFiles: [ModuleFileArgument]
    /// Takes the guest type from the kernel of a domain that has no `mode`; nil refuses such
    /// domains.
    public var kernelProbe: (any KernelModeProbing)?
    /// Fuzzing only: every module without a file gets a made-up one, and every domain without
    /// `mode` is PVH, 64-bit (so that the decoder's later stages are reached).
    var placeholders = false

    public init(moduleFiles: [ModuleFileArgument] = [], kernelProbe: (any KernelModeProbing)? = nil) {
        self.moduleFiles = moduleFiles
        self.kernelProbe = kernelProbe
    }
}

/// One `--module NODE=PATH` option: the image file of a module node. NODE is the node's
/// path (`/chosen/domU1/module@4a000000`), or `DOMAIN/NAME` with NAME the module node's
/// name or its kind (`domU1/module@4a000000`, `domU1/kernel`).
public struct ModuleFileArgument: Hashable, Sendable, CustomStringConvertible {
    public var node: String
    public var path: String

    public init(node: String, path: String) {
        self.node = node
        self.path = path
    }

    /// Parses `NODE=PATH` (split at the first `=`: node names have none).
    /// - Throws: `ParseError` when either side is empty or there is no `=`.
    public init(parsing text: String) throws(ParseError) {
        guard let equals = text.firstIndex(of: "=") else {
            throw .invalid("--module \(text): expected NODE=PATH (for example domU1/kernel=Image)")
        }
        let node = String(text[..<equals])
        let path = String(text[text.index(after: equals)...])
        guard !node.isEmpty, !path.isEmpty else { throw .invalid("--module \(text): NODE and PATH must not be empty") }
        guard !path.utf8.contains(0), path.utf8.count <= LaunchLimits.maxPathLength else {
            throw .invalid("--module \(node): the path must be at most \(LaunchLimits.maxPathLength) bytes without NUL")
        }
        self.init(node: node, path: path)
    }

    /// How messages name the option: by its NODE (the path is rebased by the time a tree is read).
    public var description: String { "--module \(node)" }

    /// Whether this option names the module node at `nodePath`, named `nodeName`, of kind
    /// `kind`, in domain `domain`.
    func names(nodePath: String, domain: String, nodeName: String, kind: ModuleKind) -> Bool {
        node == nodePath || node == "\(domain)/\(nodeName)" || node == "\(domain)/\(kind.rawValue)"
    }
}

/// A guest type as read from a kernel image.
public struct GuestMode: Hashable, Sendable {
    public var type: GuestType
    public var is64Bit: Bool

    public init(type: GuestType, is64Bit: Bool) {
        self.type = type
        self.is64Bit = is64Bit
    }
}

/// Reads a kernel image and says which guest type it boots as, for a domain whose tree
/// gives no `mode` (Arm dom0less has none: its guests are always HVM containers, x86's PVH).
public protocol KernelModeProbing: Sendable {
    /// - Parameters:
    ///   - path: the kernel file (absolute, or relative to the current directory).
    ///   - privileged: the domain has the control or hardware capability.
    /// - Throws: an error naming the file and why no guest type fits.
    func mode(ofKernel path: String, privileged: Bool) throws -> GuestMode
}

/// The upstream spellings' tables (docs/binding.md, "Trees written for upstream Xen").
enum UpstreamBinding {
    /// Legacy module compatibles of Xen 4.4 (booting.txt): kind by name.
    static let legacyModuleCompatibles: [String: ModuleKind] = [
        "xen,linux-zimage": .kernel,
        "xen,linux-initrd": .ramdisk,
    ]
    /// The generic module compatibles: alone, a module of no kind.
    static let genericModuleCompatibles: Set<String> = ["multiboot,module", "xen,multiboot-module"]

    /// Domain properties of Arm dom0less that mean nothing to an x86 launch, with what
    /// they do on Arm (booting.txt, dom0less-bindings.c, arch/arm/dom0less-build.c).
    static let armOnlyDomainProperties: [String: String] = [
        "vpl011": "an emulated PL011 UART",
        "nr_spis": "the number of GIC shared peripheral interrupts",
        "sve": "the Arm SVE vector length",
        "trap-unmapped-accesses": "how Arm traps guest accesses to unmapped MMIO",
        "xen,sci_type": "Arm SCMI firmware access",
        "v8r_el1_msa": "the Armv8-R EL1 memory system (MPU or MMU)",
        "llc-colors": "Arm64 last-level-cache colouring",
        "passthrough": "IOMMU mappings for device-tree passthrough",
        "xen,static-mem": "static allocation of memory at fixed host addresses",
        "direct-map": "guest-physical addresses equal to host-physical ones, with static allocation",
    ]
    /// Properties dom0less reads on any architecture that the launch model does not carry
    /// (libxl's defaults apply, as for xl.cfg's keys of the same names, which the xl.cfg
    /// importer reports the same way).
    static let uncarriedDomainProperties: [String: String] = [
        "max_grant_version": "the maximum grant-table version",
        "max_grant_frames": "the maximum number of grant frames",
        "max_maptrack_frames": "the maximum number of maptrack frames",
    ]

    /// A `hard-affinity` string of a `xen,vcpu` node: comma-separated CPUs and inclusive
    /// ranges (`"0-3"`, `"1,4-7"`), numbers as C's `strtoul(…, 0)` reads them (decimal, `0x`
    /// hex, leading-`0` octal) — dom0less-build.c `domain_vcpu_affinity`. Xen stops at the
    /// first character it does not expect and keeps what it read; domb refuses the string.
    /// - Returns: the CPUs in ascending order, without repeats.
    static func parseHardAffinity(_ text: String) -> Result<[UInt32], ParseError> {
        var cpus = Set<UInt32>()
        for term in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = term.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let start = cNumber(bounds[0]), let end = bounds.count == 2 ? cNumber(bounds[1]) : start else {
                return .failure(.invalid("hard-affinity \"\(text)\": \"\(term)\" is not a CPU number or a range N-M"))
            }
            guard start <= end else {
                return .failure(.invalid("hard-affinity \"\(text)\": range \(term) runs backwards"))
            }
            guard end <= LaunchLimits.maxCPU else {
                return .failure(.invalid("hard-affinity \"\(text)\": CPU \(end) is above \(LaunchLimits.maxCPU)"))
            }
            cpus.formUnion(start...end)
        }
        return .success(cpus.sorted())
    }

    /// An unsigned number as `strtoul(text, &end, 0)` reads it, all of `text` consumed.
    static func cNumber(_ text: Substring) -> UInt32? {
        let lower = text.lowercased()
        let (digits, radix): (Substring, Int) =
            lower.hasPrefix("0x") ? (lower.dropFirst(2), 16)
            : lower.count > 1 && lower.hasPrefix("0") ? (lower.dropFirst(), 8) : (Substring(lower), 10)
        // No sign, no blanks: only digits of the radix (UInt32(_:radix:) would take a "+").
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return nil }
        return UInt32(digits, radix: radix)
    }
}
