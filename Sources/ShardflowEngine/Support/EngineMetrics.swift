import Metrics

/// The engine's metrics, through the swift-metrics API (the application bootstraps the backend).
struct EngineMetrics: Sendable {
    let workflowsStarted: Counter
    let workflowsSucceeded: Counter
    let workflowsFailed: Counter
    let workflowsCanceled: Counter
    let stepsSucceeded: Counter
    let stepsFailed: Counter
    let stepRetries: Counter
    let deadLetters: Counter
    let workflowsPruned: Counter
    let workflowCrashes: Counter
    let workflowsQuarantined: Counter
    let misroutedMessages: Counter
    let workflowsParked: Counter
    let workflowsResumed: Counter
    let outboxRefused: Counter
    /// Outbox rows whose topic this version does not know (each is replaced by a dead letter).
    let outboxUndecodable: Counter
    let oversizedOutputs: Counter
    /// Patchset bytes handed to the shard log (the log's own cost per step).
    let logBytes: Counter
    let stepDuration: Metrics.Timer
    let workflowDuration: Metrics.Timer
    let replayDuration: Metrics.Timer

    init(shard: Int) {
        let shardDimension = ("shard", String(shard))
        workflowsStarted = Counter(label: "shardflow_workflows_started_total", dimensions: [shardDimension])
        workflowsSucceeded = Counter(label: "shardflow_workflows_completed_total", dimensions: [shardDimension, ("status", "succeeded")])
        workflowsFailed = Counter(label: "shardflow_workflows_completed_total", dimensions: [shardDimension, ("status", "failed")])
        workflowsCanceled = Counter(label: "shardflow_workflows_completed_total", dimensions: [shardDimension, ("status", "canceled")])
        stepsSucceeded = Counter(label: "shardflow_steps_total", dimensions: [shardDimension, ("status", "succeeded")])
        stepsFailed = Counter(label: "shardflow_steps_total", dimensions: [shardDimension, ("status", "failed")])
        stepRetries = Counter(label: "shardflow_step_retries_total", dimensions: [shardDimension])
        deadLetters = Counter(label: "shardflow_dead_letters_total", dimensions: [shardDimension])
        workflowsPruned = Counter(label: "shardflow_workflows_pruned_total", dimensions: [shardDimension])
        workflowCrashes = Counter(label: "shardflow_workflow_crashes_total", dimensions: [shardDimension])
        workflowsQuarantined = Counter(label: "shardflow_workflows_quarantined_total", dimensions: [shardDimension])
        misroutedMessages = Counter(label: "shardflow_misrouted_messages_total", dimensions: [shardDimension])
        workflowsParked = Counter(label: "shardflow_workflows_parked_total", dimensions: [shardDimension])
        workflowsResumed = Counter(label: "shardflow_workflows_unparked_total", dimensions: [shardDimension])
        outboxRefused = Counter(label: "shardflow_outbox_refused_total", dimensions: [shardDimension])
        outboxUndecodable = Counter(label: "shardflow_outbox_undecodable_rows_total", dimensions: [shardDimension])
        oversizedOutputs = Counter(label: "shardflow_oversized_outputs_total", dimensions: [shardDimension])
        logBytes = Counter(label: "shardflow_shard_log_written_bytes_total", dimensions: [shardDimension])
        stepDuration = Metrics.Timer(label: "shardflow_step_duration_seconds", dimensions: [shardDimension])
        workflowDuration = Metrics.Timer(label: "shardflow_workflow_duration_seconds", dimensions: [shardDimension])
        replayDuration = Metrics.Timer(label: "shardflow_replay_duration_seconds", dimensions: [shardDimension])
    }

    func completed(_ status: CompletionStatus) {
        switch status {
        case .succeeded: workflowsSucceeded.increment()
        case .failed: workflowsFailed.increment()
        case .canceled: workflowsCanceled.increment()
        }
    }
}
