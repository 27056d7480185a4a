import ShardflowLLM

/// The mock LLM's draws for identified calls: a pure function of (seed, workflowId, step, attempt, try),
/// shared by the mock (which answers with them) and the benchmark (which simulates the ideal schedule).
public struct MockLLMDraws: Sendable, Equatable {
    public var seed: UInt64
    public var latency: LognormalLatency
    public var errorRate: Double
    public var overloadRate: Double

    public init(seed: UInt64, latency: LognormalLatency, errorRate: Double = 0, overloadRate: Double = 0) {
        self.seed = seed
        self.latency = latency
        self.errorRate = errorRate
        self.overloadRate = overloadRate
    }

    public struct Draw: Sendable, Equatable {
        /// 200, or 500 / 529 for an injected error.
        public var status: Int
        public var latencySeconds: Double
    }

    public func draw(_ identity: LLMStepIdentity, httpTry: Int) -> Draw {
        // FNV-1a over the fields, then SplitMix64: independent, reproducible streams per call.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in "\(identity.workflowId)/\(identity.stepId)/\(identity.attempt)/\(httpTry)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        var rng = SplitMix64(seed: hash)
        let seconds = latency.sample(using: &rng)
        let roll = Double.random(in: 0..<1, using: &rng)
        let status = roll < errorRate ? 500 : roll < errorRate + overloadRate ? 529 : 200
        return Draw(status: status, latencySeconds: seconds)
    }
}
