// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "smarthost",
    products: [
        .executable(name: "smarthost", targets: ["smarthost"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // HTTPS for OAuth2 token endpoints (proxies, timeouts, certificate checks).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // The configuration's YAML (and the token endpoints' JSON): Debian's libyaml, the
        // reference parser, so the daemon carries no Foundation or ICU.
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // One shim per C library for what Swift cannot import directly (macros, variadic
        // calls, what glibc hides behind _GNU_SOURCE): one-line wrappers named after the
        // original, no logic. A new library gets its own (`C<Library>Shim`), never a share here.
        .target(name: "CLinuxShim"),
        .target(name: "COpenSSLShim", dependencies: ["COpenSSL"]),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        // The version and commit the Makefile passes as -D flags (only C takes a string there).
        .target(name: "CBuildInfo"),
        .target(
            name: "SmarthostCore",
            dependencies: [
                "CLinuxShim",
                "COpenSSLShim",
                "CCurlShim",
                "CBuildInfo",
                "COpenSSL",
                "CSystemd",
                "CCurl",
                "CYAML",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.enableUpcomingFeature("MemberImportVisibility")]
        ),
        .executableTarget(
            name: "smarthost",
            dependencies: [
                "SmarthostCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "SmarthostCoreTests",
            dependencies: ["SmarthostCore"]
        ),
    ]
)
