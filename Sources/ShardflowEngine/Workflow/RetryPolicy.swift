import ShardflowSupport
/// How often and how patiently a failed step is tried again.
public struct RetryPolicy: Sendable, Equatable, Codable {
    /// Total attempts including the first; 1 means at most once.
    public var maxAttempts: Int
    public var initialBackoff: Duration
    public var multiplier: Double
    public var maxBackoff: Duration
    /// Fraction (0...1) of the backoff added or removed at random, so retries of many tasks spread out.
    public var jitter: Double

    public init(maxAttempts: Int = 3, initialBackoff: Duration = .seconds(1), multiplier: Double = 2,
                maxBackoff: Duration = .seconds(60), jitter: Double = 0.2) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.multiplier = max(1, multiplier)
        self.maxBackoff = maxBackoff
        self.jitter = min(max(jitter, 0), 1)
    }

    /// At most once: a failure is final. (Named so, not `.none`, which would read as `nil` where a
    /// policy is optional and silently mean "the default".)
    public static let atMostOnce = RetryPolicy(maxAttempts: 1, initialBackoff: .zero, multiplier: 1, maxBackoff: .zero, jitter: 0)
    /// The worker default unless configured otherwise.
    public static let standard = RetryPolicy()

    /// The delay before attempt `attempt + 1`, given that `attempt` (1-based) just failed.
    /// `unitRandom` is in 0..<1 and only matters when `jitter` is above 0.
    public func backoffMilliseconds(afterAttempt attempt: Int, unitRandom: Double) -> Int64 {
        let base = Double(initialBackoff.milliseconds) * power(multiplier, Double(max(0, attempt - 1)))
        let capped = min(base, Double(maxBackoff.milliseconds))
        let jittered = capped * (1 + jitter * (2 * unitRandom - 1))
        // A policy with absurd numbers (a huge multiplier, NaN jitter) saturates instead of trapping.
        guard jittered.isFinite else { return jittered.isNaN ? 0 : Int64.max }
        return Int64(exactly: max(0, jittered.rounded())) ?? Int64.max
    }
}

extension Int64 {
    /// `self + other`, held at the Int64 range instead of trapping (times computed from a workflow's
    /// durations, which its args may make absurd).
    func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : sum
    }
}

@inline(__always) private func power(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= base
        remaining -= 1
        if result > 1e15 { break }
    }
    return result
}
