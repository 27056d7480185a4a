import Foundation
import ShardflowSupport

/// Formats the one-line live progress of a bench or demo run:
/// `1,234 completed, 5 failed, 761 in flight, 98.4/s, ETA 0:07`.
public struct BenchProgressLine: Sendable {
    public var total: Int
    public var startedAt: Date

    public init(total: Int, startedAt: Date = Date()) {
        self.total = total
        self.startedAt = startedAt
    }

    /// The line for `completed` successes and `failed` failures seen by `now`.
    /// `inFlight` defaults to what is neither completed nor failed.
    public func format(completed: Int, failed: Int, inFlight: Int? = nil, now: Date = Date()) -> String {
        let done = completed + failed
        let pending = inFlight ?? max(0, total - done)
        let elapsed = max(0, now.timeIntervalSince(startedAt))
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let remaining = max(0, total - done)
        let eta: String
        if remaining == 0 {
            eta = "done"
        } else if rate > 0 {
            eta = Self.clock(Double(remaining) / rate)
        } else {
            eta = "--:--"
        }
        return "\(BenchFormat.count(completed)) completed, \(BenchFormat.count(failed)) failed, "
            + "\(BenchFormat.count(pending)) in flight, \(String(format: "%.1f", rate))/s, "
            + "ETA \(eta), elapsed \(Self.clock(elapsed))"
    }

    /// `h:mm:ss` or `m:ss`.
    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        let minutesAndSeconds = "\(String(zeroPadded: m, width: h > 0 ? 2 : 1)):\(String(zeroPadded: s, width: 2))"
        return h > 0 ? "\(h):\(minutesAndSeconds)" : minutesAndSeconds
    }
}
