import Foundation
import ShardflowLLM

/// What the mock LLM server has served so far; `GET /stats` returns it as JSON.
public struct MockLLMStats: Codable, Sendable, Equatable {
    /// Requests to `POST /v1/messages`, whatever their answer.
    public var requests: Int = 0
    public var ok: Int = 0
    public var rateLimited: Int = 0
    public var serverErrors: Int = 0
    public var overloaded: Int = 0
    /// Scripted answers with any other status (tests only).
    public var otherErrors: Int = 0
    public var badRequests: Int = 0
    public var unauthorized: Int = 0
    public var inFlight: Int = 0
    public var peakInFlight: Int = 0
    public var inputTokens: Int = 0
    public var outputTokens: Int = 0
    /// Percentiles of the latency the server applied (429s, answered at once, excluded).
    public var latencyP50Ms: Double = 0
    public var latencyP90Ms: Double = 0
    public var latencyP99Ms: Double = 0
    public var latencyMaxMs: Double = 0
    /// Sum of every latency applied (the work the server modelled), in seconds.
    public var latencyTotalSeconds: Double = 0
    public var uptimeSeconds: Double = 0

    public init() {}

    /// A few lines for the `mock-llm` command to print on exit.
    public func summary() -> String {
        let rate = uptimeSeconds > 0 ? Double(requests) / uptimeSeconds : 0
        return """
            mock LLM served \(requests) requests in \(String(format: "%.1f", uptimeSeconds)) s \
            (\(String(format: "%.1f", rate))/s, peak \(peakInFlight) in flight)
              200: \(ok)  429: \(rateLimited)  500: \(serverErrors)  529: \(overloaded)  \
            400: \(badRequests)  401: \(unauthorized)  other: \(otherErrors)
              latency p50 \(Self.ms(latencyP50Ms))  p90 \(Self.ms(latencyP90Ms))  \
            p99 \(Self.ms(latencyP99Ms))  max \(Self.ms(latencyMaxMs))
              tokens in \(inputTokens)  out \(outputTokens)
            """
    }

    private static func ms(_ value: Double) -> String { String(format: "%.0f ms", value) }
}

/// Mutable counters behind the stats; latencies kept as a bounded uniform sample.
struct MockLLMStatsRecorder {
    static let latencySampleLimit = 100_000

    var stats = MockLLMStats()
    private var latencies: [Double] = []
    private var latenciesSeen = 0
    private var maxLatency = 0.0

    mutating func begin() {
        stats.requests += 1
        stats.inFlight += 1
        stats.peakInFlight = max(stats.peakInFlight, stats.inFlight)
    }

    mutating func finish(status: Int, latencySeconds: Double?, usage: LLMUsage?, rng: inout SplitMix64) {
        stats.inFlight -= 1
        switch status {
        case 200: stats.ok += 1
        case 400: stats.badRequests += 1
        case 401: stats.unauthorized += 1
        case 429: stats.rateLimited += 1
        case 529: stats.overloaded += 1
        case 500...599: stats.serverErrors += 1
        default: stats.otherErrors += 1
        }
        if let usage {
            stats.inputTokens += usage.inputTokens
            stats.outputTokens += usage.outputTokens
        }
        guard let latencySeconds else { return }
        maxLatency = max(maxLatency, latencySeconds)
        stats.latencyTotalSeconds += latencySeconds
        latenciesSeen += 1
        // Reservoir sampling keeps memory bounded on long runs while the percentiles stay unbiased.
        if latencies.count < Self.latencySampleLimit {
            latencies.append(latencySeconds)
        } else {
            let slot = Int.random(in: 0..<latenciesSeen, using: &rng)
            if slot < Self.latencySampleLimit { latencies[slot] = latencySeconds }
        }
    }

    func snapshot(uptimeSeconds: Double) -> MockLLMStats {
        var out = stats
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
            return sorted[index] * 1000
        }
        out.latencyP50Ms = percentile(0.50)
        out.latencyP90Ms = percentile(0.90)
        out.latencyP99Ms = percentile(0.99)
        out.latencyMaxMs = maxLatency * 1000
        out.uptimeSeconds = uptimeSeconds
        return out
    }
}
