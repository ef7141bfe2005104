// swift-tools-version: 6.0
//
// domb — the Xen Hyperlaunch boot domain with TPM measured launch.
//
// Layering (see README "Architecture"):
//   C*            system-library modules: a modulemap and a shim.h, nothing else
//   DombCore      pure Swift, no C imports: byte codecs, parsers, event log, Xenstore plans,
//                 the device-tree value
//   Domb<Lib>     one thin wrapper per C library, no C types in the public API
//   DombModel     the launch model: LaunchSpec, one file per device kind, validation
//                 (ValidatedLaunch), the Hyperlaunch binding and xl.cfg front ends, the
//                 Xenstore planner (pure Swift over the wrappers; no C imports)
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
        .library(name: "DombModel", targets: ["DombModel"]),
        .library(name: "DombArchive", targets: ["DombArchive"]),
        .library(name: "DombXLUtil", targets: ["DombXLUtil"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The Keylime agent's HTTP server and registrar client (HTTP/1.1, mutual TLS).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
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
        // libxlutil ships no .pc file: the modulemap links "xlutil"; xenlight's flags find libxl.h.
        .systemLibrary(name: "CXLUtil", pkgConfig: "xenlight xentoollog", providers: [.apt(["libxen-dev"])]),

        // Pure core.
        .target(name: "DombCore", swiftSettings: swiftSettings),

        // Thin wrappers.
        // The file system: the one way to open inputs and the one output policy (atomic writes).
        .target(name: "DombFiles", dependencies: ["DombCore"], swiftSettings: swiftSettings),
        .target(name: "DombCrypto", dependencies: ["DombCore", "DombFiles", "DombLinux", "COpenSSL"], swiftSettings: swiftSettings),
        .target(name: "DombTPM", dependencies: ["DombCore", "CTSS2"], swiftSettings: swiftSettings),
        .target(name: "DombFDT", dependencies: ["DombCore", "DombFiles", "CLibFDT"], swiftSettings: swiftSettings),
        .target(name: "DombArchive", dependencies: ["DombCore", "DombFiles", "DombLinux", "CArchive"], swiftSettings: swiftSettings),
        // Linux interfaces the Glibc module hides (memfd seals, O_DIRECT, sync_file_range).
        .target(name: "DombLinux", dependencies: ["CLinux"], swiftSettings: swiftSettings),
        .target(name: "DombXenstore", dependencies: ["DombCore", "CXenstore"], swiftSettings: swiftSettings),
        .target(name: "DombXLUtil", dependencies: ["DombCore", "CXLUtil"], swiftSettings: swiftSettings),

        // The launch model and its front ends (the Hyperlaunch binding, xl.cfg through libxlutil).
        .target(name: "DombModel", dependencies: ["DombCore", "DombFiles", "DombFDT", "DombXLUtil"], swiftSettings: swiftSettings),
        // libxenlight: builds domains from the model (and libxl's JSON of what it is handed).
        .target(name: "DombLibxl", dependencies: ["DombCore", "DombModel", "CXenlight"], swiftSettings: swiftSettings),

        // Orchestration.
        .target(
            name: "DombLaunch",
            dependencies: [
                "DombCore", "DombFiles", "DombCrypto", "DombTPM", "DombFDT", "DombModel", "DombArchive", "DombXenstore",
                "DombLibxl", "DombLinux",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // The Keylime pull-model agent: HTTP(S) server and registrar client on SwiftNIO.
        .target(
            name: "DombAgent",
            dependencies: [
                "DombCore", "DombCrypto", "DombTPM", "DombLaunch",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // CLI.
        .target(
            name: "DombCLI",
            dependencies: [
                "DombCore", "DombFiles", "DombCrypto", "DombTPM", "DombFDT", "DombModel", "DombArchive", "DombXenstore",
                "DombLibxl", "DombLaunch", "DombAgent",
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
            dependencies: ["DombCore", "DombModel", "DombTestSupport"],
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
            dependencies: ["DombCore", "DombFiles", "DombCrypto", "DombTPM", "DombFDT", "DombModel", "DombLaunch", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombFDTTests",
            dependencies: ["DombCore", "DombFDT", "DombModel", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombModelTests",
            dependencies: ["DombCore", "DombFiles", "DombFDT", "DombModel", "DombLaunch", "DombTestSupport"],
            // Read from the repository (Repository.root), not bundled.
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombImagesTests",
            dependencies: ["DombCore", "DombFiles", "DombArchive", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombBundleTests",
            dependencies: ["DombCore", "DombCrypto", "DombArchive", "DombFDT", "DombModel", "DombLaunch", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombXLConfigTests",
            dependencies: ["DombCore", "DombXLUtil", "DombModel", "DombLibxl", "DombTestSupport"],
            // Read by path: the e2e oracle (scripts/e2e/xlcfg/) sends the same files to dom0.
            exclude: ["Corpus", "Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombAgentTests",
            dependencies: ["DombCore", "DombCrypto", "DombTPM", "DombAgent", "DombTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DombCLITests",
            dependencies: [
                "DombCore", "DombModel", "DombCLI", "DombTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
