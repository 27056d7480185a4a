import ShardflowEngine
import ShardflowMockLLM

/// Where a step's time went around its LLM call, from the stores (queued, recorded) and the mock's request
/// log (the call arrived, was answered), over the steps that succeeded at their first attempt with one
/// HTTP try. The call itself is the mock's draw; what surrounds it is the worker's: a CPU-bound worker
/// shows it here first (each hop waits for a thread, see `BenchExecutorLag`).
public struct BenchStepSplit: Codable, Sendable, Equatable {
    public var steps: Int
    /// Queued in the store until the call reached the mock: the wait for a slot, the claim, the step's start
    /// and its HTTP request.
    public var beforeCall: Spread
    /// The call as the mock served it.
    public var call: Spread
    /// The mock's answer until the result was recorded: back through the HTTP client, the step, the shard's loop.
    public var afterCall: Spread

    public struct Spread: Codable, Sendable, Equatable {
        public var p50Ms: Double
        public var p90Ms: Double

        public init(p50Ms: Double, p90Ms: Double) {
            self.p50Ms = p50Ms
            self.p90Ms = p90Ms
        }

        init(_ values: [Double]) {
            let sorted = values.sorted()
            p50Ms = BenchReport.percentile(sorted, 0.5)
            p90Ms = BenchReport.percentile(sorted, 0.9)
        }
    }

    /// Nil when no step qualifies (no mock log, or every step retried).
    public init?(timings: [StepTiming], requests: [MockLLMRequestLog.Entry]) {
        struct Key: Hashable { var workflowId: String; var stepId: Int }
        var tries: [Key: [MockLLMRequestLog.Entry]] = [:]
        for request in requests { tries[Key(workflowId: request.workflowId, stepId: request.stepId), default: []].append(request) }
        var before: [Double] = [], call: [Double] = [], after: [Double] = []
        for timing in timings where timing.attempts == 1 {
            guard let made = tries[Key(workflowId: timing.workflowId, stepId: timing.stepId)], made.count == 1,
                  let request = made.first, request.attempt == 1, request.httpTry == 1, request.status == 200
            else { continue }
            before.append(Double(request.arrivedAtMs - timing.enqueuedAt))
            call.append(Double(request.answeredAtMs - request.arrivedAtMs))
            after.append(Double(timing.completedAt - request.answeredAtMs))
        }
        guard !before.isEmpty else { return nil }
        steps = before.count
        beforeCall = Spread(before)
        self.call = Spread(call)
        afterCall = Spread(after)
    }
}
