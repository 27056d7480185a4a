extension String {
    /// `value` in `radix` (lowercase digits), padded with leading zeros to at least `width` digits; a minus
    /// sign goes in front of the padding. `String(zeroPadded: 7, width: 3)` is `"007"`,
    /// `String(zeroPadded: 255, width: 4, radix: 16)` is `"00ff"`, `String(zeroPadded: -7, width: 3)` is `"-007"`.
    public init(zeroPadded value: some BinaryInteger, width: Int, radix: Int = 10) {
        let digits = String(value.magnitude, radix: radix)
        let padding = String(repeating: "0", count: Swift.max(0, width - digits.count))
        self = (value < 0 ? "-" : "") + padding + digits
    }
}
