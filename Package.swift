// swift-tools-version: 6.0
//
// domb — the Xen Hyperlaunch boot domain with TPM measured launch.
//
// Layering (see README "Architecture"):
//   C*            system-library modules: a modulemap and a shim.h, nothing else
//   DombCore      pure Swift, no C imports: byte codecs, models, parsers, event log
//   Domb<Lib>     one thin wrapper per C library, no C types in the public API
//   DombLaunch    orchestration (bundle, boot, attestation) against small protocols
//   DombCLI       the swift-argument-parser commands, one file per subcommand
//   domb          the executable: only @main
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "domb",
    products: [
        .executable(name: "domb", targets: ["domb"]),
        .library(name: "DombCore", targets: ["DombCore"]),
        // For FuzzTesting/ (the nested fuzzing package links the parsers through products).
        .library(name: "DombFDT", targets: ["DombFDT"]),
        .library(name: "DombArchive", targets: ["DombArchive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C libraries.
        .systemLibrary(
            name: "CTSS2",
            pkgConfig: "tss2-esys tss2-mu tss2-rc tss2-tctildr",
            providers: [.apt(["libtss2-dev"])]
        ),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libfdt-dev ships no .pc file: the modulemap links "fdt".
        .systemLibrary(name: "CLibFDT", providers: [.apt(["libfdt-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CXenstore", pkgConfig: "xenstore", providers: [.apt(["libxen-dev"])]),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CXenlight", pkgConfig: "xenlight xentoollog", providers: [.apt(["libxen-dev"])]),

        // Pure core.
        .target(name: "DombCore", swiftSettings: swiftSettings),

        // Thin wrappers.
        // The file system: the one way to open inputs and the one output policy (atomic writes).
        .target(name: "DombFiles", dependencies: ["DombCore"], swiftSettings: swiftSettings),
        .target(name: "DombCrypto", dependencies: ["DombCore", "DombFiles", "COpenSSL", "CLinux"], swiftSettings: swiftSettings),
        .target(name: "DombTPM", dependencies: ["DombCore", "CTSS2"], swiftSettings: swiftSettings),
        .target(name: "DombFDT", dependencies: ["DombCore", "DombFiles", "CLibFDT"], swiftSettings: swiftSettings),
        .target(name: "DombArchive", dependencies: ["DombCore", "DombFiles", "CArchive"], swiftSettings: swiftSettings),
        .target(name: "DombXenstore", dependencies: ["DombCore", "CXenstore"], swiftSettings: swiftSettings),
        .target(name: "DombLibxl", dependencies: ["DombCore", "CXenlight"], swiftSettings: swiftSettings),

        // Orchestration.
        .target(
            name: "DombLaunch",
            dependencies: [
                "DombCore", "DombFiles", "DombCrypto", "DombTPM", "DombFDT", "DombArchive", "DombXenstore", "DombLibxl", "CLinux",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // CLI.
        .target(
            name: "DombCLI",
            dependencies: [
                "DombCore", "DombFiles", "DombCrypto", "DombTPM", "DombFDT", "DombArchive", "DombXenstore", "DombLaunch",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "domb", dependencies: ["DombCLI"], swiftSettings: swiftSettings),

        // Test support: a real swtpm per test, tool lookup, the built domb binary.
        .target(name: "DombTestSupport", dependencies: ["DombCore"], swiftSettings: swiftSettings),

        .testTarget(
            name: "DombCoreTests",
            dependencies: ["DombCore", "DombTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombFilesTests",
            dependencies: ["DombCore", "DombFiles", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombCryptoTests",
            dependencies: ["DombCore", "DombCrypto", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombTPMTests",
            dependencies: ["DombCore", "DombCrypto", "DombTPM", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombLaunchTests",
            dependencies: ["DombCore", "DombFiles", "DombCrypto", "DombTPM", "DombFDT", "DombLaunch", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombFDTTests",
            dependencies: ["DombCore", "DombFDT", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombImagesTests",
            dependencies: ["DombCore", "DombFiles", "DombArchive", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombBundleTests",
            dependencies: ["DombCore", "DombCrypto", "DombArchive", "DombFDT", "DombLaunch", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombCLITests",
            dependencies: ["DombCore", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
