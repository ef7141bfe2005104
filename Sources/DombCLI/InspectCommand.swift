//===----------------------------------------------------------------------===//
// domb — Xen Hyperlaunch boot domain with TPM measured launch
// SPDX-License-Identifier: Apache-2.0
//===----------------------------------------------------------------------===//

import ArgumentParser
import DombArchive
import DombCore
import DombCrypto
import DombFiles
import Foundation

/// `domb inspect IMAGE...`: what each image is and which guest types it can boot as.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Inspect kernel, ramdisk and firmware images the way Xen's domain builder reads them.",
        discussion: """
            Reports the format (ELF, bzImage, cpio newc, compressed, firmware), architecture, \
            compression, entry points, Xen ELF notes, the guest types (pv, pvh, hvm) the image can \
            boot as a domU with the reason for each refusal, sizes and the sha256. Every image is \
            reported, also after one fails.

            """ + ExitStatus.help(success: "every image was read", refused: "an image is malformed"))

    @Argument(help: "Image files.") var images: [String]
    @Flag(help: "Print JSON: {\"format\":…,\"images\":[one object per image]} (docs/json.md).") var json = false
    @Flag(help: "Print only the Xen notes, in the format of Xen's readnotes tool.") var readnotes = false
    @Flag(help: "Skip the sha256 (which reads the whole file).") var noDigest = false
    @Flag(help: "Print, on stderr, the bytes read and the time taken per image.") var stats = false
    @Option(name: .customLong("max-decompressed-mib"), help: "Largest decompressed payload or ramdisk, in MiB.")
    var maxDecompressedMiB: Int = ImageInspector.defaultMaxDecompressedSize >> 20

    func validate() throws {
        guard maxDecompressedMiB > 0, maxDecompressedMiB <= 4096 else {
            throw ValidationError("--max-decompressed-mib must be 1...4096")
        }
    }

    func run() throws {
        let inspector = ImageInspector(decompressor: Decompressor(), maxDecompressedSize: maxDecompressedMiB << 20)
        var worst = ExitStatus.success
        var inspections: [ImageInspection] = []
        for path in images {
            do {
                let start = ContinuousClock.now
                var structureBytes = 0
                var report = try ContextError.wrap(path) { () throws -> ImageReport in
                    let source = try FileImageSource(path: path)
                    defer { structureBytes = source.bytesRead }
                    return try inspector.inspect(source: source)
                }
                let parsed = ContinuousClock.now
                if !readnotes && !noDigest {
                    report.sha256 = try FileDigester(algorithms: [.sha256]).digest(path: path).digests[.sha256]?.hexString
                }
                if stats {
                    let end = ContinuousClock.now
                    func ms(_ d: Duration) -> String {
                        String(format: "%.1f", Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1e3)
                    }
                    let digestBytes = report.sha256 == nil ? 0 : report.size
                    FileHandle.standardError.write(Data(("domb inspect: \(path): size \(report.size) bytes; "
                        + "structure read \(structureBytes) bytes in \(ms(parsed - start)) ms; "
                        + "sha256 read \(digestBytes) bytes in \(ms(end - parsed)) ms\n").utf8))
                }
                if json {
                    inspections.append(ImageInspection(path: path, report: report))
                } else if readnotes {
                    for line in report.readnotesLines { print(TerminalText.escape(line)) }
                } else {
                    print(Self.text(report, path: path))
                }
            } catch {
                let diagnostic = Diagnostics.diagnose(error)
                worst = max(worst, diagnostic.status)
                if json { inspections.append(ImageInspection(path: path, error: "\(error)")) }
                Diagnostics.print(diagnostic)
            }
        }
        if json { print(try jsonText(ImageInspection.Document(images: inspections), format: .imageInspection)) }
        if worst != .success { throw ExitCode(worst.rawValue) }
    }

    static func hex(_ value: some BinaryInteger) -> String { "0x" + String(value, radix: 16) }

    static func text(_ r: ImageReport, path: String) -> String {
        // Strings read from the image (kernel version, note values) are escaped.
        var lines = [TerminalText.escape(path)]
        func add(_ label: String, _ value: String) {
            lines.append("  " + (label + ":").padding(toLength: 15, withPad: " ", startingAt: 0) + value)
        }
        var format = r.format.rawValue
        if let bz = r.bzImage {
            format += " (boot protocol \(bz.protocolText), setup_sects \(bz.setupSectors)"
                + (bz.is64Bit ? ", 64-bit entry" : "") + ")"
        }
        if let elf = r.elf {
            let inner = "\(elf.fileClass.rawValue) \(r.architecture ?? "?"), \(elf.programHeaders) program headers, "
                + "\(elf.sectionHeaders) sections"
            format += r.format == .elf ? " (\(inner))" : "; payload ELF (\(inner))"
        }
        add("format", format)
        add("kind", r.kind.rawValue + (r.firmware.map { " (\($0))" } ?? ""))
        if let version = r.bzImage?.kernelVersion { add("version", TerminalText.escape(version)) }
        if let arch = r.architecture { add("architecture", arch) }
        add("size", "\(r.size) bytes")
        if let sha = r.sha256 { add("sha256", sha) }
        add("compression", r.compression?.rawValue ?? "none")
        if let bz = r.bzImage {
            add("payload", "\(bz.payloadLength) bytes at offset \(bz.payloadOffset)"
                + (r.decompressedSize.map { ", \($0) bytes decompressed" } ?? ""))
        } else if let size = r.decompressedSize {
            add("decompressed", "\(size) bytes")
        }
        if let elf = r.elf, let start = elf.physicalStart, let end = elf.physicalEnd {
            add("load", "\(elf.loadSegments) PT_LOAD, physical \(hex(start))-\(hex(end)), \(elf.loadedMemorySize) bytes")
        }
        var entries: [String] = []
        let e = r.entryPoints
        if let v = e.elf { entries.append("ELF \(hex(v))") }
        if let v = e.xen { entries.append("ENTRY \(hex(v))") }
        if let v = e.phys32 { entries.append("PHYS32_ENTRY \(hex(v))") }
        if let v = e.hypercallPage { entries.append("HYPERCALL_PAGE \(hex(v))") }
        if let v = e.bzImage32 { entries.append("code32_start \(hex(v))") }
        if let v = e.bzImage64 { entries.append("64-bit \(hex(v))") }
        if !entries.isEmpty { add("entry points", entries.joined(separator: ", ")) }
        if let elf = r.elf, !r.notes.isEmpty || r.legacyGuestInfo != nil {
            lines.append("  notes (\(elf.noteSource.rawValue)):")
            for note in r.notes {
                let name = (note.type.name ?? "type \(note.type.rawValue)").padding(
                    toLength: 19, withPad: " ", startingAt: 0)
                lines.append("    \(name)\(TerminalText.escape(note.valueText))")
            }
            if let legacy = r.legacyGuestInfo { lines.append("    __xen_guest        \(TerminalText.escape(legacy))") }
        }
        if let segments = r.ramdisk {
            for s in segments {
                add("cpio", "\(s.entries) entries, \(s.cpioBytes) bytes at offset \(s.offset)"
                    + (s.compression.map { " (\($0))" } ?? ""))
            }
        }
        add("supported", r.supportedModes.isEmpty ? "none" : r.supportedModes.map(\.rawValue).joined(separator: ", "))
        for type in GuestType.allCases {
            if let reason = r.refusals[type.rawValue] { add("refused \(type.rawValue)", reason) }
        }
        return lines.joined(separator: "\n")
    }
}
