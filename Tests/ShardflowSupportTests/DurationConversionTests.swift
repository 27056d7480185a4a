import ShardflowSupport
import Testing

@Suite struct DurationConversionTests {
    @Test func integerUnitsKeepTheSubSecondPart() {
        let duration = Duration.seconds(2) + .milliseconds(345) + .nanoseconds(678)
        #expect(duration.milliseconds == 2_345)
        #expect(duration.nanoseconds == 2_345_000_678)
        #expect(duration.int32Milliseconds == 2_345)
        #expect(Duration.milliseconds(250).milliseconds == 250, "a sub-second duration is not zero")
        #expect(Duration.milliseconds(250).int32Milliseconds == 250)
        #expect(Duration.microseconds(1_500).milliseconds == 1, "whole milliseconds, rounded toward zero")
    }

    @Test func negativeDurationsRoundTowardZero() {
        #expect(Duration.milliseconds(-1_500).milliseconds == -1_500)
        #expect(Duration.microseconds(-1_500).milliseconds == -1)
        #expect(Duration.nanoseconds(-7).nanoseconds == -7)
    }

    @Test func integerUnitsSaturateInsteadOfTrapping() {
        let huge = Duration.seconds(Int64.max / 2)
        #expect(huge.nanoseconds == .max)
        #expect(huge.milliseconds == .max)
        #expect((.zero - huge).nanoseconds == .min)
        #expect((.zero - huge).milliseconds == .min)
        // Just past Int64.max nanoseconds: the seconds fit, the sum with the fraction does not.
        let edge = Duration.seconds(9_223_372_036) + .nanoseconds(999_999_999)
        #expect(edge.nanoseconds == .max)
    }

    @Test func librdkafkaTimeoutsAreClampedToInt32AndNeverNegative() {
        #expect(Duration.seconds(30 * 24 * 3600).int32Milliseconds == .max, "30 days exceed Int32 milliseconds")
        #expect(Duration.seconds(Int64.max / 2).int32Milliseconds == .max)
        // librdkafka reads a negative timeout as "wait forever".
        #expect(Duration.milliseconds(-5).int32Milliseconds == 0)
        #expect(Duration.zero.int32Milliseconds == 0)
    }

    @Test func timeIntervalIsSecondsWithTheFraction() {
        #expect((Duration.seconds(1) + .milliseconds(500)).timeInterval == 1.5)
        #expect(Duration.milliseconds(-250).timeInterval == -0.25)
        #expect(abs(Duration.nanoseconds(1).timeInterval - 1e-9) < 1e-18)
        #expect(Duration.zero.timeInterval == 0)
    }
}

@Suite struct ZeroPaddingTests {
    @Test func padsToTheWidth() {
        #expect(String(zeroPadded: 7, width: 3) == "007")
        #expect(String(zeroPadded: 0, width: 2) == "00")
        #expect(String(zeroPadded: 42, width: 2) == "42")
        #expect(String(zeroPadded: 12_345, width: 3) == "12345", "a wider number is not cut")
        #expect(String(zeroPadded: 5, width: 0) == "5")
    }

    @Test func signAndRadix() {
        #expect(String(zeroPadded: -7, width: 3) == "-007")
        #expect(String(zeroPadded: UInt8(255), width: 4, radix: 16) == "00ff")
        #expect(String(zeroPadded: UInt8(10), width: 2, radix: 16) == "0a")
        #expect(String(zeroPadded: Int64.min, width: 1) == "-9223372036854775808")
        #expect(String(zeroPadded: UInt64.max, width: 22) == "0018446744073709551615")
        #expect(String(zeroPadded: 35, width: 3, radix: 36) == "00z")
        #expect(String(zeroPadded: -255, width: 6, radix: 2) == "-11111111")
    }

    @Test func agreesWithTheStandardLibraryOverManyValues() {
        for value in [0, 1, 9, 10, 99, 100, 123_456_789, 1_000_000_000, Int.max, -1, -10, -123_456, Int.min] {
            for width in [0, 1, 3, 9, 12, 25] {
                for radix in [2, 10, 16] {
                    let digits = String(value.magnitude, radix: radix)
                    let expected = (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
                    #expect(String(zeroPadded: value, width: width, radix: radix) == expected, "\(value) \(width) \(radix)")
                }
            }
        }
    }
}
