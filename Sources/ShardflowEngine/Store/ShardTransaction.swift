import GRDB
import Logging

/// What a committed transaction asks of the shard's memory: which loops to wake, which kept workflow
/// bodies to keep or drop, and the executor's new epoch. Applied only after the commit; after a rollback
/// the touched bodies are terminated and the rest is dropped.
struct TransactionEffects {
    var replay = false
    var tasks = false
    var timers = false
    var outbox = false
    /// `resumeExecutors` committed: the executor claims at this epoch.
    var resumedEpoch: Int64?
    /// Input applied: each stream's next offset as this transaction leaves it.
    var consumed: [InboundMessage.Stream: Int64] = [:]
    /// The id of the last outbox row the transaction wrote (the output gate lets rows out up to an id).
    var lastOutboxId: Int64?
}

/// Workflow bodies a transaction advanced: those left waiting are kept once it commits; if it rolls
/// back, every one it touched is terminated (the store did not move on, so neither may they).
struct StagedExecutions {
    var kept: [(workflowId: String, entry: ExecutionCache.Entry)] = []
    var touched: [WorkflowExecution] = []
    /// Bodies that must not be resumed any more (canceled, parked or failed workflows); dropped from
    /// the cache at once and never taken by a later replay of this transaction.
    var evicted: Set<String> = []
}

/// The shard-wide sequences (event ids of completions and replay events).
struct ShardSequences: Equatable {
    var completion: Int64
    var replay: Int64
}

/// One write transaction of a shard's store: the connection, the time it runs at, the sequences it
/// takes, and everything it causes besides its rows (`effects`, `executions`). Every state change of a
/// shard goes through one; it exists only while its transaction runs.
///
/// The store commits what the body wrote together with the sequences it took: nothing of a transaction
/// outlives a rollback, so nothing has to be reset by hand.
final class ShardTransaction {
    let connection: StoreConnection
    /// The time the transaction runs at (milliseconds since 1970), one value for all it writes.
    let now: Int64
    let shard: Int
    let metrics: EngineMetrics
    let logger: Logger
    var effects = TransactionEffects()
    var executions = StagedExecutions()
    private(set) var sequences: ShardSequences
    private var sequencesTaken = false
    /// The shard's hints, raised inside the transaction (see `WorkSignals`).
    let signals: WorkSignals

    init(connection: StoreConnection, now: Int64, shard: Int, sequences: ShardSequences,
         metrics: EngineMetrics, logger: Logger, signals: WorkSignals) {
        self.connection = connection
        self.signals = signals
        self.now = now
        self.shard = shard
        self.sequences = sequences
        self.metrics = metrics
        self.logger = logger
    }

    // The statements of `StoreConnection`, on this transaction's connection.
    func run<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) throws {
        try connection.run(sql, repeat each values)
    }

    func rows<each Value: StoreBindable, T>(_ sql: StaticString, _ values: repeat each Value,
                                           as transform: (StoreRow) throws -> T) throws -> [T] {
        try connection.rows(sql, repeat each values, as: transform)
    }

    func row<each Value: StoreBindable, T>(_ sql: StaticString, _ values: repeat each Value,
                                          as transform: (StoreRow) throws -> T) throws -> T? {
        try connection.row(sql, repeat each values, as: transform)
    }

    func int<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) throws -> Int64? {
        try connection.int(sql, repeat each values)
    }

    func count<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) throws -> Int {
        try connection.count(sql, repeat each values)
    }

    /// Rows changed by the last insert, update or delete.
    var changes: Int { connection.changes }

    /// The next completion event's sequence number.
    func nextCompletionSequence() -> Int64 {
        sequencesTaken = true
        sequences.completion += 1
        return sequences.completion
    }

    /// The next replay event's sequence number.
    func nextReplaySequence() -> Int64 {
        sequencesTaken = true
        sequences.replay += 1
        return sequences.replay
    }

    /// Writes what the transaction keeps outside its rows' own statements; called by the store just
    /// before the commit.
    func finish() throws {
        // Taken in memory and written once per transaction instead of once per value.
        if sequencesTaken {
            try run("UPDATE shard_meta SET completionSeq = ?, replaySeq = ? WHERE id = 1",
                    sequences.completion, sequences.replay)
        }
    }
}
