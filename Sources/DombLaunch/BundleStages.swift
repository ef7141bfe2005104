//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombArchive
import DombCore
import DombFiles
import DombModel

// The real stages behind BundleBuilder's protocols: the description loader with the
// validation gate and the image checker (the predictor and the Xenstore planner are in
// LaunchPipeline.swift). `domb config check --images` runs exactly this loader, so it
// accepts what `domb build` accepts.

/// Loads a description through ``LaunchFile`` and passes it through the validation gate
/// with every module file checked by ``ModuleImageChecker``; refuses it with every problem
/// listed, each naming its file and node or line.
public struct LaunchFileLoader: LaunchSpecLoading {
    /// Check the module files (what `build` and `config check --images` do).
    public var checkImages: Bool
    /// `--module` files; the kernel reader is always ``KernelModeProbe``.
    public var options: LaunchLoadOptions

    public init(checkImages: Bool = true, moduleFiles: [ModuleFileArgument] = []) {
        self.checkImages = checkImages
        self.options = Self.options(moduleFiles: moduleFiles)
    }

    /// What every command that reads a description reads it with: the `--module` files,
    /// and ``KernelModeProbe`` for domains without `mode`.
    public static func options(moduleFiles: [ModuleFileArgument]) -> LaunchLoadOptions {
        LaunchLoadOptions(moduleFiles: moduleFiles, kernelProbe: KernelModeProbe())
    }

    public func load(configuration path: String) throws -> LoadedLaunch {
        try load(LaunchFile.load(path, options: options), file: path)
    }

    /// The gate for a document already read (several xl.cfg files are one document).
    public func load(_ document: LaunchDocument, file: String) throws(LaunchValidationError) -> LoadedLaunch {
        let images = checkImages ? ModuleImageChecker(baseDirectory: document.baseDirectory) : nil
        return LoadedLaunch(launch: try document.validated(images: images, file: file), baseDirectory: document.baseDirectory)
    }
}

/// The one check of module files against their domains: each file must be a readable,
/// non-empty regular file that fits in a bundle; a kernel must carry the Xen notes its
/// domain's mode needs (PVH: PHYS32_ENTRY; PV: xen-3.0 and a loader) unless the domain is
/// HVM (QEMU direct-boots any kernel); firmware must boot as HVM; a ramdisk must be one.
public struct ModuleImageChecker: ImageCapabilityChecking {
    /// Relative module paths are read from here.
    public var baseDirectory: String

    public init(baseDirectory: String) { self.baseDirectory = baseDirectory }

    /// The file a module's path names.
    public func file(of module: ModuleSpec) -> String {
        module.path.hasPrefix("/") ? module.path : "\(baseDirectory)/\(module.path)"
    }

    public func problems(domain: DomainSpec, module: ModuleSpec) -> [LaunchProblem] {
        let subject = "domain \"\(domain.name)\" module \(module.kind.rawValue)"
        func problem(_ message: String) -> [LaunchProblem] { [LaunchProblem(subject, domain: domain.name, .image, message)] }
        let path = file(of: module)
        do {
            let size = try InputFile(path: path).size
            guard size > 0 else { return problem("\(path) is empty") }
            guard size <= BundleLayout.maximumModuleSize else {
                return problem("\(path) is \(size) bytes; a bundle module is at most \(BundleLayout.maximumModuleSize)")
            }
        } catch {
            return problem(error.description)
        }
        guard module.kind != .config && module.kind != .deviceTree else { return [] }
        let report: ImageReport
        do {
            report = try ImageInspector(decompressor: Decompressor()).inspect(source: try FileImageSource(path: path))
        } catch {
            return problem("\(path): \(error)")
        }
        switch module.kind {
        case .kernel:
            guard domain.type != .hvm else { return [] }
            let privileged = !domain.capabilities.intersection([.control, .hardware]).isEmpty
            if let reason = report.capabilities.supports(domain.type, privileged: privileged).reason {
                return problem("\(path) cannot boot as \(domain.type.rawValue): \(reason)")
            }
            // A PV guest's width is its kernel's (libxenguest picks x86_64 or x86_32p from the
            // ELF class); the model's width sets the block protocol domb writes for it.
            if domain.type == .pv, let elf = report.elf, (elf.fileClass == .elf64) != domain.is64Bit {
                return problem(
                    domain.is64Bit
                        ? "\(path) is a 32-bit kernel, but mode sets MODE_LONG (bit 2, 64-bit)"
                        : "\(path) is a 64-bit kernel, but mode lacks MODE_LONG (bit 2): a 32-bit PV domain "
                            + "(trees for the x86 Hyperlaunch series, which has no such bit, must set it for a 64-bit guest)")
            }
        case .firmware:
            if let reason = report.capabilities.supports(.hvm).reason {
                return problem("\(path) is not HVM firmware: \(reason)")
            }
        case .ramdisk:
            guard report.kind == .ramdisk else {
                return problem("\(path) is not a ramdisk (found \(report.kind.rawValue), format \(report.format.rawValue))")
            }
        case .config, .deviceTree:
            break
        }
        return []
    }
}

/// The guest type of a domain whose tree gives no `mode` (Arm dom0less trees have none):
/// PVH if its kernel can boot as PVH (a `PHYS32_ENTRY` note), else PV if it is a PV kernel,
/// the width from the kernel's ELF class — the same image facts and rules
/// ``ModuleImageChecker`` applies (libxenguest's `elf_xen_note_check`).
public struct KernelModeProbe: KernelModeProbing {
    public init() {}

    public func mode(ofKernel path: String, privileged: Bool) throws -> GuestMode {
        let report: ImageReport
        do {
            report = try ImageInspector(decompressor: Decompressor()).inspect(source: try FileImageSource(path: path))
        } catch {
            throw ContextError(path, error)
        }
        let is64Bit = report.elf.map { $0.fileClass == .elf64 } ?? true
        var reasons: [String] = []
        for type in [GuestType.pvh, .pv] {
            switch report.capabilities.supports(type, privileged: privileged) {
            case .supported: return GuestMode(type: type, is64Bit: is64Bit)
            case .refused(let reason): reasons.append("not \(type.rawValue): \(reason)")
            }
        }
        throw ContextError(path, ParseError(.unsupported, reasons.joined(separator: "; ")))
    }
}
