import ShardflowSupport

/// How the mock LLM server behaves; the `shardflow mock-llm` flags map onto it one to one.
public struct MockLLMConfiguration: Sendable, Equatable {
    public var host: String
    /// 0 binds an ephemeral port; `MockLLMServer.start()` returns the one bound.
    public var port: Int
    /// Median of the lognormal response latency; zero answers at once.
    public var latencyMedian: Duration
    /// 99th percentile of the response latency; equal to the median gives a fixed latency.
    public var latencyP99: Duration
    /// Fraction of requests answered 500 `api_error`.
    public var errorRate: Double
    /// Fraction of requests answered 529 `overloaded_error`.
    public var overloadRate: Double
    /// Requests per minute before answering 429 with `retry-after`; 0 means unlimited.
    public var rateLimitRPM: Int
    /// Input and output tokens per minute (input estimated at 4 bytes a token, output counted at
    /// `max_tokens`, as the API does when a request starts); 0 means unlimited.
    public var rateLimitInputTPM: Int = 0
    public var rateLimitOutputTPM: Int = 0
    /// Seeds the latency and error draws.
    public var seed: UInt64
    /// When set, requests without this `x-api-key` get 401 (the real API's behaviour).
    public var requiredAPIKey: String?
    /// When set, every answered request that names its step is appended to this file (`MockLLMRequestLog`).
    public var requestLogPath: String?

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        latencyMedian: Duration = .seconds(1),
        latencyP99: Duration = .seconds(4),
        errorRate: Double = 0,
        overloadRate: Double = 0,
        rateLimitRPM: Int = 0,
        seed: UInt64 = 42,
        requiredAPIKey: String? = nil
    ) {
        self.host = host
        self.port = port
        self.latencyMedian = latencyMedian
        self.latencyP99 = latencyP99
        self.errorRate = errorRate
        self.overloadRate = overloadRate
        self.rateLimitRPM = rateLimitRPM
        self.seed = seed
        self.requiredAPIKey = requiredAPIKey
    }

    /// Throws a `MockLLMConfigurationError` naming the first bad setting.
    public func validate() throws(MockLLMConfigurationError) {
        if host.isEmpty { throw .init("host is empty") }
        if !(0...65535).contains(port) { throw .init("port must be 0...65535, got \(port)") }
        if latencyMedian < .zero { throw .init("latency median must not be negative") }
        if latencyP99 < latencyMedian {
            throw .init("latency p99 (\(latencyP99)) must be at least the median (\(latencyMedian))")
        }
        if !(0...1).contains(errorRate) { throw .init("error rate must be within 0...1, got \(errorRate)") }
        if !(0...1).contains(overloadRate) { throw .init("overload rate must be within 0...1, got \(overloadRate)") }
        if errorRate + overloadRate > 1 {
            throw .init("error rate + overload rate must not exceed 1, got \(errorRate + overloadRate)")
        }
        if rateLimitRPM < 0 { throw .init("rate limit must not be negative, got \(rateLimitRPM)") }
    }

    /// The latency distribution these settings describe.
    public var latency: LognormalLatency {
        LognormalLatency(median: latencyMedian.timeInterval, p99: latencyP99.timeInterval)
    }

    /// The draws identified calls get (see `LLMStepIdentity`).
    public var draws: MockLLMDraws {
        MockLLMDraws(seed: seed, latency: latency, errorRate: errorRate, overloadRate: overloadRate)
    }
}

public struct MockLLMConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "invalid mock LLM configuration: \(message)" }
}
