/// Which workflow step an LLM call is made for, sent (when the client is configured to) as the
/// `shardflow-step` header: `workflowId/stepId/attempt/try`, where try counts the client's own HTTP
/// retries within one step attempt. It lets the mock LLM draw each call's latency and errors from
/// (seed, workflowId, step, attempt, try) alone, so a benchmark knows every draw and can compute the
/// exact ideal schedule of its run.
public struct LLMStepIdentity: Sendable, Equatable, Hashable {
    public var workflowId: String
    public var stepId: Int
    /// The step attempt, 1 for the first.
    public var attempt: Int
    /// The workflow's createdAt: calls waiting for the rate limiter go in FIFO order of it (not sent).
    public var workflowCreatedAt: Int64

    public init(workflowId: String, stepId: Int, attempt: Int, workflowCreatedAt: Int64 = 0) {
        self.workflowId = workflowId
        self.stepId = stepId
        self.attempt = attempt
        self.workflowCreatedAt = workflowCreatedAt
    }

    /// The order calls wait in: earliest-created workflow first, then its id and step (I4's order).
    public var priority: LLMCallPriority { LLMCallPriority(createdAt: workflowCreatedAt, workflowId: workflowId, stepId: stepId) }

    /// Set by the `llm` step around its call; read by `AnthropicClient`.
    @TaskLocal public static var current: LLMStepIdentity?

    public static let headerName = "shardflow-step"

    public func headerValue(httpTry: Int) -> String { "\(workflowId)/\(stepId)/\(attempt)/\(httpTry)" }

    /// Parses a header value; nil unless it is four `/`-separated fields with positive numbers.
    public static func parse(_ value: String) -> (identity: LLMStepIdentity, httpTry: Int)? {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, !parts[0].isEmpty, parts[0].utf8.count <= 200,
              let step = Int(parts[1]), let attempt = Int(parts[2]), let httpTry = Int(parts[3]),
              step >= 0, attempt >= 1, httpTry >= 1 else { return nil }
        return (LLMStepIdentity(workflowId: String(parts[0]), stepId: step, attempt: attempt), httpTry)
    }
}

/// Where a call waits for the rate limiter: by workflow createdAt, workflowId, stepId. Calls without one
/// (made outside a step) go after all that have one, in arrival order.
public struct LLMCallPriority: Sendable, Comparable, Hashable {
    public var createdAt: Int64
    public var workflowId: String
    public var stepId: Int

    public init(createdAt: Int64, workflowId: String, stepId: Int) {
        self.createdAt = createdAt
        self.workflowId = workflowId
        self.stepId = stepId
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.createdAt, a.workflowId, a.stepId) < (b.createdAt, b.workflowId, b.stepId)
    }
}
