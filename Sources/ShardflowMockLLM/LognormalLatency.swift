import Foundation

/// A lognormal latency given by its median and 99th percentile, in seconds.
///
/// ln(X) ~ Normal(mu, sigma) with mu = ln(median) and sigma = ln(p99 / median) / z99, where
/// z99 ≈ 2.326 is the standard normal's 99th percentile.
public struct LognormalLatency: Sendable, Equatable {
    public static let z99 = 2.326_347_874_040_841

    public var median: Double
    public var p99: Double

    public init(median: Double, p99: Double) {
        self.median = max(0, median)
        self.p99 = max(self.median, p99)
    }

    public var sigma: Double {
        guard median > 0, p99 > median else { return 0 }
        return log(p99 / median) / Self.z99
    }

    /// E[X] = median × exp(sigma² / 2): what a step costs on average, for capacity planning.
    public var mean: Double { median * exp(sigma * sigma / 2) }

    /// The value at standard-normal score `z`.
    public func value(atNormalScore z: Double) -> Double {
        median * exp(sigma * z)
    }

    /// One draw using `rng`.
    public func sample(using rng: inout some RandomNumberGenerator) -> Double {
        guard median > 0 else { return 0 }
        return value(atNormalScore: Self.standardNormal(using: &rng))
    }

    /// Box-Muller; u1 is kept away from 0 so log(u1) is finite.
    static func standardNormal(using rng: inout some RandomNumberGenerator) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng)
        let u2 = Double.random(in: 0..<1, using: &rng)
        return sqrt(-2 * log(u1)) * cos(2 * .pi * u2)
    }
}

/// A small seeded generator (SplitMix64), so a mock run with a given seed draws the same sequence.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
