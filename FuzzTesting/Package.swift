// swift-tools-version:5.3
//
// libFuzzer targets for every parser domb runs on untrusted bytes. Built by
// ../scripts/fuzz.sh with `-sanitize=fuzzer,address -parse-as-library` (swift-protobuf's
// recipe). A 6.x-tools `.executableTarget` fails to link under -sanitize=fuzzer, hence 5.3.
import PackageDescription

let package = Package(
    name: "DombFuzzTesting",
    dependencies: [.package(name: "domb", path: "..")],
    targets: [
        .target(name: "FuzzHex", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzXenstore", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzEventLog", dependencies: [.product(name: "DombCore", package: "domb")]),
        .target(name: "FuzzLaunchDTB", dependencies: [.product(name: "DombFDT", package: "domb")]),
        .target(name: "FuzzXLConfig", dependencies: [.product(name: "DombFDT", package: "domb")]),
        .target(name: "FuzzAttest", dependencies: [.product(name: "DombCore", package: "domb")]),
    ]
)
