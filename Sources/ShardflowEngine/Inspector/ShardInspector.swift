import Foundation
import GRDB

/// Read-only view of a shard store, safe while a worker writes it (WAL readers take no lock and
/// never block the writer). For `shardflow inspect` and `shardflow check`.
public struct ShardInspector: Sendable {
    public let shard: Int
    private let database: DatabaseQueue
    /// Statements of the inspector's own connection (used only inside its queue's closures).
    private let statements = UnsafeTransfer(StatementCache())

    public init(directory: String, shard: Int) throws {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(Shard.storeFileName(shard: shard)).path
        guard FileManager.default.fileExists(atPath: path) else { throw ShardError.io("no store for shard \(shard) at \(path)") }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(5)
        self.shard = shard
        self.database = try DatabaseQueue(path: path, configuration: config)
    }

    /// The shard numbers that have a store in `directory`, ascending.
    public static func shards(in directory: String) throws -> [Int] {
        try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { name -> Int? in
            guard name.hasPrefix("shard-"), name.hasSuffix(".sqlite") else { return nil }
            return Int(name.dropFirst("shard-".count).dropLast(".sqlite".count))
        }.sorted()
    }

    /// Where this copy of the store stands against the shard's log (`.empty` for a store from before the log).
    public func logState() throws -> ShardLogLocalState {
        try read { db in
            try StoreQueries.logState(db)
        }
    }

    public func stats() throws -> ShardStats {
        try read { db in try StoreQueries.stats(db, shard: shard, executorState: nil) }
    }

    /// - Parameter outboxAgeLimit: an outbox row older than this is reported (its messages are not getting out).
    public func audit(concurrencyBound: Int = 50, outboxAgeLimit: Duration = .seconds(300)) throws -> AuditReport {
        let now = SystemEngineClock().nowMilliseconds()
        return try read { db in
            try StoreQueries.audit(db, shard: shard, concurrencyBound: concurrencyBound, outboxAgeLimit: outboxAgeLimit, now: now)
        }
    }

    public func workflow(_ workflowId: String) throws -> WorkflowDetail? {
        try read { db in try StoreQueries.workflowDetail(db, workflowId: workflowId) }
    }

    /// When each succeeded step was queued (its latest attempt) and recorded, in the store's Unix milliseconds:
    /// for `shardflow bench`, which splits a step's time around its LLM call.
    public func stepTimings() throws -> [StepTiming] {
        try read { db in
            try db.rows("""
                SELECT workflowId, seq, attempts, enqueuedAt, completedAt FROM journal
                WHERE kind = 'step' AND status = 'succeeded' AND enqueuedAt IS NOT NULL AND completedAt IS NOT NULL
                """, as: { StepTiming(workflowId: $0[0], stepId: $0[1], attempts: $0[2], enqueuedAt: $0[3], completedAt: $0[4]) })
        }
    }

    private func read<T>(_ body: (StoreConnection) throws -> T) throws -> T {
        try database.read { db in try body(StoreConnection(db: db, cache: statements.value)) }
    }
}

/// A succeeded step's times in its store (`ShardInspector.stepTimings()`).
public struct StepTiming: Sendable, Equatable {
    public var workflowId: String
    public var stepId: Int
    public var attempts: Int
    /// When its latest attempt was queued.
    public var enqueuedAt: Int64
    /// When its result was recorded.
    public var completedAt: Int64

    public init(workflowId: String, stepId: Int, attempts: Int, enqueuedAt: Int64, completedAt: Int64) {
        self.workflowId = workflowId
        self.stepId = stepId
        self.attempts = attempts
        self.enqueuedAt = enqueuedAt
        self.completedAt = completedAt
    }
}
