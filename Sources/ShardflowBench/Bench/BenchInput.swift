import Foundation

/// How a workflow of a bench run ended, as far as the bench saw.
public enum BenchWorkflowStatus: String, Codable, Sendable, CaseIterable {
    case succeeded
    case failed
    case canceled
    /// No completion was seen by the end of the run.
    case incomplete
}

/// One workflow of a bench run.
public struct BenchWorkflowRecord: Codable, Sendable, Equatable {
    /// Creation order, 0-based: the bench submits workflows with increasing `createdAt`.
    public var index: Int
    public var workflowId: String
    /// Milliseconds since the Unix epoch.
    public var createdAt: Int64
    /// Milliseconds since the Unix epoch; nil while no completion was seen.
    public var completedAt: Int64?
    public var status: BenchWorkflowStatus
    /// Steps the workflow ran (the completion's `steps`).
    public var steps: Int

    public init(index: Int, workflowId: String, createdAt: Int64, completedAt: Int64?, status: BenchWorkflowStatus, steps: Int) {
        self.index = index
        self.workflowId = workflowId
        self.createdAt = createdAt
        self.completedAt = completedAt
        self.status = status
        self.steps = steps
    }

    /// completedAt − createdAt, when completed.
    public var completionTimeMs: Int64? { completedAt.map { $0 - createdAt } }
}

/// What the bench knows about the run as a whole.
public struct BenchRunMetadata: Codable, Sendable, Equatable {
    /// The workflow run, e.g. `llm-chain`, `fanout` or `noop`.
    public var workflowKind: String
    public var stepsPerWorkflow: Int
    /// Steps on the longest dependent chain of one workflow: all of them for `llm-chain`, 2 for
    /// `fanout` (the parallel calls, then the combining one). Nil means `stepsPerWorkflow`.
    public var criticalPathSteps: Int?
    public var shards: Int
    public var slotsPerShard: Int
    /// Mock LLM latency median and p99 in milliseconds (0 for `--no-llm`).
    public var latencyMedianMs: Double
    public var latencyP99Ms: Double
    /// Milliseconds since the Unix epoch: first submission, and the moment the bench stopped waiting.
    public var runStartedAt: Int64
    public var runEndedAt: Int64
    public var submitted: Int
    /// Workflows the invariant audit found stuck (no result and nothing that would move them on).
    public var stuck: Int
    public var workerPeakRSSBytes: Int?

    public init(
        workflowKind: String, stepsPerWorkflow: Int, criticalPathSteps: Int? = nil, shards: Int, slotsPerShard: Int,
        latencyMedianMs: Double, latencyP99Ms: Double, runStartedAt: Int64, runEndedAt: Int64, submitted: Int,
        stuck: Int, workerPeakRSSBytes: Int?
    ) {
        self.workflowKind = workflowKind
        self.stepsPerWorkflow = stepsPerWorkflow
        self.criticalPathSteps = criticalPathSteps
        self.shards = shards
        self.slotsPerShard = slotsPerShard
        self.latencyMedianMs = latencyMedianMs
        self.latencyP99Ms = latencyP99Ms
        self.runStartedAt = runStartedAt
        self.runEndedAt = runEndedAt
        self.submitted = submitted
        self.stuck = stuck
        self.workerPeakRSSBytes = workerPeakRSSBytes
    }

    /// Steps that may run at once across the deployment.
    public var slots: Int { shards * slotsPerShard }

    /// The mean of the lognormal with this median and p99: median × exp(σ²/2), σ = ln(p99/median) / z₀.₉₉.
    public var meanStepLatencyMs: Double {
        guard latencyMedianMs > 0 else { return 0 }
        let sigma = latencyP99Ms > latencyMedianMs ? log(latencyP99Ms / latencyMedianMs) / 2.326_347_874_040_841 : 0
        return latencyMedianMs * exp(sigma * sigma / 2)
    }
}

/// A bad input to the report, named clearly instead of producing nonsense figures.
public struct BenchReportError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "cannot build the bench report: \(message)" }
}
