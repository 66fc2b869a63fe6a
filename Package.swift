// swift-tools-version:6.0
// adaroute — parameter-efficient fine-tuning of Vision Transformers for semantic segmentation on CPU.
//
// Module arrow (each depends only on those to its left):
//   CKernels, CBLAS ← AdaTensor ← AdaNN ← AdaModels ─┐
//   CImageCodecs ← AdaData ──────────────────────────┼← AdaRun ← adaroute
//   AdaIO (safetensors) ← AdaNN, AdaModels ──────────┘
import PackageDescription

// Numeric C kernels: -O3 plus per-CPU clones (see Sources/CKernels) so they stay fast in debug builds too.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=fast"])]
let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "adaroute",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "adaroute", targets: ["adaroute"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libpng-dev, libjpeg-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        // C that must own error handling (libjpeg/libpng longjmp) — no longjmp ever crosses a Swift frame.
        .target(name: "CImageCodecs", dependencies: ["CPNG", "CJPEG"], cSettings: kernelFlags),
        // Hot float loops (exp/erf/tanh, LayerNorm, softmax, cross-entropy) vectorised per CPU.
        .target(name: "CKernels", cSettings: kernelFlags),

        .target(name: "AdaTensor", dependencies: ["CBLAS", "CKernels"], swiftSettings: swift5),
        .target(name: "AdaIO", dependencies: ["AdaTensor"], swiftSettings: swift5),
        .target(name: "AdaNN", dependencies: ["AdaTensor", "AdaIO"], swiftSettings: swift5),
        .target(name: "AdaModels", dependencies: ["AdaNN", "AdaIO"], swiftSettings: swift5),
        .target(name: "AdaData", dependencies: ["AdaTensor", "CImageCodecs"], swiftSettings: swift5),
        .target(
            name: "AdaRun",
            dependencies: ["AdaModels", "AdaData", "AdaIO", .product(name: "Yams", package: "Yams")],
            swiftSettings: swift5),
        .executableTarget(
            name: "adaroute",
            dependencies: ["AdaRun", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swift5),

        .target(name: "AdaTestSupport", dependencies: ["AdaTensor", "AdaIO"], swiftSettings: swift5),
        .testTarget(name: "AdaTensorTests", dependencies: ["AdaTensor", "AdaTestSupport"], swiftSettings: swift5),
        .testTarget(name: "AdaNNTests", dependencies: ["AdaNN", "AdaTestSupport"], swiftSettings: swift5),
        .testTarget(name: "AdaModelsTests", dependencies: ["AdaModels", "AdaTestSupport"], swiftSettings: swift5),
        // Fixtures/ holds tiny JPEG/PNG files the tests read by path (#filePath), not bundled resources.
        .testTarget(name: "AdaDataTests", dependencies: ["AdaData", "AdaTestSupport"], exclude: ["Fixtures"], swiftSettings: swift5),
        .testTarget(name: "AdaRunTests", dependencies: ["AdaRun", "AdaTestSupport"], swiftSettings: swift5),
        .testTarget(name: "AdaIOTests", dependencies: ["AdaIO", "AdaTestSupport"], swiftSettings: swift5),
        .testTarget(name: "AdaRunReportTests", dependencies: ["AdaRun", "AdaTestSupport"], swiftSettings: swift5),
    ]
)
