import Foundation
import GRDB
import Logging
import Synchronization

/// One shard: the single writer of `<directory>/shard-NNN.sqlite`, with its replayer, executor and
/// timer loops. Every state change is one SQLite transaction that also writes what it causes (replay
/// rows, tasks, outbox messages), so a crash at any point leaves a consistent store.
public final class Shard: Sendable {
    public let shard: Int
    public let storePath: String
    let database: DatabaseQueue
    let lock: ShardLock
    let registry: WorkflowRegistry
    let configuration: ShardConfiguration
    let clock: any EngineClock
    let logger: Logger
    let metrics: EngineMetrics
    let runtime: Mutex<Runtime>
    /// Workflow bodies kept alive between steps; used only inside this shard's write transactions.
    let executions: ExecutionCache
    /// Where the crash guard records the workflow code that was running if the process dies in it.
    let crashFile: CrashRecordFile

    /// Wakes the work loop: a replay row, a task, a step result or a free outbox slot appeared.
    let workSignal = AsyncSignal()
    let timerSignal = AsyncSignal()
    let outboxSignal = AsyncSignal()
    let drainedSignal = AsyncSignal()
    /// Whether the replay queue / ready tasks may hold something, so the work loop skips empty
    /// transactions. Set after every commit that adds some (see `signal`), cleared by the loop just
    /// before the transaction that takes them: a row committed later sets it again.
    let replayHint = Atomic<Bool>(true)
    let claimHint = Atomic<Bool>(true)
    let sequences = Mutex(SequenceState())

    /// A step result waiting to be recorded.
    struct StepOutcome: Sendable {
        let workflowId: String
        let stepId: Int
        let name: String
        let attempt: Int
        let result: Result<String, StepError>
        let finishedAt: ContinuousClock.Instant
    }

    struct StepError: Error, Sendable {
        let message: String
        /// False when the step's error said another attempt cannot succeed (`StepFailureClassifying`).
        var retryable = true
        /// The step is not registered in this worker: its workflow is parked, the step not failed.
        var unregistered = false
    }

    struct TaskKey: Hashable, Sendable {
        let workflowId: String
        let stepId: Int
    }

    struct Runtime {
        var started = false
        var closing = false
        var closed = false
        /// The epoch the live executor claims at; nil when no executor runs.
        var executorEpoch: Int64?
        /// Running steps; the handle is nil between taking the slot and starting the task.
        var inFlight: [TaskKey: Task<Void, Never>?] = [:]
        var results: [StepOutcome] = []
        var loops: [Task<Void, Never>] = []
        var latencySink: LatencyRecorder?
    }

    private init(shard: Int, storePath: String, database: DatabaseQueue, lock: ShardLock, registry: WorkflowRegistry,
                 configuration: ShardConfiguration, clock: any EngineClock, logger: Logger, executorEpoch: Int64?,
                 crashFile: CrashRecordFile) {
        self.shard = shard
        self.crashFile = crashFile
        self.storePath = storePath
        self.database = database
        self.lock = lock
        self.registry = registry
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.metrics = EngineMetrics(shard: shard)
        self.executions = ExecutionCache(capacity: configuration.executionCacheCapacity)
        var runtime = Runtime()
        runtime.executorEpoch = executorEpoch
        self.runtime = Mutex(runtime)
    }

    /// The store file name of a shard: `shard-007.sqlite`.
    public static func storeFileName(shard: Int) -> String { "shard-\(paddedShard(shard)).sqlite" }
    static func lockFileName(shard: Int) -> String { "shard-\(paddedShard(shard)).lock" }
    static func crashFileName(shard: Int) -> String { "shard-\(paddedShard(shard)).crash" }
    private static func paddedShard(_ shard: Int) -> String {
        let text = String(shard)
        return text.count >= 3 ? text : String(repeating: "0", count: 3 - text.count) + text
    }

    /// Opens (creating if needed) the shard's store and takes its exclusive lock. Throws
    /// `ShardError.locked` while another owner holds it. Tasks claimed by a dead executor go back
    /// to the queue.
    public static func open(directory: String, shard: Int, registry: WorkflowRegistry,
                            configuration: ShardConfiguration = ShardConfiguration(),
                            clock: any EngineClock = SystemEngineClock(),
                            logger: Logger = Logger(label: "shardflow.engine")) async throws -> Shard {
        guard shard >= 0 else { throw ShardError.io("shard number must not be negative (got \(shard))") }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ShardError.io("cannot create data directory \(directory): \(error)")
        }
        let base = URL(fileURLWithPath: directory)
        let lock = try ShardLock(path: base.appendingPathComponent(lockFileName(shard: shard)).path, shard: shard)
        do {
            let path = base.appendingPathComponent(storeFileName(shard: shard)).path
            var config = Configuration()
            config.journalMode = .wal
            config.busyMode = .timeout(5)
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            let (database, executorEpoch, parked) = try openStore(path: path, configuration: config, shard: shard,
                                                                  registry: registry, now: clock.nowMilliseconds())
            var shardLogger = logger
            shardLogger[metadataKey: "shard"] = "\(shard)"
            // Read while holding the lock: no other owner can be running this shard's code now.
            let crashFile = CrashRecordFile(path: base.appendingPathComponent(crashFileName(shard: shard)).path)
            let crash = crashFile.take()
            let opened = Shard(shard: shard, storePath: path, database: database, lock: lock, registry: registry,
                               configuration: configuration, clock: clock, logger: shardLogger,
                               executorEpoch: executorEpoch, crashFile: crashFile)
            if parked.workflows > 0 {
                shardLogger.info("shard \(shard): \(parked.workflows) parked workflows are tried again (\(parked.tasks) parked steps requeued)")
            }
            if crash.unreadable { shardLogger.warning("shard \(shard): the crash record left by the last owner is unreadable; ignored") }
            if let record = crash.record { try opened.recordCrash(record) }
            return opened
        } catch {
            lock.release()
            throw error
        }
    }

    /// Opens and migrates the store; requeues tasks claimed by a dead executor, and tries parked
    /// workflows again with this worker's code.
    private static func openStore(path: String, configuration: Configuration, shard: Int, registry: WorkflowRegistry,
                                  now: Int64) throws -> (DatabaseQueue, Int64?, (workflows: Int, tasks: Int)) {
        let database = try DatabaseQueue(path: path, configuration: configuration)
        try StoreSchema.migrator().migrate(database)
        let (executorEpoch, parked): (Int64?, (workflows: Int, tasks: Int)) = try database.write { db in
            try db.run("INSERT OR IGNORE INTO shard_meta (id, shard) VALUES (1, ?)", shard)
            guard let meta = try StoreQueries.meta(db) else { throw ShardError.io("shard metadata is missing") }
            guard meta.shard == shard else { throw ShardError.shardMismatch(expected: shard, stored: meta.shard) }
            // Steps claimed by an executor that died run again (at least once).
            try db.run("UPDATE tasks SET state = 'queued', claimedEpoch = NULL WHERE state = 'running'")
            let parked = try retryParked(db, registry: registry, now: now)
            return (meta.executorEnabled ? meta.epoch : nil, parked)
        }
        return (database, executorEpoch, parked)
    }

    /// Starts the replayer, executor and timer loops.
    public func start() {
        let shouldStart = runtime.withLock { state -> Bool in
            guard !state.started && !state.closing else { return false }
            state.started = true
            return true
        }
        guard shouldStart else { return }
        var loops = [
            Task { await self.workLoop() },
            Task { await self.timerLoop() },
        ]
        if configuration.retention != nil { loops.append(Task { await self.retentionLoop() }) }
        runtime.withLock { $0.loops = loops }
    }

    /// Stops claiming, lets in-flight steps finish and record for up to `drainTimeout` (unfinished
    /// ones go back to the queue), and stops the loops. The store stays open, so the outbox can still be
    /// published and acknowledged; `close()` then releases it.
    public func stop(drainTimeout: Duration = .seconds(30)) async {
        let alreadyStopping = runtime.withLock { state -> Bool in
            let was = state.closing
            state.closing = true
            return was
        }
        guard !alreadyStopping else { return }
        workSignal.notify()
        timerSignal.notify()
        let deadline = ContinuousClock.now.advanced(by: drainTimeout)
        while runtime.withLock({ !$0.inFlight.isEmpty }) && ContinuousClock.now < deadline {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.drainedSignal.wait() }
                group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
                await group.next()
                group.cancelAll()
            }
        }
        let (loops, unfinished) = runtime.withLock { state in
            (state.loops, state.inFlight.values.compactMap { $0 })
        }
        for loop in loops { loop.cancel() }
        for loop in loops { await loop.value }
        for step in unfinished { step.cancel() }
        do {
            while try recordResults() > 0 {}
            try write { db in
                try db.run("UPDATE tasks SET state = 'queued', claimedEpoch = NULL WHERE state = 'running'")
            }
        } catch {
            logger.error("stopping shard: \(error)")
        }
        runtime.withLock { $0.results.removeAll() }
        executions.removeAll()
        outboxSignal.notify()
    }

    /// `stop(drainTimeout:)`, then closes the store and releases the lock.
    public func close(drainTimeout: Duration = .seconds(30)) async {
        await stop(drainTimeout: drainTimeout)
        let alreadyClosed = runtime.withLock { state -> Bool in
            let was = state.closed
            state.closed = true
            return was
        }
        guard !alreadyClosed else { return }
        do {
            try database.close()
        } catch {
            logger.error("closing shard store: \(error)")
        }
        lock.release()
        outboxSignal.notify()
    }

    var isClosing: Bool { runtime.withLock { $0.closing } }

    /// A write transaction, refused once the shard is closed.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        guard !runtime.withLock({ $0.closed }) else { throw ShardError.closed(shard: shard) }
        do {
            return try database.write { db in
                let value = try body(db)
                try flushSequences(db)
                return value
            }
        } catch {
            // Rolled back: sequence values taken in memory are void; reload them from the store.
            sequences.withLock { $0 = SequenceState() }
            throw error
        }
    }

    /// Shard-wide sequences (event ids) as taken by the running transaction, written to `shard_meta`
    /// once when it ends instead of once per value. Used only inside `write`, which the store's
    /// queue serializes.
    struct SequenceState {
        var values: [String: Int64] = [:]
        var dirty: Set<String> = []
    }

    private func flushSequences(_ db: Database) throws {
        let dirty: [(String, Int64)] = sequences.withLock { state in
            defer { state.dirty.removeAll() }
            return state.dirty.map { ($0, state.values[$0] ?? 0) }
        }
        for (column, value) in dirty {
            try db.run("UPDATE shard_meta SET \(column) = ? WHERE id = 1", value)
        }
    }

    /// A read on the owner's connection. Not `DatabaseQueue.read`: it toggles `PRAGMA query_only`,
    /// and every flag pragma expires all prepared statements, so each read would make every cached
    /// statement recompile at its next use. The queue serializes this with all writes, so the
    /// closure still sees one consistent state.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        guard !runtime.withLock({ $0.closed }) else { throw ShardError.closed(shard: shard) }
        return try database.unsafeRead(body)
    }

    // MARK: - offsets, outbox, stats

    /// Where ingest resumes per input stream (nil: nothing consumed yet).
    public func nextOffsets() throws -> (workflows: Int64?, control: Int64?) {
        try read { db in (try StoreQueries.nextOffset(db, .workflows), try StoreQueries.nextOffset(db, .control)) }
    }

    /// Outbox rows in id order.
    public func pendingOutbox(limit: Int = 1000) throws -> [OutboxRecord] {
        try read { db in
            try db.rows("SELECT id, topic, key, value FROM outbox ORDER BY id LIMIT ?", limit) { row -> OutboxRecord? in
                guard let topic = OutboxTopic(rawValue: row[1]) else { return nil }
                return OutboxRecord(id: row[0], topic: topic, key: row[2], value: row[3])
            }.compactMap { $0 }
        }
    }

    /// Deletes delivered outbox rows.
    public func acknowledgeOutbox(ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        // Acknowledged ids usually come as runs of consecutive ids (a publisher takes them in order):
        // one cached range delete per run. (An `IN (...)` list of varying length would be compiled
        // anew each time.)
        let sorted = ids.sorted()
        var runs: [(Int64, Int64)] = []
        for id in sorted {
            if let last = runs.last, id <= last.1 + 1 {
                runs[runs.count - 1].1 = max(last.1, id)
            } else {
                runs.append((id, id))
            }
        }
        try write { db in
            for (first, last) in runs {
                try db.run("DELETE FROM outbox WHERE id BETWEEN ? AND ?", first, last)
            }
        }
        workSignal.notify()
    }

    /// What became of an outbox row the broker refused for good.
    public enum RefusedOutboxOutcome: Sendable, Equatable {
        /// Replaced by a dead letter (bounded) that carries it and the reason.
        case deadLettered
        /// The row was a dead letter itself: dropped, since the dead-letter topic refuses it.
        case dropped
        /// The row was gone already.
        case missing
    }

    /// Takes out an outbox row the broker refused for good (too large for the topic, an invalid topic):
    /// retrying it would loop forever and block nothing but its own shard's shutdown. In one
    /// transaction the row leaves the outbox and a dead letter describing it takes its place
    /// (`sourceTopic` the topic it was meant for, `partition` the shard, `offset` the outbox row's id).
    public func replaceRefusedOutboxRow(id: Int64, topicName: String, error: String) throws -> RefusedOutboxOutcome {
        var effects = Effects()
        let outcome: RefusedOutboxOutcome = try write { db in
            guard let (topicText, key, value) = try db.row("SELECT topic, key, value FROM outbox WHERE id = ?", id,
                                                           as: { ($0[0] as String, $0[1] as String, $0[2] as [UInt8]) })
            else { return .missing }
            try db.run("DELETE FROM outbox WHERE id = ?", id)
            metrics.outboxRefused.increment()
            if topicText == OutboxTopic.deadLetters.rawValue { return .dropped }
            let letter = BoundedOutput.deadLetter(
                sourceTopic: topicName, partition: shard, offset: id, key: Array(key.utf8), value: value,
                error: "the broker refused this outbound message for good: \(error)", at: clock.nowMilliseconds())
            try appendOutbox(db, topic: .deadLetters, key: letter.key, value: letter.value, effects: &effects)
            return .deadLettered
        }
        signal(effects)
        switch outcome {
        case .deadLettered: logger.error("outbox row \(id) for \(topicName) refused by the broker for good (\(error)); replaced by a dead letter")
        case .dropped: logger.critical("dead letter (outbox row \(id)) refused by the broker for good (\(error)); dropped")
        case .missing: break
        }
        return outcome
    }

    /// Returns once the outbox holds at least one row (or the shard closes).
    public func waitForOutbox() async {
        while !Task.isCancelled {
            let hasRows = (try? read { db in try db.int("SELECT 1 FROM outbox LIMIT 1") != nil }) ?? true
            if hasRows || isClosing { return }
            await outboxSignal.wait()
        }
    }

    public func stats() throws -> ShardStats {
        try read { db in try StoreQueries.stats(db, shard: shard, executorState: executorState(db)) }
    }

    public func audit(outboxAgeLimit: Duration = .seconds(300)) throws -> AuditReport {
        let now = clock.nowMilliseconds()
        return try read { db in
            try StoreQueries.audit(db, shard: shard, concurrencyBound: configuration.maxConcurrency,
                                   outboxAgeLimit: outboxAgeLimit, now: now)
        }
    }

    public func workflowDetail(_ workflowId: String) throws -> WorkflowDetail? {
        try read { db in try StoreQueries.workflowDetail(db, workflowId: workflowId) }
    }

    /// Stuck, parked and recently failed workflows and retrying steps, at most `limit` of each.
    public func lists(limit: Int = 50) throws -> ShardLists {
        try read { db in try StoreQueries.lists(db, shard: shard, limit: limit) }
    }

    /// Running workflows with nothing queued, waiting or running and no replay row (I1 says none).
    public func stuckCount() throws -> Int {
        try read { db in try StoreQueries.stuckCount(db) }
    }

    private func executorState(_ db: Database) throws -> ExecutorState {
        let meta = try StoreQueries.meta(db)
        return runtime.withLock { state in
            if state.started && !state.closing, let epoch = state.executorEpoch, meta?.executorEnabled == true,
               meta?.epoch == epoch {
                return .running
            }
            return state.inFlight.isEmpty ? .stopped : .draining
        }
    }

    /// Wakes the loops that a committed change concerns.
    func signal(_ effects: Effects) {
        if effects.replay { replayHint.store(true, ordering: .releasing) }
        if effects.tasks { claimHint.store(true, ordering: .releasing) }
        if effects.replay || effects.tasks { workSignal.notify() }
        if effects.timers { timerSignal.notify() }
        if effects.outbox { outboxSignal.notify() }
    }

    /// What a transaction changed, so the right loops wake up after it commits.
    struct Effects {
        var replay = false
        var tasks = false
        var timers = false
        var outbox = false

        mutating func formUnion(_ other: Effects) {
            replay = replay || other.replay
            tasks = tasks || other.tasks
            timers = timers || other.timers
            outbox = outbox || other.outbox
        }
    }
}
