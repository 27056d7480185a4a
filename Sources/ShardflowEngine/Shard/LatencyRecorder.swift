import Synchronization

/// Collects durations and reports percentiles (used by the benchmark).
public final class LatencyRecorder: Sendable {
    private let samples = Mutex<[Duration]>([])

    public init() {}

    public func record(_ durations: [Duration]) {
        samples.withLock { $0.append(contentsOf: durations) }
    }

    public var count: Int { samples.withLock { $0.count } }

    /// The `fraction` percentile (0...1), nil when empty.
    public func percentile(_ fraction: Double) -> Duration? {
        let sorted = samples.withLock { $0 }.sorted()
        guard !sorted.isEmpty else { return nil }
        let index = min(sorted.count - 1, max(0, Int((Double(sorted.count) * fraction).rounded(.up)) - 1))
        return sorted[index]
    }
}
