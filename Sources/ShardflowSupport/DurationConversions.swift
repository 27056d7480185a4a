/// The one conversion of `Duration` to the integer and floating-point units the libraries below need
/// (librdkafka's millisecond timeouts, SwiftNIO's nanoseconds, rates in seconds). Integer results
/// keep the sub-second part, round toward zero and saturate instead of trapping.
extension Duration {
    /// Whole nanoseconds, rounded toward zero, saturating at the Int64 range.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return Self.saturating(seconds, times: 1_000_000_000, plus: attoseconds / 1_000_000_000)
    }

    /// Whole milliseconds, rounded toward zero, saturating at the Int64 range.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return Self.saturating(seconds, times: 1_000, plus: attoseconds / 1_000_000_000_000_000)
    }

    /// The duration in seconds, for rates, reports and APIs that take a `Double` (a `TimeInterval`).
    public var timeInterval: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Whole milliseconds held to `0...Int32.max`, for librdkafka's `int timeout_ms` arguments: a
    /// negative timeout there means "wait forever", which no negative `Duration` should turn into.
    public var int32Milliseconds: Int32 {
        Int32(clamping: max(0, milliseconds))
    }

    /// `seconds × factor + rest`, held at the Int64 range (`rest` has the sign of `seconds` or is zero).
    private static func saturating(_ seconds: Int64, times factor: Int64, plus rest: Int64) -> Int64 {
        let (product, overflow) = seconds.multipliedReportingOverflow(by: factor)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflowed) = product.addingReportingOverflow(rest)
        if overflowed { return rest < 0 ? .min : .max }
        return sum
    }
}
