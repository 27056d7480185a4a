import ArgumentParser
import Foundation
import Logging
import ShardflowLLM
import ShardflowMockLLM

struct MockLLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-llm",
        abstract: "Serve a Messages-API-compatible mock LLM with lognormal latency and injected failures.")

    @OptionGroup var logging: LoggingOptions
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port to bind (0: any free port, printed at start).") var port: Int = 8080
    @Option(help: "Median latency of a reply (e.g. 1s, 250ms).", transform: DurationArgument.parse)
    var latencyMedian: Duration = .seconds(1)
    @Option(help: "99th percentile latency of a reply.", transform: DurationArgument.parse)
    var latencyP99: Duration = .seconds(4)
    @Option(help: "Fraction of requests answered 500.") var errorRate: Double = 0
    @Option(help: "Fraction of requests answered 529 (overloaded).") var overloadRate: Double = 0
    @Option(help: "Requests per minute before 429 with retry-after; 0 means no limit.") var rateLimitRpm: Int = 0
    @Option(help: "Input tokens per minute (4 bytes a token) before 429; 0 means no limit.") var rateLimitInputTpm: Int = 0
    @Option(help: "Output tokens per minute (counted at max_tokens) before 429; 0 means no limit.") var rateLimitOutputTpm: Int = 0
    @Option(help: "Seed of the latency and failure draws.") var seed: UInt64 = 42
    @Option(help: "Append each answered request that names its step (shardflow-step header) to this file: workflowId,stepId,attempt,httpTry,status,arrivedAtMs,answeredAtMs.")
    var requestLog: String?

    func run() async throws {
        let logger = try logging.bootstrap(label: "shardflow.mock-llm")
        var configuration = MockLLMConfiguration(
            host: host, port: port, latencyMedian: latencyMedian, latencyP99: latencyP99, errorRate: errorRate,
            overloadRate: overloadRate, rateLimitRPM: rateLimitRpm, seed: seed)
        configuration.rateLimitInputTPM = max(0, rateLimitInputTpm)
        configuration.rateLimitOutputTPM = max(0, rateLimitOutputTpm)
        configuration.requestLogPath = requestLog
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
        let server = try MockLLMServer(configuration: configuration, logger: logger)
        let bound = try await server.start(handleSignals: true)
        print("mock LLM listening on http://\(host):\(bound)")
        fflush(nil)  // all output streams; naming stdout is not concurrency-safe
        try await server.waitUntilStopped()
        print(server.summary())
    }
}

/// Parses durations like `1s`, `250ms`, `2.5s`, `2m` for options.
enum DurationArgument {
    static func parse(_ text: String) throws -> Duration {
        guard let duration = parseDuration(text) else {
            throw ValidationError("not a duration: '\(text)' (examples: 1s, 250ms, 2.5s, 2m, 7d)")
        }
        return duration
    }
}
