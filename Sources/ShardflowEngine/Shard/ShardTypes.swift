import ShardflowJSON

/// One message read from Kafka, as the engine needs it.
public struct InboundMessage: Sendable, Equatable {
    public enum Stream: String, Sendable, Codable { case workflows, control }

    public var stream: Stream
    public var topic: String
    public var partition: Int
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    /// Kafka message timestamp, milliseconds since the epoch.
    public var timestamp: Int64

    public init(stream: Stream, topic: String, partition: Int, offset: Int64, key: [UInt8]?, value: [UInt8]?, timestamp: Int64) {
        self.stream = stream
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = timestamp
    }
}

/// What one `ingest` call did.
public struct IngestSummary: Sendable, Equatable {
    /// Messages below the stored next offset (already applied), left alone.
    public var skipped = 0
    public var started = 0
    /// Starts of a workflowId the shard already knew (I2: no effect).
    public var duplicateStarts = 0
    public var canceled = 0
    public var events = 0
    public var controlResults = 0
    public var deadLetters = 0
    public init() {}
}

/// Where an outbox row goes.
public enum OutboxTopic: String, Sendable, Codable, CaseIterable {
    case completions, replays, controlResults, deadLetters
}

/// A message waiting to be published; delete it with `acknowledgeOutbox` once delivered.
public struct OutboxRecord: Sendable, Equatable {
    public var id: Int64
    public var topic: OutboxTopic
    public var key: String
    public var value: [UInt8]
}

/// The answer of an operation (also the body of a control result).
public struct OperationResult: Sendable, Equatable {
    public var affected: AffectedCounts
    public var epoch: Int64
    /// Workflows left with no result and nothing that will move them on (I1 broken on purpose).
    public var stuckWorkflows: Int
}

/// The state of a shard's executor.
public enum ExecutorState: String, Sendable, Codable {
    /// Claiming at the shard's current epoch.
    case running
    /// Stopped by `bumpEpoch`, in-flight steps still finishing.
    case draining
    /// Not claiming (after `bumpEpoch`, until `resumeExecutors`), or the shard is not started.
    case stopped
    /// As recorded in the store (read-only inspection cannot see the live executor).
    case enabled
}

/// A snapshot of one shard.
public struct ShardStats: Sendable, Equatable, Codable {
    public var shard: Int
    public var epoch: Int64
    public var executorState: ExecutorState
    public var queuedTasks: Int
    public var runningTasks: Int
    public var replayQueueDepth: Int
    public var outboxDepth: Int
    public var timers: Int
    public var eventWaits: Int
    public var workflowsByStatus: [String: Int]
    public var oldestQueuedCreatedAt: Int64?
    /// When the oldest unpublished outbox row was written.
    public var oldestOutboxCreatedAt: Int64?
    /// Workflows failed by quarantine (their code stopped the worker too often).
    public var quarantinedWorkflows: Int
    /// Running workflows parked because this worker's code cannot run them (see `ParkedWorkflow`).
    public var parkedWorkflows: Int = 0
    public var nextWorkflowsOffset: Int64?
    public var nextControlOffset: Int64?
}

/// The invariant audit of one shard store.
public struct AuditReport: Sendable, Equatable, Codable {
    public var shard: Int
    /// I1: running workflows with no replay row, no task, no timer and no event wait.
    public var stuckWorkflows: [String]
    public var runningTasks: Int
    public var concurrencyBound: Int
    /// Rows that point at nothing (or at a finished workflow), by table.
    public var orphanRows: [String: Int]
    /// How long the oldest outbox row has waited to be published (nil: the outbox is empty).
    public var oldestOutboxAgeMilliseconds: Int64?
    /// Older than this, the outbox is reported: its messages are not getting out.
    public var outboxAgeLimitMilliseconds: Int64
    /// Workflows failed by quarantine: reported, not a problem of the store (they completed).
    public var quarantinedWorkflows: [String]
    /// Parked workflows: counted apart from stuck ones (a parked workflow is tried again at every open of
    /// its shard), reported because they wait for a deploy or an operator.
    public var parkedWorkflows: [ParkedWorkflow] = []
    /// Rows whose typed column holds a value this version does not know, by `table.column` (written by
    /// a newer version, or damaged). Such a row is not read as something else: outbox rows are replaced by
    /// dead letters that say so; other rows fail the transaction that reads them, which logs it.
    public var undecodableRows: [String: Int] = [:]

    public var runningTasksBeyondBound: Bool { runningTasks > concurrencyBound }
    public var outboxTooOld: Bool { (oldestOutboxAgeMilliseconds ?? 0) > outboxAgeLimitMilliseconds }
    public var isHealthy: Bool {
        stuckWorkflows.isEmpty && !runningTasksBeyondBound && orphanRows.values.allSatisfy { $0 == 0 } && !outboxTooOld
            && undecodableRows.isEmpty
    }
}

/// A running workflow that this worker's code cannot run, and why.
public struct ParkedWorkflow: Sendable, Equatable, Codable {
    public var workflowId: String
    public var workflow: String
    public var version: Int
    public var reason: String
    public var parkedAt: Int64
}

/// One workflow as stored, for inspection.
public struct WorkflowDetail: Sendable, Equatable, Codable {
    public struct JournalRow: Sendable, Equatable, Codable {
        public var stepId: Int
        public var kind: String
        public var name: String
        public var status: String
        public var output: JSONValue?
        public var error: String?
        public var attempts: Int
        public var completedAt: Int64?
        /// The generation (replay) that delivered this result to the body; nil while pending.
        public var round: Int?
    }

    /// A durable timer of the workflow: a sleep, or an event wait's timeout (operation `stepId`).
    public struct PendingTimer: Sendable, Equatable, Codable {
        public var stepId: Int
        public var fireAt: Int64
    }

    /// An event the workflow waits for (operation `stepId`).
    public struct EventWait: Sendable, Equatable, Codable {
        public var stepId: Int
        public var name: String
    }

    public struct PendingTask: Sendable, Equatable, Codable {
        public var stepId: Int
        public var name: String
        public var state: String
        public var attempt: Int
        public var readyAt: Int64
    }

    public var workflowId: String
    public var workflow: String
    public var status: String
    public var args: JSONValue
    public var createdAt: Int64
    public var completedAt: Int64?
    public var result: JSONValue?
    public var error: WorkflowErrorInfo?
    public var generation: Int
    public var journal: [JournalRow]
    public var pendingTasks: [PendingTask]
    public var inReplayQueue: Bool
    /// Deaths of the worker attributed to this workflow's code.
    public var crashes: Int = 0
    /// Failed by quarantine after `crashes` deaths.
    public var quarantined: Bool = false
    /// The registered version it runs.
    public var version: Int = 1
    /// Why it is parked (nil: it is not).
    public var parkedReason: String?
    /// When it was last parked (kept after it runs again).
    public var parkedAt: Int64?
    public var timers: [PendingTimer] = []
    public var eventWaits: [EventWait] = []
}

/// The workflows of one shard that need an operator's eye, newest first where it matters.
public struct ShardLists: Sendable, Equatable, Codable {
    public struct Failed: Sendable, Equatable, Codable {
        public var workflowId: String
        public var workflow: String
        public var error: String?
        public var step: String?
        public var completedAt: Int64
    }

    /// A step waiting out a retry backoff, or queued again after failed attempts.
    public struct Retrying: Sendable, Equatable, Codable {
        public var workflowId: String
        public var stepId: Int
        public var name: String
        /// Attempts made so far.
        public var attempts: Int
        public var readyAt: Int64
        public var lastError: String?
    }

    public var shard: Int
    public var stuck: [String]
    public var parked: [ParkedWorkflow]
    public var failedRecently: [Failed]
    public var retrying: [Retrying]
}
