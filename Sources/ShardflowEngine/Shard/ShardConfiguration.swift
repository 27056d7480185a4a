/// Tuning of one shard. The defaults match the contract.
public struct ShardConfiguration: Sendable {
    /// I5: at most this many steps run at once per shard.
    public var maxConcurrency: Int = 50
    /// I5: one claim takes at most this many tasks.
    public var claimLimit: Int = 50
    /// Backpressure: the executor claims nothing while the outbox holds more rows than this.
    public var outboxHighWater: Int = 20_000
    /// Inbound messages above this size are dead-lettered.
    public var maxMessageBytes: Int = 1 << 20
    /// Retry policy of steps when neither the call, the step nor the workflow sets one.
    public var defaultRetry: RetryPolicy = .standard
    /// How many replay-queue rows one replay transaction handles.
    public var replayBatchSize: Int = 64
    /// How many step results one recording transaction handles at most.
    public var recordBatchSize: Int = 256
    /// How many waiting workflow bodies the shard keeps alive between steps (0: replay every time).
    /// A kept body is resumed with its next results instead of being replayed from the journal.
    /// When full, the earliest-created workflows' bodies stay (the FIFO queue needs them first). The
    /// process-wide bound (`ExecutionCache.processLimit`) is what caps memory.
    public var executionCacheCapacity: Int = 20_000
    /// How long a finished workflow (with its journal) stays in the store after it completed; nil
    /// keeps it forever. A start repeated after this (a new message, not a redelivery: consumed
    /// offsets are stored) runs the workflow again.
    public var retention: Duration? = .seconds(7 * 24 * 3600)
    /// How often the shard looks for finished workflows past their retention.
    public var retentionSweepInterval: Duration = .seconds(60)
    /// After this many deaths of the process in one workflow's code (a trap in its body or a step), the
    /// workflow is quarantined: it completes `failed` instead of running again.
    public var quarantineAfterCrashes: Int = 2
    /// Whether bodies and steps run with the crash guard's site set, so a death in their code is
    /// attributed (and quarantine can act). Off only to measure what it costs.
    public var crashAttribution = true
    /// What a determinism violation (a body whose code changed unsafely under its journal) does to its
    /// workflow: park it (it stays running, journal intact, until a worker that can run it owns the
    /// shard, or an operator fails it), or fail it at once.
    public var onNondeterminism: NondeterminismPolicy = .park
    /// The partition count of the workflows topic, for the routing check (a message must be read from
    /// the partition its workflowId maps to); nil skips the check.
    public var workflowsPartitionCount: Int?

    public enum NondeterminismPolicy: String, Sendable, CaseIterable {
        case park, fail
    }

    public init(maxConcurrency: Int = 50, claimLimit: Int = 50, outboxHighWater: Int = 20_000,
                maxMessageBytes: Int = 1 << 20, defaultRetry: RetryPolicy = .standard,
                replayBatchSize: Int = 64, recordBatchSize: Int = 256, executionCacheCapacity: Int = 20_000,
                retention: Duration? = .seconds(7 * 24 * 3600)) {
        self.maxConcurrency = max(1, maxConcurrency)
        self.claimLimit = max(1, claimLimit)
        self.outboxHighWater = max(1, outboxHighWater)
        self.maxMessageBytes = max(1, maxMessageBytes)
        self.defaultRetry = defaultRetry
        self.replayBatchSize = max(1, replayBatchSize)
        self.recordBatchSize = max(1, recordBatchSize)
        self.executionCacheCapacity = max(0, executionCacheCapacity)
        self.retention = retention.map { max(.zero, $0) }
    }
}
