// swift-tools-version:5.3
//
// libFuzzer targets for every parser domb runs on untrusted bytes. Built by
// ../scripts/fuzz.sh with `-sanitize=fuzzer,address -parse-as-library` (swift-protobuf's
// recipe). A 6.x-tools `.executableTarget` fails to link under -sanitize=fuzzer, hence 5.3.
// Seeds live in Seeds/<target>/, dictionaries in Dictionaries/<target>.dict; every crash
// found becomes a test in Tests/DombCoreTests/FuzzRegressionTests.swift.
import PackageDescription

let core = Target.Dependency.product(name: "DombCore", package: "domb")
let fdt = Target.Dependency.product(name: "DombFDT", package: "domb")
let archive = Target.Dependency.product(name: "DombArchive", package: "domb")

let package = Package(
    name: "DombFuzzTesting",
    dependencies: [.package(name: "domb", path: "..")],
    targets: [
        .target(name: "FuzzHex", dependencies: [core]),
        // Launch description: the DTB reader (libfdt + decoder) and the xl.cfg parser/import.
        .target(name: "FuzzDTB", dependencies: [core, fdt]),
        .target(name: "FuzzXLConfig", dependencies: [core, fdt]),
        // Images: ELF and Xen notes, the bzImage setup header (+ payload), cpio/initramfs.
        .target(name: "FuzzELF", dependencies: [core]),
        .target(name: "FuzzBzImage", dependencies: [core, archive]),
        .target(name: "FuzzCPIO", dependencies: [core, archive]),
        // libarchive's decompressors behind domb's output cap.
        .target(name: "FuzzDecompress", dependencies: [core, archive]),
        // TCG event log (both formats) and domb's module records.
        .target(name: "FuzzEventLog", dependencies: [core]),
        // TPMS_ATTEST bytes and domb quote files (JSON).
        .target(name: "FuzzQuote", dependencies: [core]),
    ]
)
