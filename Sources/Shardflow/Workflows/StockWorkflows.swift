import ShardflowEngine
import ShardflowJSON
import ShardflowLLM

/// The workflows and steps every stock worker registers: `noop` to exercise the pipeline without any outside
/// service, and three LLM examples (`llm-chain`, `fanout`, `approval`).
public enum StockWorkflows {
    /// The step that calls the Messages API. Transient HTTP failures (429, 529, 5xx, timeouts) are retried inside
    /// one attempt by the client, honouring `retry-after`; the engine's policy retries the whole call a few more
    /// times with a longer backoff, so a provider outage of a minute or so does not fail workflows.
    public static let llmStepRetry = RetryPolicy(maxAttempts: 3, initialBackoff: .seconds(2), multiplier: 3,
                                                 maxBackoff: .seconds(60), jitter: 0.3)

    /// Registers everything in `registry`. `llm` serves the `llm` step; the default model is used when a
    /// workflow's args name none.
    public static func register(in registry: inout WorkflowRegistry, llm: any LLMCompleting, model: String) {
        registry.registerStep("noop", input: NoopInput.self, output: NoopOutput.self) { input, _ in
            if let delay = input.delayMs, delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
            return NoopOutput(index: input.index)
        }
        registry.registerStep("llm", input: LLMRequest.self, output: LLMCompletion.self, retry: llmStepRetry) { request, context in
            try await LLMStepIdentity.$current.withValue(
                LLMStepIdentity(workflowId: context.workflowId, stepId: context.stepId, attempt: context.attempt,
                                workflowCreatedAt: context.workflowCreatedAt)
            ) { try await llm.complete(request) }
        }

        registry.registerWorkflow("noop", args: NoopArgs.self, result: NoopResult.self, validate: { args in
            try InvalidArgs.require("steps", args.steps, in: 0...Limits.maxSteps)
            try InvalidArgs.require("stepDelayMs", args.stepDelayMs, in: 0...Limits.maxStepDelayMs)
        }) { ctx, args in
            for index in 0..<args.steps {
                _ = try await ctx.run("noop", NoopInput(index: index, delayMs: args.stepDelayMs), as: NoopOutput.self)
            }
            return NoopResult(steps: args.steps)
        }

        registry.registerWorkflow("llm-chain", args: ChainArgs.self, result: ChainResult.self, validate: { args in
            try InvalidArgs.require("steps", args.steps, in: 0...Limits.maxSteps)
            try InvalidArgs.require("maxTokens", args.maxTokens, in: 1...Limits.maxTokens)
        }) { ctx, args in
            var answer = args.prompt ?? "Write one sentence about durable workflows."
            var usage = TokenUsage()
            for index in 0..<args.steps {
                let prompt = index == 0 ? answer : "Improve this answer, keeping it short:\n\n\(answer)"
                let completion = try await ctx.run(
                    "llm", LLMRequest(model: args.model ?? model, system: args.system, prompt: prompt,
                                      maxTokens: args.maxTokens ?? 256),
                    as: LLMCompletion.self)
                answer = completion.text
                usage.add(completion)
            }
            return ChainResult(steps: args.steps, answer: answer, usage: usage)
        }

        registry.registerWorkflow("fanout", args: FanoutArgs.self, result: FanoutResult.self, validate: { args in
            try InvalidArgs.require("branches", args.branches, in: 0...Limits.maxBranches)
            try InvalidArgs.require("maxTokens", args.maxTokens, in: 1...Limits.maxTokens)
        }) { ctx, args in
            let topic = args.prompt ?? "durable workflows"
            let modelName = args.model ?? model
            // Parallel branches: scheduled together, run concurrently, journaled in a deterministic order.
            let answers = try await withThrowingTaskGroup(of: (Int, LLMCompletion).self) { group in
                for branch in 0..<args.branches {
                    group.addTask {
                        let completion = try await ctx.run(
                            "llm", LLMRequest(model: modelName, prompt: "Angle \(branch + 1) on \(topic): one sentence.",
                                              maxTokens: args.maxTokens ?? 128),
                            as: LLMCompletion.self)
                        return (branch, completion)
                    }
                }
                var collected: [(Int, LLMCompletion)] = []
                for try await item in group { collected.append(item) }
                return collected.sorted { $0.0 < $1.0 }.map(\.1)
            }
            var usage = TokenUsage()
            answers.forEach { usage.add($0) }
            let combined = try await ctx.run(
                "llm", LLMRequest(model: modelName,
                                  prompt: "Combine these into one paragraph:\n" + answers.map(\.text).joined(separator: "\n"),
                                  maxTokens: args.maxTokens ?? 256),
                as: LLMCompletion.self)
            usage.add(combined)
            return FanoutResult(branches: args.branches, answer: combined.text, usage: usage)
        }

        registry.registerWorkflow("approval", args: ApprovalArgs.self, result: ApprovalResult.self, validate: { args in
            try InvalidArgs.require("timeoutSeconds", args.timeoutSeconds, in: 0...Limits.maxTimeoutSeconds)
            if let event = args.event, event.isEmpty || event.utf8.count > 200 {
                throw InvalidArgs("event must be 1 to 200 bytes, got \(event.utf8.count)")
            }
        }) { ctx, args in
            let decision = try await ctx.waitForEvent(args.event ?? "approval",
                                                      timeout: .seconds(args.timeoutSeconds ?? 3600))
            guard let decision else { return ApprovalResult(approved: false, timedOut: true, decision: nil) }
            let approved: Bool
            if case .object(let fields) = decision, case .bool(let ok)? = fields["ok"] {
                approved = ok
            } else {
                approved = decision == .bool(true)
            }
            return ApprovalResult(approved: approved, timedOut: false, decision: decision)
        }
    }

    /// Bounds of the stock workflows' args: beyond them a start is dead-lettered, not run.
    public enum Limits {
        public static let maxSteps = 1_000
        public static let maxBranches = 100
        public static let maxStepDelayMs = 3_600_000
        public static let maxTokens = 64_000
        public static let maxTimeoutSeconds = 366 * 24 * 3600
    }
}

/// `{"steps": K}`; `stepDelayMs` makes each step sleep (tests use it to keep steps in flight).
public struct NoopArgs: Codable, Sendable {
    public var steps: Int
    public var stepDelayMs: Int?
}

public struct NoopResult: Codable, Sendable {
    public var steps: Int
}

public struct NoopInput: Codable, Sendable {
    public var index: Int
    public var delayMs: Int?
}
public struct NoopOutput: Codable, Sendable { public var index: Int }

public struct TokenUsage: Codable, Sendable {
    public var inputTokens = 0
    public var outputTokens = 0
    public var calls = 0
    mutating func add(_ completion: LLMCompletion) {
        inputTokens += completion.inputTokens
        outputTokens += completion.outputTokens
        calls += 1
    }
}

public struct ChainArgs: Codable, Sendable {
    public var steps: Int
    public var prompt: String?
    public var system: String?
    public var model: String?
    public var maxTokens: Int?
}

public struct ChainResult: Codable, Sendable {
    public var steps: Int
    public var answer: String
    public var usage: TokenUsage
}

public struct FanoutArgs: Codable, Sendable {
    public var branches: Int
    public var prompt: String?
    public var model: String?
    public var maxTokens: Int?
}

public struct FanoutResult: Codable, Sendable {
    public var branches: Int
    public var answer: String
    public var usage: TokenUsage
}

public struct ApprovalArgs: Codable, Sendable {
    public var event: String?
    public var timeoutSeconds: Int?
}

public struct ApprovalResult: Codable, Sendable {
    public var approved: Bool
    public var timedOut: Bool
    public var decision: JSONValue?
}

/// An LLM call that failed for good (400, 401, 403, 404, an invalid request) fails its step at once; 429,
/// 529, 5xx, timeouts and connection errors keep the step's retry policy.
extension LLMError: StepFailureClassifying {}
