import Foundation
import GRDB
import Logging
import Synchronization

/// One shard: the single writer of `<directory>/shard-NNN.sqlite`. A thin composition of its parts:
///
/// - `ShardStore`: the SQLite store; every state change is one `ShardTransaction` that also writes
///   what it causes (replay rows, tasks, outbox messages), so a crash at any point leaves a consistent store;
/// - `ShardExecutor`: claims, in-flight steps, their results and the epoch;
/// - `ShardReplayer`: workflow code and the bodies kept alive between steps;
/// - `WorkSignals`: the "there may be work" hints and the signals that wake the loops;
/// - `ShardLifecycle`: opened, running, stopping, stopped, closed.
public final class Shard: Sendable {
    public let shard: Int
    public var storePath: String { store.path }
    let store: ShardStore
    let executor: ShardExecutor
    let replayer: ShardReplayer
    let signals: WorkSignals
    let configuration: ShardConfiguration
    let clock: any EngineClock
    let logger: Logger
    let metrics: EngineMetrics
    private let lifecycleState: Mutex<ShardLifecycle>
    /// Where the benchmark collects the time from a step's end to its successor's scheduling.
    let schedulingLatency = Mutex<LatencyRecorder?>(nil)

    private init(store: ShardStore, registry: WorkflowRegistry, configuration: ShardConfiguration, clock: any EngineClock,
                 logger: Logger, metrics: EngineMetrics, signals: WorkSignals, crashSites: CrashSites, executorEpoch: Int64?) {
        self.shard = store.shard
        self.store = store
        self.signals = signals
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.executor = ShardExecutor(shard: store.shard, configuration: configuration, registry: registry, metrics: metrics,
                                      logger: logger, signals: signals, crashSites: crashSites, epoch: executorEpoch)
        self.replayer = ShardReplayer(registry: registry, configuration: configuration, crashSites: crashSites,
                                      metrics: metrics, logger: logger)
        self.lifecycleState = Mutex(ShardLifecycle(shard: store.shard))
    }

    /// The store file name of a shard: `shard-007.sqlite`.
    public static func storeFileName(shard: Int) -> String { ShardFiles.storeFileName(shard: shard) }

    /// Opens (creating if needed) the shard's store and takes its exclusive lock. Throws
    /// `ShardError.locked` while another owner holds it. Tasks claimed by a dead executor go back
    /// to the queue, and parked workflows are tried again with this worker's code.
    public static func open(directory: String, shard: Int, registry: WorkflowRegistry,
                            configuration: ShardConfiguration = ShardConfiguration(),
                            clock: any EngineClock = SystemEngineClock(),
                            logger: Logger = Logger(label: "shardflow.engine")) async throws -> Shard {
        guard shard >= 0 else { throw ShardError.io("shard number must not be negative (got \(shard))") }
        var shardLogger = logger
        shardLogger[metadataKey: "shard"] = "\(shard)"
        let metrics = EngineMetrics(shard: shard)
        let signals = WorkSignals()
        let store = try ShardStore(directory: directory, shard: shard, metrics: metrics, logger: shardLogger, signals: signals)
        return try open(store: store, directory: directory, registry: registry, configuration: configuration, clock: clock,
                        logger: shardLogger, metrics: metrics, signals: signals)
    }

    /// Opens a shard whose store `restored` brought up to date from the shard's log; from now on every
    /// transaction goes to the log (`writing`), and outbox messages wait for their records' confirmation
    /// (`confirmLog(through:)`). The restore's store becomes the shard's.
    public static func open(restored: ShardRestore, writing: ShardLogWriting, registry: WorkflowRegistry,
                            configuration: ShardConfiguration = ShardConfiguration(),
                            clock: any EngineClock = SystemEngineClock()) async throws -> Shard {
        let store = try restored.takeStore()
        do {
            let local = try store.localLogState()
            try store.startLog(writing, lastSeq: local.lastSeq)
        } catch {
            store.close()
            throw error
        }
        return try open(store: store, directory: restored.directory, registry: registry, configuration: configuration,
                        clock: clock, logger: restored.logger, metrics: restored.metrics, signals: restored.signals)
    }

    private static func open(store: ShardStore, directory: String, registry: WorkflowRegistry,
                             configuration: ShardConfiguration, clock: any EngineClock, logger shardLogger: Logger,
                             metrics: EngineMetrics, signals: WorkSignals) throws -> Shard {
        let shard = store.shard
        do {
            let meta = try store.read { try StoreQueries.meta($0) }
            // Read while holding the lock: no other owner can be running this shard's code now.
            let crashFile = CrashRecordFile(path: URL(fileURLWithPath: directory)
                .appendingPathComponent(ShardFiles.crashFileName(shard: shard)).path)
            let crash = crashFile.take()
            let opened = Shard(store: store, registry: registry, configuration: configuration, clock: clock, logger: shardLogger,
                               metrics: metrics, signals: signals,
                               crashSites: CrashSites(file: crashFile, enabled: configuration.crashAttribution),
                               executorEpoch: meta.flatMap { $0.executorEnabled ? $0.epoch : nil })
            // Most shards never store an event: completions then skip their look for leftover ones.
            if try store.read({ try $0.int("SELECT 1 FROM events LIMIT 1") }) == nil { _ = signals.storedEvents.take() }
            let parked = try opened.transaction { tx in
                // Steps claimed by an executor that died run again (at least once).
                try tx.run("UPDATE journal SET taskState = 'queued', claimedEpoch = NULL WHERE taskState = 'running'")
                return try opened.replayer.retryParked(tx)
            }
            if parked.workflows > 0 {
                shardLogger.info("shard \(shard): \(parked.workflows) parked workflows are tried again (\(parked.tasks) parked steps requeued)")
            }
            if crash.unreadable { shardLogger.warning("shard \(shard): the crash record left by the last owner is unreadable; ignored") }
            if let record = crash.record { try opened.recordCrash(record) }
            return opened
        } catch {
            store.close()
            throw error
        }
    }

    // MARK: lifecycle

    var lifecycle: ShardLifecycle { lifecycleState.withLock { $0 } }

    /// Starts the work, timer and retention loops. Throws `ShardError.illegalTransition` unless the
    /// shard was just opened (a stopped shard is not started again: open it anew).
    public func start() throws {
        try lifecycleState.withLock { lifecycle in
            try lifecycle.start {
                var loops = [
                    Task { await self.workLoop() },
                    Task { await self.timerLoop() },
                ]
                if configuration.retention != nil { loops.append(Task { await self.retentionLoop() }) }
                return loops
            }
        }
    }

    /// Stops claiming, lets in-flight steps finish and record for up to `drainTimeout` (unfinished
    /// ones go back to the queue), and stops the loops. The store stays open, so the outbox can still be
    /// published and acknowledged; `close()` then releases it. A second stop returns at once.
    public func stop(drainTimeout: Duration = .seconds(30)) async {
        guard case .drain(let loops) = lifecycleState.withLock({ $0.stop() }) else { return }
        signals.work.notify()
        signals.timers.notify()
        let deadline = ContinuousClock.now.advanced(by: drainTimeout)
        while !executor.isDrained && ContinuousClock.now < deadline {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.signals.drained.wait() }
                group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
                await group.next()
                group.cancelAll()
            }
        }
        for loop in loops { loop.cancel() }
        for loop in loops { await loop.value }
        executor.cancelUnfinished()
        do {
            while try recordResults() > 0 {}
            try transaction { tx in
                try tx.run("UPDATE journal SET taskState = 'queued', claimedEpoch = NULL WHERE taskState = 'running'")
            }
        } catch {
            logger.error("stopping shard: \(error)")
        }
        executor.refuseResults()
        replayer.removeAll()
        do {
            try lifecycleState.withLock { try $0.stopped() }
        } catch {
            logger.error("\(error)")
        }
        signals.outbox.notify()
    }

    /// `stop(drainTimeout:)`, then closes the store and releases the lock.
    public func close(drainTimeout: Duration = .seconds(30)) async {
        await stop(drainTimeout: drainTimeout)
        let action: ShardLifecycle.CloseAction
        do {
            action = try lifecycleState.withLock { try $0.close() }
        } catch {
            // A concurrent stop is still draining: the store stays open until it has.
            logger.error("\(error)")
            return
        }
        guard case .closeStore = action else { return }
        store.close()
        signals.outbox.notify()
    }

    /// Whether the loops have been told to stop (or never ran).
    var isClosing: Bool { !lifecycle.isRunning }

    // MARK: transactions

    /// A write transaction: the store commits it, then its effects reach memory (kept bodies, the
    /// executor's epoch, the loops' wake-ups); a rollback terminates the bodies it touched.
    @discardableResult
    func transaction<T>(_ body: (ShardTransaction) throws -> T) throws -> T {
        let (value, committed) = try store.transaction(now: clock.nowMilliseconds(), rolledBack: { failed in
            replayer.rolledBack(failed.executions)
        }, body)
        replayer.committed(committed.executions)
        if let epoch = committed.effects.resumedEpoch { executor.resume(at: epoch) }
        signals.wake(committed.effects)
        return value
    }

    // MARK: offsets, outbox, stats

    /// The workflows stream's next offset as far as the shard log has confirmed it (nil: none yet): what
    /// the group may commit, since any later owner's restored store has applied at least that much.
    public var durableWorkflowsOffset: Int64? { store.durableOffsets[.workflows] }

    /// Where ingest resumes per input stream (nil: nothing consumed yet).
    public func nextOffsets() throws -> (workflows: Int64?, control: Int64?) {
        try store.read { db in (try StoreQueries.nextOffset(db, .workflows), try StoreQueries.nextOffset(db, .control)) }
    }

    /// Outbox rows in id order, of transactions the shard log has confirmed (the output gate: nothing goes
    /// out before the state that produced it is durable in Kafka). A row whose topic this version does not
    /// know is replaced by a dead letter that says so (it would otherwise never be delivered).
    public func pendingOutbox(limit: Int = 1000) throws -> [OutboxRecord] {
        var unknown: [(id: Int64, topic: String)] = []
        let gate = store.outboxGate
        let records = try store.read { db in
            try db.rows("SELECT id, topic, key, value FROM outbox WHERE id <= ? ORDER BY id LIMIT ?", gate, limit) { row -> OutboxRecord? in
                guard let topic = OutboxTopic(rawValue: row[1]) else {
                    unknown.append((row[0], row[1]))
                    return nil
                }
                return OutboxRecord(id: row[0], topic: topic, key: row[2], value: row[3])
            }.compactMap { $0 }
        }
        guard !unknown.isEmpty else { return records }
        for row in unknown {
            metrics.outboxUndecodable.increment()
            let unknown = StoreDecodingError(column: OutboxTopic.storeColumn, value: row.topic).description
            _ = try replaceOutboxRow(id: row.id, topicName: row.topic, error: unknown,
                                     reason: "this worker cannot publish an outbox row it cannot read: \(unknown)")
        }
        // Read again: the dead letters that replaced them are due now too.
        return try pendingOutbox(limit: limit)
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
        try transaction { tx in
            for (first, last) in runs {
                try tx.run("DELETE FROM outbox WHERE id BETWEEN ? AND ?", first, last)
            }
        }
        signals.work.notify()
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
        try replaceOutboxRow(id: id, topicName: topicName, error: error,
                             reason: "the broker refused this outbound message for good: \(error)")
    }

    private func replaceOutboxRow(id: Int64, topicName: String, error: String, reason: String) throws -> RefusedOutboxOutcome {
        let outcome: RefusedOutboxOutcome = try transaction { tx in
            guard let (topicText, key, value) = try tx.row("SELECT topic, key, value FROM outbox WHERE id = ?", id,
                                                           as: { ($0[0] as String, $0[1] as String, $0[2] as [UInt8]) })
            else { return .missing }
            try tx.run("DELETE FROM outbox WHERE id = ?", id)
            metrics.outboxRefused.increment()
            if topicText == OutboxTopic.deadLetters.rawValue { return .dropped }
            let letter = BoundedOutput.deadLetter(
                sourceTopic: topicName, partition: shard, offset: id, key: Array(key.utf8), value: value,
                error: reason, at: tx.now)
            try tx.appendOutbox(topic: .deadLetters, key: letter.key, value: letter.value)
            return .deadLettered
        }
        switch outcome {
        case .deadLettered: logger.error("outbox row \(id) for \(topicName): \(reason); replaced by a dead letter")
        case .dropped: logger.critical("dead letter (outbox row \(id)): \(reason); dropped")
        case .missing: break
        }
        return outcome
    }

    /// The shard log holds this shard's transactions up to `seq` (read back, valid): their outbox
    /// messages may go out.
    public func confirmLog(through seq: Int64) {
        store.confirmLog(through: seq)
        signals.outbox.notify()
    }

    /// Where this copy of the store stands against the shard's log.
    public func localLogState() throws -> ShardLogLocalState { try store.localLogState() }

    /// The seq of the last transaction handed to the shard log, from memory (a gauge reads it per batch).
    public var loggedSeq: Int64 { store.loggedSeq }

    /// Writes a consistent copy of the store to `path` for a snapshot; returns what the copy holds
    /// (transactions up to its `lastSeq`). The shard goes on meanwhile.
    public func writeSnapshot(to path: String) throws -> ShardLogLocalState { try store.writeSnapshot(to: path) }

    /// Remembers that the log up to `position` is in this store (the owner read it back), so a later
    /// open reads on from there.
    public func recordLogCheckpoint(_ position: ShardLogPosition) throws { try store.writeLogCheckpoint(position) }

    /// Returns once the outbox holds at least one row the gate lets out (or the shard closes).
    public func waitForOutbox() async {
        while !Task.isCancelled {
            let gate = store.outboxGate
            let hasRows = (try? store.read { db in try db.int("SELECT 1 FROM outbox WHERE id <= ? LIMIT 1", gate) != nil }) ?? true
            if hasRows || isClosing { return }
            await signals.outbox.wait()
        }
    }

    // MARK: monitoring reads (the read-only connection: they never hold up the writer)

    public func stats() throws -> ShardStats {
        let state = executorState()
        return try store.monitorRead { db in try StoreQueries.stats(db, shard: shard, executorState: state) }
    }

    public func audit(outboxAgeLimit: Duration = .seconds(300)) throws -> AuditReport {
        let now = clock.nowMilliseconds()
        return try store.monitorRead { db in
            try StoreQueries.audit(db, shard: shard, concurrencyBound: configuration.maxConcurrency,
                                   outboxAgeLimit: outboxAgeLimit, now: now)
        }
    }

    public func workflowDetail(_ workflowId: String) throws -> WorkflowDetail? {
        try store.monitorRead { db in try StoreQueries.workflowDetail(db, workflowId: workflowId) }
    }

    /// Stuck, parked and recently failed workflows and retrying steps, at most `limit` of each.
    public func lists(limit: Int = 50) throws -> ShardLists {
        try store.monitorRead { db in try StoreQueries.lists(db, shard: shard, limit: limit) }
    }

    /// Running workflows with nothing queued, waiting or running and no replay row (I1 says none).
    public func stuckCount() throws -> Int {
        try store.monitorRead { db in try StoreQueries.stuckCount(db) }
    }

    /// Statements the store's writer has run since it opened (a benchmark figure).
    public var statementsExecuted: Int { store.statementsExecuted }

    /// Transactions the store has committed since it opened (a benchmark figure).
    public var transactionsCommitted: Int { store.transactionsCommitted }

    /// Collects, for each step result, the time from its end to its successor's scheduling.
    public func recordSchedulingLatency(into recorder: LatencyRecorder?) {
        schedulingLatency.withLock { $0 = recorder }
    }

    /// The executor as operators see it. (The store's flags are read on the monitoring connection,
    /// which may lag the writer by the transaction that is committing.)
    private func executorState() -> ExecutorState {
        let epoch = executor.epoch
        let meta = (try? store.monitorRead { db in try StoreQueries.meta(db) }) ?? nil
        if lifecycle.isRunning, let epoch, meta?.executorEnabled == true, meta?.epoch == epoch {
            return .running
        }
        return executor.isDrained ? .stopped : .draining
    }
}
