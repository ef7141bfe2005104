//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import DombCore
import DombLaunch
import DombModel
import DombTestSupport
import Foundation

/// The canonical DTB of a description, through the validation gate (as `build` does).
func encodeDTB(_ spec: LaunchSpec) throws -> [UInt8] { try LaunchEncoder.dtb(spec.validated()) }

/// The canonical DTS of a description, through the validation gate.
func encodeDTS(_ spec: LaunchSpec) throws -> String { try LaunchEncoder.dts(spec.validated()) }

/// The trees written for upstream Xen in Tests/DombModelTests/Fixtures/upstream (see its
/// README): each `NAME.dts` with the `--module` options of `NAME.modules`, whose FILEs are
/// stand-ins made from the test guests.
enum UpstreamFixtures {
    static let directory = Repository.root + "/Tests/DombModelTests/Fixtures/upstream"

    /// A directory of stand-in module files: `kernel` (PVH), `pv-kernel`, `ramdisk`, `device-tree`.
    static func standIns(in temp: TemporaryDirectory) throws -> String {
        let images = try GuestImages.directory()
        let manager = FileManager.default
        let directory = temp.file("stand-ins")
        if manager.fileExists(atPath: directory) { return directory }
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, source) in [("kernel", "pvh-kernel.elf"), ("pv-kernel", "pv-kernel.elf"), ("ramdisk", "ramdisk.cpio.gz")] {
            try manager.copyItem(atPath: "\(images)/\(source)", toPath: "\(directory)/\(name)")
        }
        try Data("a device-tree fragment stand-in\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/device-tree"))
        return directory
    }

    /// The `NODE=PATH` values of `fixture`'s `.modules` file with PATHs in `standIns`; nil
    /// when the description has no such file.
    static func moduleFiles(for fixture: String, standIns: String) throws -> [String]? {
        let sidecar = (fixture as NSString).deletingPathExtension + ".modules"
        guard FileManager.default.fileExists(atPath: sidecar) else { return nil }
        return try String(contentsOfFile: sidecar, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { return nil }
            return "\(line[..<equals])=\(standIns)/\(line[line.index(after: equals)...])"
        }
    }

    /// The command-line arguments for `fixture`: `--module NODE=PATH` for each.
    static func arguments(for fixture: String, standIns: String) throws -> [String] {
        try (moduleFiles(for: fixture, standIns: standIns) ?? []).flatMap { ["--module", $0] }
    }

    /// What `fixture` is read with through the library: its module files and the kernel reader.
    static func options(for fixture: String, standIns: String) throws -> LaunchLoadOptions {
        let files = try (moduleFiles(for: fixture, standIns: standIns) ?? []).map { try ModuleFileArgument(parsing: $0) }
        return LaunchFileLoader.options(moduleFiles: files)
    }
}
