import Foundation
import ShardflowLLM
import ShardflowSupport
import Synchronization

/// A reply the mock gives instead of its random one, consumed in order (for deterministic tests).
public struct MockLLMScriptedReply: Sendable, Equatable {
    /// 200 answers a normal message; anything else answers an API error body with that status.
    public var status: Int
    /// Sent as the `retry-after` header when set.
    public var retryAfter: String?
    /// How long to wait before answering.
    public var delay: Duration

    public init(status: Int, retryAfter: String? = nil, delay: Duration = .zero) {
        self.status = status
        self.retryAfter = retryAfter
        self.delay = delay
    }

    public static func status(_ status: Int, retryAfter: String? = nil, after delay: Duration = .zero) -> Self {
        Self(status: status, retryAfter: retryAfter, delay: delay)
    }

    public static func success(after delay: Duration) -> Self { Self(status: 200, delay: delay) }
}

/// The mock's decisions (latency, injected errors, rate limit, script) and its counters, behind one
/// lock: every request takes it twice for a few microseconds, which is cheap at thousands of requests.
final class MockLLMBehaviour: Sendable {
    struct Decision: Equatable {
        var status: Int
        var delaySeconds: Double
        var retryAfter: String?
        /// `anthropic-ratelimit-*` headers, when a limit is set.
        var rateLimitHeaders: [String: String] = [:]
    }

    private struct State {
        var rng: SplitMix64
        var script: [MockLLMScriptedReply] = []
        var recorder = MockLLMStatsRecorder()
        /// Token buckets of the rate limits: requests, input tokens, output tokens.
        var tokens: Double
        var inputTokens: Double = 0
        var outputTokens: Double = 0
        var lastRefill: ContinuousClock.Instant
        var nextMessageNumber = 0
    }

    let configuration: MockLLMConfiguration
    private let latency: LognormalLatency
    private let draws: MockLLMDraws
    private let startedAt: ContinuousClock.Instant
    private let state: Mutex<State>

    init(configuration: MockLLMConfiguration, now: ContinuousClock.Instant = .now) {
        self.configuration = configuration
        self.latency = configuration.latency
        self.draws = configuration.draws
        self.startedAt = now
        self.state = Mutex(
            State(rng: SplitMix64(seed: configuration.seed), tokens: Self.bucketCapacity(configuration.rateLimitRPM),
                  inputTokens: Self.bucketCapacity(configuration.rateLimitInputTPM),
                  outputTokens: Self.bucketCapacity(configuration.rateLimitOutputTPM), lastRefill: now)
        )
    }

    /// One second's worth of requests (at least one): bursts up to that pass, a sustained rate above
    /// the limit gets 429s. A minute-sized bucket would let a whole minute's quota through at once.
    static func bucketCapacity(_ rpm: Int) -> Double { max(1, Double(rpm) / 60) }

    func script(_ replies: [MockLLMScriptedReply]) {
        state.withLock { $0.script.append(contentsOf: replies) }
    }

    /// Counts a request as started and returns its message number.
    func begin() -> Int {
        state.withLock { state in
            state.recorder.begin()
            state.nextMessageNumber += 1
            return state.nextMessageNumber
        }
    }

    func finish(status: Int, latencySeconds: Double?, usage: LLMUsage? = nil) {
        state.withLock { state in
            state.recorder.finish(status: status, latencySeconds: latencySeconds, usage: usage, rng: &state.rng)
        }
    }

    /// What to answer a valid, authorised request: the rate limit first (answered at once), then
    /// the script, then a lognormal latency with injected 500 / 529 at the configured rates.
    /// A call that says which step it is for (`LLMStepIdentity`) gets the draw of `MockLLMDraws` for it, so
    /// its latency and injected error depend on nothing else (not on the order calls arrive in).
    func decide(identified: (identity: LLMStepIdentity, httpTry: Int)? = nil, inputTokens: Int = 0, maxTokens: Int = 0,
                now: ContinuousClock.Instant = .now) -> Decision {
        state.withLock { state in
            let rpm = configuration.rateLimitRPM, itpm = configuration.rateLimitInputTPM, otpm = configuration.rateLimitOutputTPM
            var headers: [String: String] = [:]
            if rpm > 0 || itpm > 0 || otpm > 0 {
                let elapsed = max(0, (now - state.lastRefill).timeInterval)
                func refill(_ value: Double, _ perMinute: Int) -> Double {
                    perMinute > 0 ? min(Self.bucketCapacity(perMinute), value + elapsed * Double(perMinute) / 60) : value
                }
                state.tokens = refill(state.tokens, rpm)
                state.inputTokens = refill(state.inputTokens, itpm)
                state.outputTokens = refill(state.outputTokens, otpm)
                state.lastRefill = now
                // Seconds until a bucket holds `need` (a need above its capacity waits for a full bucket).
                func wait(_ have: Double, _ need: Double, _ perMinute: Int) -> Double {
                    guard perMinute > 0 else { return 0 }
                    let target = min(need, Self.bucketCapacity(perMinute))
                    return have >= target ? 0 : (target - have) / (Double(perMinute) / 60)
                }
                let input = Double(max(1, inputTokens)), output = Double(max(1, maxTokens))
                let waitSeconds = max(wait(state.tokens, 1, rpm), wait(state.inputTokens, input, itpm), wait(state.outputTokens, output, otpm))
                if waitSeconds > 0 {
                    return Decision(status: 429, delaySeconds: 0, retryAfter: String(Int(max(1, waitSeconds.rounded(.up)))),
                                    rateLimitHeaders: Self.headers(state, configuration))
                }
                if rpm > 0 { state.tokens -= 1 }
                if itpm > 0 { state.inputTokens -= input }
                if otpm > 0 { state.outputTokens -= output }
                headers = Self.headers(state, configuration)
            }
            if !state.script.isEmpty {
                let reply = state.script.removeFirst()
                return Decision(status: reply.status, delaySeconds: reply.delay.timeInterval, retryAfter: reply.retryAfter)
            }
            if let identified {
                let draw = draws.draw(identified.identity, httpTry: identified.httpTry)
                return Decision(status: draw.status, delaySeconds: draw.latencySeconds, retryAfter: nil, rateLimitHeaders: headers)
            }
            let delay = latency.sample(using: &state.rng)
            let roll = Double.random(in: 0..<1, using: &state.rng)
            let status: Int
            if roll < configuration.errorRate {
                status = 500
            } else if roll < configuration.errorRate + configuration.overloadRate {
                status = 529
            } else {
                status = 200
            }
            return Decision(status: status, delaySeconds: delay, retryAfter: nil, rateLimitHeaders: headers)
        }
    }

    /// The `anthropic-ratelimit-*` headers the real API sends: each limit, what remains of it, and (for
    /// requests) when it is full again.
    private static func headers(_ state: State, _ configuration: MockLLMConfiguration) -> [String: String] {
        var headers: [String: String] = [:]
        func add(_ name: String, _ perMinute: Int, _ have: Double) {
            guard perMinute > 0 else { return }
            headers["anthropic-ratelimit-\(name)-limit"] = String(perMinute)
            headers["anthropic-ratelimit-\(name)-remaining"] = String(Int(max(0, have.rounded(.down))))
            let full = max(0, bucketCapacity(perMinute) - have) / (Double(perMinute) / 60)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            headers["anthropic-ratelimit-\(name)-reset"] = formatter.string(from: Date().addingTimeInterval(full))
        }
        add("requests", configuration.rateLimitRPM, state.tokens)
        add("input-tokens", configuration.rateLimitInputTPM, state.inputTokens)
        add("output-tokens", configuration.rateLimitOutputTPM, state.outputTokens)
        return headers
    }

    func stats(now: ContinuousClock.Instant = .now) -> MockLLMStats {
        state.withLock { $0.recorder.snapshot(uptimeSeconds: (now - startedAt).timeInterval) }
    }
}
