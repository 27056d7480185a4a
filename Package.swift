// swift-tools-version:6.1
import PackageDescription

// Layers, bottom up:
//   ShardflowSupport  small shared helpers: AsyncSignal, ConditionLock, dedicated threads, Duration
//                     conversions, zero padding (standard library, Synchronization and libc only)
//   Crdkafka          system library over librdkafka's C headers
//   ShardflowKafka    a small Swift face over librdkafka (producer, consumer group, admin)
//   ShardflowJSON     JSON values, a fast reader and writer, and the Codable coder over them
//   ShardflowEngine   the per-shard store, replay, task queue, executor (no Kafka); its crash guard's
//                     signal handler is the C target CShardflowCrashGuard; SQLite's process settings
//                     (CSQLiteSettings, over the system libsqlite3)
//   ShardflowLLM      the Anthropic Messages API client, its rate limiter and the step identity
//   Shardflow         the worker runtime wiring the engine to Kafka
// Test and tool modules, on top; the libraries above never depend on them:
//   ShardflowTesting  the local Tansu broker (and its object store) and the child-process helper
//   ShardflowMockLLM  the mock LLM server
//   ShardflowBench    the benchmarks (end to end, engine alone, LLM calls), the fault drill, the dev environment
//   shardflow         the command line (ShardflowCLI), linked with jemalloc (CJemalloc) as its allocator
let package = Package(
    name: "shardflow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "shardflow", targets: ["ShardflowCLI"]),
        .library(name: "Shardflow", targets: ["Shardflow"]),
        .library(name: "ShardflowEngine", targets: ["ShardflowEngine"]),
        .library(name: "ShardflowJSON", targets: ["ShardflowJSON"]),
        .library(name: "ShardflowKafka", targets: ["ShardflowKafka"]),
        .library(name: "ShardflowLLM", targets: ["ShardflowLLM"]),
        // For the tests of code built on Shardflow: a local broker and a mock of the Messages API.
        .library(name: "ShardflowTesting", targets: ["ShardflowTesting"]),
        .library(name: "ShardflowMockLLM", targets: ["ShardflowMockLLM"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "Crdkafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // SQLite's process-wide settings (sqlite3_config), on the same system libsqlite3 GRDB uses.
        .systemLibrary(name: "CSQLiteSettings", path: "Sources/CSQLiteSettings"),
        .systemLibrary(name: "CJemalloc", path: "Sources/CJemalloc"),
        .target(name: "ShardflowSupport"),
        .target(
            name: "ShardflowKafka",
            dependencies: [
                "Crdkafka",
                "ShardflowSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ShardflowTesting",
            dependencies: [
                "ShardflowKafka",
                "ShardflowSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "ShardflowJSON"),
        // The crash guard's signal handler: C, because only async-signal-safe code may run in it.
        .target(name: "CShardflowCrashGuard"),
        .target(
            name: "ShardflowEngine",
            dependencies: [
                "CShardflowCrashGuard",
                "CSQLiteSettings",
                "ShardflowJSON",
                "ShardflowSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ShardflowLLM",
            dependencies: [
                "ShardflowJSON",
                "ShardflowSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ShardflowMockLLM",
            dependencies: [
                "ShardflowJSON",
                "ShardflowLLM",
                "ShardflowSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Shardflow",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                "ShardflowEngine",
                "ShardflowJSON",
                "ShardflowKafka",
                "ShardflowLLM",
                "ShardflowSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .target(
            name: "ShardflowBench",
            dependencies: [
                "Shardflow",
                "ShardflowEngine",
                "ShardflowJSON",
                "ShardflowKafka",
                "ShardflowLLM",
                "ShardflowMockLLM",
                "ShardflowSupport",
                "ShardflowTesting",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ShardflowCLI",
            dependencies: [
                "CJemalloc",
                "Shardflow",
                "ShardflowBench",
                "ShardflowJSON",
                "ShardflowMockLLM",
                "ShardflowSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ShardflowSupportTests", dependencies: ["ShardflowSupport"]),
        .testTarget(name: "ShardflowJSONTests", dependencies: ["ShardflowJSON"]),
        .testTarget(name: "ShardflowEngineTests", dependencies: ["ShardflowEngine", "ShardflowJSON"]),
        .testTarget(name: "ShardflowKafkaTests", dependencies: ["ShardflowKafka", "ShardflowSupport", "ShardflowTesting"]),
        .testTarget(name: "ShardflowLLMTests", dependencies: ["ShardflowLLM", "ShardflowMockLLM", "ShardflowSupport"]),
        .testTarget(name: "ShardflowTests", dependencies: ["Shardflow", "ShardflowBench", "ShardflowMockLLM", "ShardflowSupport", "ShardflowTesting"]),
    ]
)
