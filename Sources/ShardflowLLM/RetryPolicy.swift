import Foundation
import ShardflowSupport

/// How long to wait before the next attempt of a call.
public struct RetryBackoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    /// A `retry-after` longer than this is cut down to it, so one header cannot park a step for hours.
    public var maxRetryAfter: Duration

    public init(initial: Duration, maximum: Duration, maxRetryAfter: Duration) {
        self.initial = initial
        self.maximum = maximum
        self.maxRetryAfter = maxRetryAfter
    }

    /// The wait after failed attempt number `attempt` (1-based). `unitRandom` in [0, 1) is the jitter.
    ///
    /// Without `retry-after`: exponential `initial × 2^(attempt-1)` capped at `maximum`, with "equal
    /// jitter" (half fixed, half random) so waits grow but callers don't retry in lockstep.
    /// With `retry-after`: at least the server's value (capped at `maxRetryAfter`) plus up to one
    /// `initial` of jitter, so thousands of rate-limited callers do not return in the same instant.
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?, unitRandom: Double) -> Duration {
        let u = min(max(unitRandom, 0), 1)
        let exponent = Double(max(0, attempt - 1))
        let exponential = min(initial.timeInterval * pow(2, min(exponent, 62)), maximum.timeInterval)
        let jittered = exponential * (0.5 + 0.5 * u)
        guard let retryAfter else { return .seconds(jittered) }
        let honoured = min(retryAfter.timeInterval, maxRetryAfter.timeInterval) + initial.timeInterval * u
        return .seconds(max(honoured, jittered))
    }
}

/// Parses the HTTP `retry-after` header.
public enum RetryAfterHeader {
    /// `retry-after` is either delay-seconds (`"3"`; decimals accepted) or an HTTP date
    /// (`"Wed, 21 Oct 2015 07:28:00 GMT"`). A date in the past means "now". Nil when unreadable.
    public static func parse(_ value: String, now: Date = Date()) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed) {
            return seconds.isFinite && seconds >= 0 ? .seconds(seconds) : nil
        }
        guard let date = httpDate(trimmed) else { return nil }
        return .seconds(max(0, date.timeIntervalSince(now)))
    }

    /// IMF-fixdate, plus the obsolete RFC 850 and asctime forms HTTP/1.1 requires readers to accept.
    static func httpDate(_ text: String) -> Date? {
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    /// Formats a date as IMF-fixdate, the form servers send.
    public static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
