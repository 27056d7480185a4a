import ShardflowEngine

/// One shard as the console shows it: the store's counts with what only the worker knows (consumer lag,
/// the live executor), taken by the worker's gauge loop every 2 s, so a page open on many screens adds
/// no reads to the shard's store.
public struct ShardSnapshot: Sendable, Equatable, Codable {
    public var shard: Int
    public var epoch: Int64
    public var executorState: String
    public var queuedTasks: Int
    public var runningTasks: Int
    public var replayQueueDepth: Int
    public var outboxDepth: Int
    /// Seconds the oldest unpublished outbox row has waited (nil: the outbox is empty).
    public var oldestOutboxAgeSeconds: Double?
    /// Messages of the shard's partition not yet applied (nil until the consumer learnt the high watermark).
    public var consumerLag: Int64?
    public var stuckWorkflows: Int
    public var parkedWorkflows: Int
    public var quarantinedWorkflows: Int
    public var timers: Int
    public var eventWaits: Int
    public var workflowsByStatus: [String: Int]
    /// When this snapshot was taken (milliseconds since the epoch).
    public var takenAt: Int64
}

/// The console's first screen: who this worker is and the shards it owns.
public struct ConsoleOverview: Sendable, Equatable, Codable {
    public var group: String
    public var topicsPrefix: String
    public var partitionCount: Int?
    public var ready: Bool
    public var notReadyReasons: [String]
    /// Whether operator actions are enabled (`--console-actions` with a token).
    public var actionsEnabled: Bool
    public var shards: [ShardSnapshot]
}

/// A workflow looked up by id: where it lives, and its detail when this worker owns that shard.
public struct ConsoleWorkflow: Sendable, Equatable, Codable {
    public var workflowId: String
    public var shard: Int
    public var ownedHere: Bool
    public var detail: WorkflowDetail?
}

/// An operator action sent from the console; published as a control message like `shardflow admin` does.
public struct ConsoleActionRequest: Sendable, Equatable, Codable {
    public var type: ControlCommandType
    public var shard: Int?
    public var workflowId: String?
    public var reason: String?
}

/// The answer: the control result the shard published, or why the action was not sent.
public struct ConsoleActionResponse: Sendable, Equatable, Codable {
    public var sent: Bool
    public var commandId: String?
    public var status: String?
    public var error: String?
    public var epoch: Int64?
    public var affectedWorkflows: Int?
    public var affectedTasks: Int?
}
