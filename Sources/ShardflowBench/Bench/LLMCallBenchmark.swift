import Foundation
import ShardflowLLM
import ShardflowMockLLM
import ShardflowSupport
import Synchronization

/// The HTTP path alone: the Anthropic client against the in-process mock, no engine and no Kafka.
/// It measures what one LLM call costs the machine (client and server CPU together), the floor
/// under any workflow run that makes such calls on the same host.
public struct LLMCallBenchmark: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var requests: Int
        public var concurrency: Int
        public var latencyMedian: Duration
        public var elapsed: Duration
        public var cpuSeconds: Double
        public var failures: Int
        /// The shortest possible run: every modelled latency back to back over the concurrent callers.
        public var idealSeconds: Double
        /// Mean time of one call as the caller saw it, and the mean latency the mock applied.
        public var meanCallSeconds: Double
        public var meanServedSeconds: Double

        public var callsPerSecond: Double { Double(requests) / max(1e-9, elapsed.timeInterval) }
        public var cpuMicrosecondsPerCall: Double { cpuSeconds * 1e6 / Double(max(1, requests)) }

        public var description: String {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            return """
                LLM call benchmark: \(requests) calls, \(concurrency) at once, mock latency median \(latencyMedian)
                  elapsed:       \(String(format: "%.2f", elapsed.timeInterval)) s (\(failures) failed), ideal \(String(format: "%.2f", idealSeconds)) s (latencies served / callers)
                  per call:      \(String(format: "%.1f", meanCallSeconds * 1000)) ms as the caller saw it, \(String(format: "%.1f", meanServedSeconds * 1000)) ms modelled by the mock
                  throughput:    \(String(format: "%.0f", callsPerSecond)) calls/s
                  CPU per call:  \(String(format: "%.0f", cpuMicrosecondsPerCall)) µs (client and mock together, this process)
                  ceiling:       \(String(format: "%.0f", Double(cores) * 1e6 / max(1, cpuMicrosecondsPerCall))) calls/s on \(cores) cores with nothing else running
                """
        }
    }

    public var requests: Int
    public var concurrency: Int
    public var latencyMedian: Duration
    public var promptBytes: Int

    public init(requests: Int = 20_000, concurrency: Int = 2_000, latencyMedian: Duration = .zero, promptBytes: Int = 200) {
        self.requests = max(1, requests)
        self.concurrency = max(1, concurrency)
        self.latencyMedian = latencyMedian
        self.promptBytes = max(1, promptBytes)
    }

    public func run() async throws -> Report {
        let server = try MockLLMServer(configuration: MockLLMConfiguration(
            port: 0, latencyMedian: latencyMedian, latencyP99: latencyMedian * 4))
        let port = try await server.start()
        var configuration = AnthropicClientConfiguration()
        configuration.baseURL = "http://127.0.0.1:\(port)"
        configuration.maxConcurrentConnections = concurrency
        configuration.maxRetries = 0
        let client = try AnthropicClient(configuration: configuration)
        let prompt = String(repeating: "durable workflows replay their journal ", count: promptBytes / 39 + 1)
        let request = LLMRequest(model: "claude-bench", prompt: String(prompt.prefix(promptBytes)), maxTokens: 256)

        let cpuBefore = Self.processCPUSeconds()
        let started = ContinuousClock.now
        let (failures, callSeconds) = await withTaskGroup(of: (Int, Double).self) { group in
            // `concurrency` callers taking the next call from one counter (as an executor's slots take the
            // next task), so a slow call does not hold back a fixed share of the others.
            let taken = CallCounter()
            for _ in 0..<concurrency {
                group.addTask {
                    var failed = 0
                    var seconds = 0.0
                    while taken.next() < requests {
                        let callStarted = ContinuousClock.now
                        do { _ = try await client.complete(request) } catch { failed += 1 }
                        seconds += (ContinuousClock.now - callStarted).timeInterval
                    }
                    return (failed, seconds)
                }
            }
            return await group.reduce((0, 0.0)) { ($0.0 + $1.0, $0.1 + $1.1) }
        }
        let elapsed = ContinuousClock.now - started
        let cpu = Self.processCPUSeconds() - cpuBefore
        let served = server.stats()
        try await client.shutdown()
        await server.stop()
        return Report(requests: requests, concurrency: concurrency, latencyMedian: latencyMedian, elapsed: elapsed,
                      cpuSeconds: cpu, failures: failures, idealSeconds: served.latencyTotalSeconds / Double(concurrency),
                      meanCallSeconds: callSeconds / Double(requests),
                      meanServedSeconds: served.latencyTotalSeconds / Double(max(1, served.ok)))
    }

    /// User and system CPU time of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

/// Hands out call numbers to the benchmark's callers.
private final class CallCounter: Sendable {
    private let taken = Atomic<Int>(0)

    func next() -> Int { taken.wrappingAdd(1, ordering: .relaxed).oldValue }
}
