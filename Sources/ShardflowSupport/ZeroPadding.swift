extension String {
    /// `value` in `radix` (lowercase digits), padded with leading zeros to at least `width` digits; a minus
    /// sign goes in front of the padding. `String(zeroPadded: 7, width: 3)` is `"007"`,
    /// `String(zeroPadded: 255, width: 4, radix: 16)` is `"00ff"`, `String(zeroPadded: -7, width: 3)` is `"-007"`.
    public init(zeroPadded value: some BinaryInteger, width: Int, radix: Int = 10) {
        // Digits are written straight into the string's storage, right to left: this runs for every event id
        // the engine writes, where building and joining three strings cost more than the rest of the id.
        guard radix >= 2, radix <= 36, let magnitude = UInt64(exactly: value.magnitude) else {
            let digits = String(value.magnitude, radix: radix)
            let padding = String(repeating: "0", count: Swift.max(0, width - digits.count))
            self = (value < 0 ? "-" : "") + padding + digits
            return
        }
        var digitCount = 1
        var rest = magnitude / UInt64(radix)
        while rest > 0 {
            digitCount += 1
            rest /= UInt64(radix)
        }
        let negative = value < 0
        let length = (negative ? 1 : 0) + Swift.max(width, digitCount)
        self.init(unsafeUninitializedCapacity: length) { buffer in
            var index = length
            var remaining = magnitude
            repeat {
                index -= 1
                let digit = UInt8(remaining % UInt64(radix))
                buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                remaining /= UInt64(radix)
            } while remaining > 0
            let start = negative ? 1 : 0
            while index > start {
                index -= 1
                buffer[index] = UInt8(ascii: "0")
            }
            if negative { buffer[0] = UInt8(ascii: "-") }
            return length
        }
    }
}
