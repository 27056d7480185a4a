import Foundation
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
    }

    private struct State {
        var rng: SplitMix64
        var script: [MockLLMScriptedReply] = []
        var recorder = MockLLMStatsRecorder()
        /// Token bucket of the rate limit.
        var tokens: Double
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
            State(rng: SplitMix64(seed: configuration.seed), tokens: Self.bucketCapacity(configuration.rateLimitRPM), lastRefill: now)
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
    func decide(identified: (identity: LLMStepIdentity, httpTry: Int)? = nil, now: ContinuousClock.Instant = .now) -> Decision {
        state.withLock { state in
            let rpm = configuration.rateLimitRPM
            if rpm > 0 {
                let perSecond = Double(rpm) / 60
                let elapsed = (now - state.lastRefill).inSeconds
                state.tokens = min(Self.bucketCapacity(rpm), state.tokens + max(0, elapsed) * perSecond)
                state.lastRefill = now
                if state.tokens < 1 {
                    let wait = max(1, ((1 - state.tokens) / perSecond).rounded(.up))
                    return Decision(status: 429, delaySeconds: 0, retryAfter: String(Int(wait)))
                }
                state.tokens -= 1
            }
            if !state.script.isEmpty {
                let reply = state.script.removeFirst()
                return Decision(status: reply.status, delaySeconds: reply.delay.inSeconds, retryAfter: reply.retryAfter)
            }
            if let identified {
                let draw = draws.draw(identified.identity, httpTry: identified.httpTry)
                return Decision(status: draw.status, delaySeconds: draw.latencySeconds, retryAfter: nil)
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
            return Decision(status: status, delaySeconds: delay, retryAfter: nil)
        }
    }

    func stats(now: ContinuousClock.Instant = .now) -> MockLLMStats {
        state.withLock { $0.recorder.snapshot(uptimeSeconds: (now - startedAt).inSeconds) }
    }
}
