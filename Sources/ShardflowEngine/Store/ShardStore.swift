import ShardflowSupport
import Foundation
import GRDB
import Logging
import Synchronization

/// A shard's SQLite store: the one writer connection (all transactions, through `ShardTransaction`), a
/// read-only connection for monitoring (WAL lets it read while the writer writes), and the lock file that
/// makes this process the store's only owner.
///
/// With a shard log (`startLog`), every transaction's writes are captured (`RedoCapture`) and
/// handed to the log's sink in commit order, and the outbox gate opens for a transaction's messages only
/// once its record is confirmed in the log (`confirmLog`). Without one, the gate is always open.
final class ShardStore: Sendable {
    let shard: Int
    let path: String
    private let writer: DatabaseQueue
    private let monitor: DatabaseQueue
    let lock: ShardLock
    private let metrics: EngineMetrics
    private let logger: Logger
    private let signals: WorkSignals
    private let state: Mutex<State>
    /// Statement caches of the two connections; each is used only on its connection's queue.
    private let writerStatements: UnsafeTransfer<StatementCache>
    private let monitorStatements: UnsafeTransfer<StatementCache>

    private struct State {
        var closed = false
        /// The sequences as last committed; a transaction starts from them.
        var sequences: ShardSequences
        /// Transactions committed since the store opened (a benchmark figure).
        var committed = 0
        /// Set once the shard writes a log.
        var log: LogWriter?
        /// The output gate: outbox rows up to this id are of transactions the log confirmed (no log: all).
        /// Outbox ids grow with commit order, so one bound says it and the publisher's read stays a range.
        var outboxGate: Int64 = .max
        /// What committed transactions not confirmed yet will release, in seq order: their last outbox id
        /// and the input offsets they applied.
        var unconfirmed: [(seq: Int64, outboxId: Int64?, offsets: [InboundMessage.Stream: Int64])] = []
        /// Input offsets of confirmed transactions: what a store restored from the log has applied at least.
        var durableOffsets: [InboundMessage.Stream: Int64] = [:]
    }

    private struct LogWriter {
        let epoch: Int64
        let sink: any ShardLogSink
        var lastSeq: Int64
    }

    /// Opens (creating if needed) and migrates the store of `shard` under `directory`, holding its lock.
    /// Throws `ShardError.locked` while another owner holds it.
    init(directory: String, shard: Int, metrics: EngineMetrics, logger: Logger, signals: WorkSignals) throws {
        _ = SQLiteProcessSettings.applied
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ShardError.io("cannot create data directory \(directory): \(error)")
        }
        let base = URL(fileURLWithPath: directory)
        let lock = try ShardLock(path: base.appendingPathComponent(ShardFiles.lockFileName(shard: shard)).path, shard: shard)
        do {
            let path = base.appendingPathComponent(ShardFiles.storeFileName(shard: shard)).path
            var config = Configuration()
            config.journalMode = .wal
            config.busyMode = .timeout(5)
            config.prepareDatabase { db in
                // WAL with NORMAL sync: a commit is durable against a process crash at once and against a power
                // loss at the next checkpoint; each commit appends to the WAL without an fsync.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                // Checkpoints every 4,000 pages (16 MB of WAL) instead of 1,000: a hot page (the FIFO index,
                // shard_meta) is copied back once per checkpoint, not four times.
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 4000")
                // Pages are read through a memory map instead of a read() per page miss.
                try db.execute(sql: "PRAGMA mmap_size = 268435456")
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
            }
            let writer = try DatabaseQueue(path: path, configuration: config)
            try StoreSchema.migrator().migrate(writer)
            let statements = StatementCache()
            let sequences: ShardSequences = try writer.write { db in
                let connection = StoreConnection(db: db, cache: statements)
                try connection.run("INSERT OR IGNORE INTO shard_meta (id, shard) VALUES (1, ?)", shard)
                guard let stored = try connection.row("SELECT shard, completionSeq, replaySeq FROM shard_meta WHERE id = 1",
                                                      as: { ($0[0] as Int, ShardSequences(completion: $0[1], replay: $0[2])) })
                else { throw ShardError.io("shard metadata is missing") }
                guard stored.0 == shard else { throw ShardError.shardMismatch(expected: shard, stored: stored.0) }
                return stored.1
            }
            var monitorConfig = Configuration()
            monitorConfig.readonly = true
            monitorConfig.busyMode = .timeout(5)
            self.monitor = try DatabaseQueue(path: path, configuration: monitorConfig)
            self.shard = shard
            self.path = path
            self.writer = writer
            self.lock = lock
            self.metrics = metrics
            self.logger = logger
            self.signals = signals
            self.state = Mutex(State(sequences: sequences))
            self.writerStatements = UnsafeTransfer(statements)
            self.monitorStatements = UnsafeTransfer(StatementCache())
        } catch {
            lock.release()
            throw error
        }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Transactions committed since the store opened.
    var transactionsCommitted: Int { state.withLock { $0.committed } }

    /// Statements the writer connection has run since the store opened.
    var statementsExecuted: Int { writer.unsafeRead { _ in writerStatements.value.executed } }

    /// A write transaction at `now`, refused once the store is closed. Commits the body's rows, the
    /// sequences it took and what the change capture records, or none of it. Returns the body's value
    /// with the committed transaction, whose effects the caller applies; after a rollback `rolledBack`
    /// gets the transaction (to undo what it staged in memory) and the error is rethrown.
    func transaction<T>(now: Int64, rolledBack: (ShardTransaction) -> Void,
                        _ body: (ShardTransaction) throws -> T) throws -> (value: T, transaction: ShardTransaction) {
        // A closed connection answers SQLITE_MISUSE, not `closed`: refuse before touching it.
        guard !isClosed else { throw ShardError.closed(shard: shard) }
        var opened: ShardTransaction?
        do {
            let value = try writer.write { db -> T in
                // Read on the writer's queue, which runs one transaction at a time: no other one commits
                // sequences or takes a log seq in between.
                let start = state.withLock { $0.closed ? nil : (sequences: $0.sequences, log: $0.log) }
                guard let (sequences, log) = start else { throw ShardError.closed(shard: shard) }
                let capture = log.map { _ in RedoCapture() }
                let transaction = ShardTransaction(
                    connection: StoreConnection(db: db, cache: writerStatements.value, capture: capture), now: now, shard: shard,
                    sequences: sequences, metrics: metrics, logger: logger, signals: signals)
                opened = transaction
                let value = try body(transaction)
                try transaction.finish()
                var change: ShardLogChange?
                // A transaction that changed no row (a claim that found nothing) takes no seq.
                if let log, let capture, !capture.isEmpty {
                    let seq = log.lastSeq + 1
                    // Not captured: where this copy stands is its own (`shard_log_state` is never logged).
                    try StoreConnection(db: db, cache: writerStatements.value)
                        .run("UPDATE shard_log_state SET lastSeq = ?, writerEpoch = ? WHERE id = 1", seq, log.epoch)
                    change = ShardLogChange(epoch: log.epoch, seq: seq, redo: capture.bytes)
                }
                // Once committed, still on the writer's queue: the log sink gets changes in commit order.
                let committed = (sequences: transaction.sequences, consumed: transaction.effects.consumed,
                                 outboxId: transaction.effects.lastOutboxId)
                db.afterNextTransaction(onCommit: { [self, change] _ in
                    self.committed(sequences: committed.sequences, change: change, consumed: committed.consumed,
                                   outboxId: committed.outboxId)
                })
                return value
            }
            guard let committed = opened else { throw ShardError.io("transaction body did not run") }
            return (value, committed)
        } catch {
            if let opened { rolledBack(opened) }
            throw error
        }
    }

    /// A transaction committed: its sequences and log seq become the store's, its change goes to the log.
    private func committed(sequences: ShardSequences, change: ShardLogChange?, consumed: [InboundMessage.Stream: Int64],
                           outboxId: Int64?) {
        let sink = state.withLock { state -> (any ShardLogSink)? in
            state.sequences = sequences
            state.committed += 1
            guard state.log != nil else {
                state.durableOffsets.merge(consumed) { max($0, $1) }
                return nil
            }
            guard let change else { return nil }
            state.log?.lastSeq = change.seq
            if outboxId != nil || !consumed.isEmpty { state.unconfirmed.append((change.seq, outboxId, consumed)) }
            return state.log?.sink
        }
        if let change, let sink {
            metrics.logBytes.increment(by: change.redo.count)
            sink.append(change)
        }
    }

    // MARK: the shard log

    /// Where this copy of the store stands against the shard's log.
    func localLogState() throws -> ShardLogLocalState {
        try read { db in
            try StoreQueries.logState(db)
        }
    }

    /// Records where the store stands (outside the log: each copy has its own).
    func writeLogState(_ local: ShardLogLocalState) throws {
        guard !isClosed else { throw ShardError.closed(shard: shard) }
        try writer.write { db in
            try StoreConnection(db: db, cache: writerStatements.value).run("""
                UPDATE shard_log_state SET checkpointOffset = ?, checkpointEpoch = ?, checkpointSeq = ?, lastSeq = ?,
                    writerEpoch = ? WHERE id = 1
                """, local.checkpoint.offset, local.checkpoint.epoch, local.checkpoint.seq, local.lastSeq, local.writerEpoch)
        }
    }

    /// Moves the checkpoint forward (the owner read its own transactions back up to `position`).
    func writeLogCheckpoint(_ position: ShardLogPosition) throws {
        guard !isClosed else { throw ShardError.closed(shard: shard) }
        try writer.write { db in
            try StoreConnection(db: db, cache: writerStatements.value).run("""
                UPDATE shard_log_state SET checkpointOffset = ?, checkpointEpoch = ?, checkpointSeq = ?
                WHERE id = 1 AND checkpointOffset < ?
                """, position.offset, position.epoch, position.seq, position.offset)
        }
    }

    /// Replays changes read from the log (restoring), in one transaction, uncaptured. Throws
    /// `ShardError.logDoesNotReplay` when a statement fails: this copy's rows are not the writer's.
    func applyLogChanges(_ changes: [ShardLogChange]) throws {
        guard !changes.isEmpty else { return }
        guard !isClosed else { throw ShardError.closed(shard: shard) }
        do {
            try writer.write { db in
                for change in changes {
                    try RedoReplay.apply(change.redo, seq: change.seq, on: db, cache: writerStatements.value)
                }
                if let last = changes.last {
                    try StoreConnection(db: db, cache: writerStatements.value)
                        .run("UPDATE shard_log_state SET lastSeq = ? WHERE id = 1", last.seq)
                }
            }
        } catch let error as RedoReplayError {
            throw ShardError.logDoesNotReplay(shard: shard, reason: error.description)
        }
        // What was applied may include sequences (shard_meta).
        let sequences = try read { db in
            try db.row("SELECT completionSeq, replaySeq FROM shard_meta WHERE id = 1") { ShardSequences(completion: $0[0], replay: $0[1]) }
        }
        if let sequences { state.withLock { $0.sequences = sequences } }
    }

    /// From now on every transaction goes to the log as `writing.epoch`'s, after `lastSeq`; outbox
    /// messages of transactions up to `lastSeq` (restored, so in the log already) may go out.
    func startLog(_ writing: ShardLogWriting, lastSeq: Int64) throws {
        let (offsets, lastOutboxId) = try read { db in
            (try db.rows("SELECT stream, nextOffset FROM consumed_offsets") { row in
                (try row.decode(0, as: InboundMessage.Stream.self), row[1] as Int64)
            }, try db.int("SELECT MAX(id) FROM outbox") ?? 0)
        }
        state.withLock { state in
            state.log = LogWriter(epoch: writing.epoch, sink: writing.sink, lastSeq: lastSeq)
            // What the store holds now is the log's (restored): it may go out.
            state.outboxGate = lastOutboxId
            state.durableOffsets = Dictionary(offsets) { max($0, $1) }
            state.unconfirmed = []
        }
    }

    /// The log has this store's transactions up to `seq`: their outbox messages may go out, and the
    /// input they applied is applied for good.
    func confirmLog(through seq: Int64) {
        state.withLock { state in
            let done = state.unconfirmed.prefix { $0.seq <= seq }
            guard !done.isEmpty else { return }
            for entry in done {
                state.durableOffsets.merge(entry.offsets) { max($0, $1) }
                if let id = entry.outboxId { state.outboxGate = max(state.outboxGate, id) }
            }
            state.unconfirmed.removeFirst(done.count)
        }
    }

    /// Each input stream's next offset as far as the shard log has confirmed it (without a log: as
    /// committed). Any later owner's store has applied at least this much.
    var durableOffsets: [InboundMessage.Stream: Int64] { state.withLock { $0.durableOffsets } }

    /// The seq of the last transaction handed to the log (0 without a log).
    var loggedSeq: Int64 { state.withLock { $0.log?.lastSeq ?? 0 } }

    /// The last outbox row that may be published (see `State.outboxGate`).
    var outboxGate: Int64 { state.withLock { $0.outboxGate } }

    /// Writes a consistent copy of the store to `path` (`VACUUM INTO` on the monitoring connection, so
    /// the writer goes on meanwhile) and returns the copy's log state: it holds transactions 1...lastSeq.
    func writeSnapshot(to path: String) throws -> ShardLogLocalState {
        guard !isClosed else { throw ShardError.closed(shard: shard) }
        try? FileManager.default.removeItem(atPath: path)
        // Not `read`: VACUUM cannot run inside the transaction a read opens.
        try monitor.unsafeRead { db in try db.execute(sql: "VACUUM INTO ?", arguments: [path]) }
        var configuration = Configuration()
        configuration.readonly = true
        let copy = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? copy.close() }
        let statements = StatementCache()
        defer { try? copy.unsafeRead { _ in statements.removeAll() } }
        return try copy.read { db in try StoreQueries.logState(StoreConnection(db: db, cache: statements)) }
    }

    /// A read on the writer's connection, serialized with every transaction (for what must see the
    /// writer's latest state: offsets, the outbox). Not `DatabaseQueue.read`: it toggles
    /// `PRAGMA query_only`, and every flag pragma expires all prepared statements.
    func read<T>(_ body: (StoreConnection) throws -> T) throws -> T {
        guard !isClosed else { throw ShardError.closed(shard: shard) }
        return try writer.unsafeRead { db in try body(StoreConnection(db: db, cache: writerStatements.value)) }
    }

    /// A read on the monitoring connection: never waits for, nor holds up, the writer (gauges, the
    /// console, audits). It sees the last committed state.
    func monitorRead<T>(_ body: (StoreConnection) throws -> T) throws -> T {
        guard !isClosed else { throw ShardError.closed(shard: shard) }
        return try monitor.read { db in try body(StoreConnection(db: db, cache: monitorStatements.value)) }
    }

    /// Closes both connections and releases the lock. Later transactions and reads throw `closed`.
    func close() {
        let wasClosed = state.withLock { state -> Bool in
            defer { state.closed = true }
            return state.closed
        }
        guard !wasClosed else { return }
        do {
            writer.unsafeRead { _ in writerStatements.value.removeAll() }
            monitor.unsafeRead { _ in monitorStatements.value.removeAll() }
            try monitor.close()
            try writer.close()
        } catch {
            logger.error("closing shard store: \(error)")
        }
        lock.release()
    }
}

/// A non-Sendable value handed between threads where something else serializes every use of it.
///
/// `@unchecked Sendable`: used only for a connection's `StatementCache`, which is touched only inside
/// that connection's `DatabaseQueue` closures, and the queue runs one closure at a time.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The files of a shard under its data directory.
enum ShardFiles {
    /// The store file name of a shard: `shard-007.sqlite`.
    static func storeFileName(shard: Int) -> String { "shard-\(String(zeroPadded: shard, width: 3)).sqlite" }
    static func lockFileName(shard: Int) -> String { "shard-\(String(zeroPadded: shard, width: 3)).lock" }
    static func crashFileName(shard: Int) -> String { "shard-\(String(zeroPadded: shard, width: 3)).crash" }
}
