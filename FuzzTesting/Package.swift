// swift-tools-version:5.3
//
// libFuzzer targets for every parser domb runs on untrusted bytes. Built by
// ../scripts/fuzz.sh with `-sanitize=fuzzer,address -parse-as-library` (swift-protobuf's
// recipe). A 6.x-tools `.executableTarget` fails to link under -sanitize=fuzzer, hence 5.3.
// Seeds: Seeds/<target>/ (make-seeds.sh); dictionaries: Dictionaries/<target>.dict; every
// crash found becomes a regression test (docs/fuzzing.md).
import PackageDescription

let package = Package(
    name: "DombFuzzTesting",
    dependencies: [.package(name: "domb", path: "..")],
    targets: [
        .target(name: "FuzzHex", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzLaunchDTB", dependencies: [.product(name: "DombModel", package: "domb")]),
        .target(name: "FuzzXLConfig", dependencies: [.product(name: "DombModel", package: "domb")]),
        .target(
            name: "FuzzXLUtil",
            dependencies: [.product(name: "DombCore", package: "domb"), .product(name: "DombXLUtil", package: "domb")]),
        .target(name: "FuzzEventLog", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzELF", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzBzImage", dependencies: [.product(name: "DombArchive", package: "domb")]),
        .target(name: "FuzzCPIO", dependencies: [.product(name: "DombArchive", package: "domb")]),
        .target(name: "FuzzDecompress", dependencies: [.product(name: "DombArchive", package: "domb")]),
        .target(name: "FuzzQuote", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzXenstore", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzBundle", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzAttest", dependencies: [.product(name: "DombCore", package: "domb")]),
    ]
)
