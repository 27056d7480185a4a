import ShardflowSupport
import Foundation
import GRDB
import Logging

/// How a replay learns what is new for the workflow.
enum ReplaySource {
    /// Its replay-queue row, already taken by the caller's transaction, said why.
    case queued(ReplayTrigger)
    /// The caller has just recorded these step results in this transaction, with `round` already set to
    /// this replay's generation (see `StepResultPipeline`); a queued row for the workflow may exist too.
    case recorded([JournalEntry])

    var trigger: ReplayTrigger {
        switch self {
        case .queued(let trigger): return trigger
        case .recorded: return .step
        }
    }
}

/// The replayer: runs workflow bodies over their journals and writes what they asked for. It owns the
/// workflow code (the registry) and the bodies kept alive between steps (the execution cache).
final class ShardReplayer: Sendable {
    let registry: WorkflowRegistry
    private let configuration: ShardConfiguration
    private let executions: ExecutionCache
    private let crashSites: CrashSites
    let metrics: EngineMetrics
    let logger: Logger

    init(registry: WorkflowRegistry, configuration: ShardConfiguration, crashSites: CrashSites, metrics: EngineMetrics,
         logger: Logger) {
        self.registry = registry
        self.configuration = configuration
        self.executions = ExecutionCache(capacity: configuration.executionCacheCapacity)
        self.crashSites = crashSites
        self.metrics = metrics
        self.logger = logger
    }

    /// Replays the oldest `limit` replay-queue rows in the caller's transaction. Returns how many.
    func replayQueued(_ transaction: ShardTransaction, limit: Int) throws -> Int {
        // The rows go in the transaction that commits the replays (I1). (No RETURNING: this SQLite
        // recompiles a RETURNING statement at every run, which costs more than a second statement.)
        // Each row with its workflow's: a replay without a kept body starts from it, sparing a load per
        // workflow. (A replay writes only its own workflow's row, so the others' stay as read.)
        let rows = try transaction.rows("""
            SELECT q.rowid, q.workflowId, q.trigger,
                   w.id, w.name, w.args, w.createdAt, w.startedAt, w.status, w.generation, w.version, w.parkedReason
            FROM replay_queue q LEFT JOIN workflows w ON w.id = q.workflowId ORDER BY q.rowid LIMIT ?
            """, limit) { row in
            (rowid: row[0] as Int64, workflowId: row[1] as String, trigger: Result { try row.decode(2, as: ReplayTrigger.self) },
             workflow: Result { row.isNull(3) ? nil : try WorkflowRow(row, from: 3) })
        }
        guard let last = rows.last else { return 0 }
        // The batch is the rows with the smallest rowids, so one range delete takes exactly them.
        try transaction.run("DELETE FROM replay_queue WHERE rowid <= ?", last.rowid)
        for (_, workflowId, trigger, workflow) in rows {
            switch trigger {
            case .success(let trigger):
                _ = try replay(transaction, workflowId: workflowId, source: .queued(trigger), loaded: workflow)
            case .failure(let error as StoreDecodingError):
                try failUnreadable(transaction, workflowId: workflowId, error)
            case .failure(let error):
                throw error
            }
        }
        return rows.count
    }

    /// After a commit: keeps the bodies left waiting, drops the evicted ones.
    func committed(_ staged: StagedExecutions) {
        for workflowId in staged.evicted { executions.evict(workflowId) }
        executions.keep(staged.kept)
    }

    /// After a rollback: every body the transaction touched is terminated.
    func rolledBack(_ staged: StagedExecutions) {
        for execution in staged.touched { execution.terminate() }
        for workflowId in staged.evicted { executions.evict(workflowId) }
    }

    /// Drops a kept body (its workflow will not be resumed with it): not taken again in this
    /// transaction, and out of the cache once it ends.
    func evict(_ transaction: ShardTransaction, _ workflowId: String) {
        transaction.executions.evicted.insert(workflowId)
    }

    /// Drops every kept body (the shard stops).
    func removeAll() { executions.removeAll() }

    var cachedExecutions: Int { executions.count }
    var cacheCounters: ExecutionCache.Counters { executions.counters }

    /// Replays one workflow: resumes its kept execution when the cache has the one for the current
    /// generation, else replays the body over the whole journal. Returns whether it scheduled new steps.
    /// - Parameter loaded: the workflow's row as this transaction read it (nil: the replay loads it).
    func replay(_ transaction: ShardTransaction, workflowId: String, source: ReplaySource,
                loaded: Result<WorkflowRow?, any Error>? = nil) throws -> Bool {
        do {
            return try replayReadable(transaction, workflowId: workflowId, source: source, loaded: loaded)
        } catch let unreadable as StoreDecodingError {
            try failUnreadable(transaction, workflowId: workflowId, unreadable)
            return false
        }
    }

    /// A workflow whose stored rows hold a value this version does not know (written by a newer version,
    /// or damaged) is failed with the reason instead of being read as something else, or blocking its
    /// shard's transactions: what the failed replay wrote is superseded by the completion.
    func failUnreadable(_ tx: ShardTransaction, workflowId: String, _ error: StoreDecodingError) throws {
        for execution in tx.executions.touched where execution.context.workflowId == workflowId { execution.terminate() }
        tx.executions.kept.removeAll { $0.workflowId == workflowId }
        evict(tx, workflowId)
        guard let row = try tx.row("SELECT id, name, args, createdAt, startedAt, generation, version FROM workflows WHERE id = ?",
                                   workflowId, as: { row in
            WorkflowRow(id: row[0], name: row[1], args: row[2], createdAt: row[3], startedAt: row[4], status: .running,
                        generation: row[5], version: row[6], parkedReason: nil)
        }) else { return }
        let message = "this worker cannot read the workflow's stored state (\(error)); it is failed rather than misread"
        logger.error("workflow \(workflowId): \(message)")
        try tx.completeWorkflow(row, status: .failed, result: nil, error: WorkflowErrorInfo(message: message, step: nil))
        try tx.appendReplayEvent(row, generation: row.generation, trigger: .operator, consumed: [], scheduled: [],
                                 outcome: .completed)
    }

    private func replayReadable(_ transaction: ShardTransaction, workflowId: String, source: ReplaySource,
                                loaded: Result<WorkflowRow?, any Error>?) throws -> Bool {
        let tx = transaction
        let trigger = source.trigger
        // The row goes in the same transaction that commits this replay's effects (I1).
        var recorded: [JournalEntry]?
        var otherTrigger: Bool
        switch source {
        case .queued:
            otherTrigger = true
        case .recorded(let entries):
            recorded = entries
            otherTrigger = false
            // A clear hint means the queue is empty: every insert raises it inside its own transaction,
            // and the work loop takes it only before a transaction that takes the queued rows.
            if tx.signals.replay.isRaised {
                try tx.run("DELETE FROM replay_queue WHERE workflowId = ?", workflowId)
                otherTrigger = tx.changes > 0
            }
        }
        var cached = tx.executions.evicted.contains(workflowId) ? nil : executions.take(workflowId)
        if let cached { tx.executions.touched.append(cached.execution) }
        let workflow: WorkflowRow
        if let entry = cached {
            // Still running at the generation the body last ran at? (One statement instead of a load.)
            try tx.run("UPDATE workflows SET generation = ? WHERE id = ? AND status = 'running' AND generation = ?",
                       entry.generation + 1, workflowId, entry.generation)
            if tx.changes == 1 {
                var row = entry.workflow
                row.generation = entry.generation + 1
                workflow = row
            } else {
                entry.execution.terminate()
                cached = nil
                guard let loaded = try startGeneration(tx, workflowId, loaded: loaded) else { return false }
                workflow = loaded
            }
        } else {
            guard let loaded = try startGeneration(tx, workflowId, loaded: loaded) else { return false }
            workflow = loaded
        }
        let generation = workflow.generation
        guard let definition = registry.workflow(workflow.name, version: workflow.version) else {
            cached?.execution.terminate()
            try park(tx, workflow: workflow, reason: unregisteredReason(workflow), trigger: trigger)
            return false
        }

        let execution: WorkflowExecution
        let outcome: ReplayOutcome
        var consumed: [ReplayEvent.Consumed] = []
        // A fresh replay: whether its journal has pending entries (the body may not have re-issued them
        // all, e.g. after a determinism violation), and its steps.
        var journalHasPending = false
        var journalSteps: Int?
        if let cached {
            // The body has seen every round before this one: deliver only the results that arrived since.
            executions.count(hit: true)
            let entries: [JournalEntry]
            if let recorded, !otherTrigger {
                // Without a replay row nothing else resolved an entry since (every other writer of a
                // result queues one): the new results are exactly those just recorded.
                entries = recorded.sorted { $0.seq < $1.seq }
            } else {
                try tx.run("UPDATE journal SET round = ? WHERE workflowId = ? AND round IS NULL AND status <> 'pending'",
                           generation, workflowId)
                entries = try tx.rows("""
                    SELECT seq, kind, name, status, output, error, attempts, round, completedAt
                    FROM journal WHERE workflowId = ? AND round = ? ORDER BY seq
                    """, workflowId, generation, as: Self.journalEntry)
            }
            consumed = entries.map { .init(stepId: $0.seq, name: $0.name, status: $0.status.rawValue, attempts: $0.attempts) }
            execution = cached.execution
            outcome = execution.resume(with: entries)
        } else {
            executions.count(hit: false)
            var journal: [JournalEntry] = []
            var rounds: [Int: [Int]] = [:]
            var hasPending = false
            // Only a replay writes journal entries, and each starts a generation: the first one (a new
            // workflow's) has no journal to read.
            var entries: [JournalEntry] = []
            if generation > 1 {
                // Results that arrived since the last replay are delivered in this generation's round.
                try tx.run("UPDATE journal SET round = ? WHERE workflowId = ? AND round IS NULL AND status <> 'pending'",
                           generation, workflowId)
                entries = try tx.rows("""
                    SELECT seq, kind, name, status, output, error, attempts, round, completedAt
                    FROM journal WHERE workflowId = ? ORDER BY seq
                    """, workflowId, as: Self.journalEntry)
            }
            for entry in entries {
                journal.append(entry)
                // A patch marker is no operation: it is not delivered in a round (see `JournalEntry`).
                if entry.kind == .patch { continue }
                if let round = entry.round {
                    rounds[round, default: []].append(entry.seq)
                    if round == generation {
                        consumed.append(.init(stepId: entry.seq, name: entry.name, status: entry.status.rawValue, attempts: entry.attempts))
                    }
                } else {
                    hasPending = true
                }
            }
            // A start whose version was unknown where it was ingested had its args checked by nobody: the
            // version's own validation runs before its body first does.
            if workflow.parkedReason != nil && journal.isEmpty {
                do {
                    try definition.validateArgs(workflow.args)
                } catch {
                    let refused = WorkflowErrorInfo(message: "args do not match workflow \(workflow.name) version \(workflow.version): \(error)", step: nil)
                    try tx.completeWorkflow(workflow, status: .failed, result: nil, error: refused)
                    try tx.appendReplayEvent(workflow, generation: generation, trigger: trigger, consumed: [],
                                             scheduled: [], outcome: .completed)
                    return false
                }
            }
            let context = WorkflowContext(
                workflowId: workflowId, workflowName: workflow.name, workflowVersion: workflow.version, registry: registry,
                defaultRetry: definition.retry ?? configuration.defaultRetry, journal: journal, startedAt: workflow.startedAt)
            execution = WorkflowExecution(definition: definition, context: context, args: workflow.args,
                                          crashSite: crashSites.site(CrashSubject(kind: .body, workflowId: workflowId, stepId: nil)))
            tx.executions.touched.append(execution)
            outcome = execution.replay(rounds: rounds.keys.sorted().map { rounds[$0] ?? [] }, hasPendingEntries: hasPending)
            journalHasPending = hasPending
            journalSteps = journal.reduce(0) { $0 + ($1.kind == .step ? 1 : 0) }
        }
        // What completion must clean up: when every operation the body issued is resolved, no task,
        // timer or event wait is left and the body knows its steps (an operation issued but left
        // unscheduled by a finishing body is unresolved, so it takes the full clean-up). This replay
        // has already taken the workflow's replay row, if any.
        let issued = execution.context.issuedOperations
        let leftovers = issued.allResolved && !journalHasPending
            ? CompletionLeftovers(knownSteps: journalSteps ?? issued.steps, mayHaveOpenOperations: false, mayBeInReplayQueue: false)
            : CompletionLeftovers(knownSteps: nil, mayHaveOpenOperations: true, mayBeInReplayQueue: false)

        // A body that cannot run here is parked before anything of this run is written.
        var unparked = false
        switch outcome {
        case .violated(let violation) where configuration.onNondeterminism == .park:
            try park(tx, workflow: workflow, reason: violation.description, trigger: trigger, consumed: consumed)
            return false
        case .unrunnable(let missing):
            try park(tx, workflow: workflow, reason: missing.description, trigger: trigger, consumed: consumed)
            return false
        case .violated:
            break  // --on-nondeterminism fail: completed failed below, not run again
        case .completed, .failed, .waiting:
            if workflow.parkedReason != nil, try unpark(tx, workflow: workflow) { unparked = true }
        }
        switch outcome {
        case .completed(let result, let markers):
            for marker in markers { try schedule(tx, workflow: workflow, command: marker) }
            try tx.completeWorkflow(workflow, status: .succeeded, result: result, error: nil, leftovers: leftovers)
            try tx.appendReplayEvent(workflow, generation: generation, trigger: trigger, consumed: consumed,
                                     scheduled: [], outcome: .completed)
            return false
        case .violated(let violation):
            // --on-nondeterminism fail: the detector's verdict is final.
            try tx.completeWorkflow(workflow, status: .failed, result: nil,
                                    error: WorkflowErrorInfo(message: violation.description, step: nil), leftovers: leftovers)
            try tx.appendReplayEvent(workflow, generation: generation, trigger: trigger, consumed: consumed,
                                     scheduled: [], outcome: .completed)
            return false
        case .unrunnable:
            return false  // parked above
        case .failed(let error, let markers):
            for marker in markers { try schedule(tx, workflow: workflow, command: marker) }
            try tx.completeWorkflow(workflow, status: .failed, result: nil, error: error, leftovers: leftovers)
            try tx.appendReplayEvent(workflow, generation: generation, trigger: trigger, consumed: consumed,
                                     scheduled: [], outcome: .completed)
            return false
        case .waiting(let commands):
            var scheduled: [ReplayEvent.Scheduled] = []
            for command in commands {
                if case .step(let seq, let name, _, _) = command { scheduled.append(.init(stepId: seq, name: name)) }
                try schedule(tx, workflow: workflow, command: command)
            }
            try tx.appendReplayEvent(workflow, generation: generation, trigger: trigger, consumed: consumed,
                                     scheduled: scheduled, outcome: .waiting)
            var kept = workflow
            if unparked { kept.parkedReason = nil }
            tx.executions.kept.append((workflowId, ExecutionCache.Entry(execution: execution, workflow: kept, generation: generation)))
            return !scheduled.isEmpty
        }
    }

    /// Loads a running workflow and starts its next generation; nil when it is not running.
    private func startGeneration(_ tx: ShardTransaction, _ workflowId: String,
                                 loaded row: Result<WorkflowRow?, any Error>?) throws -> WorkflowRow? {
        let current = try row.map { try $0.get() } ?? tx.loadWorkflow(workflowId)
        guard let loaded = current, loaded.status == .running else { return nil }
        try tx.run("UPDATE workflows SET generation = ? WHERE id = ?", loaded.generation + 1, workflowId)
        var row = loaded
        row.generation += 1
        return row
    }

    private static func journalEntry(_ row: StoreRow) throws -> JournalEntry {
        JournalEntry(
            seq: row[0], kind: try row.decode(1), name: row[2], status: try row.decode(3), output: row[4],
            error: row[5], attempts: row[6], round: row[7], completedAt: row[8])
    }

    private func schedule(_ tx: ShardTransaction, workflow: WorkflowRow, command: NewCommand) throws {
        let now = tx.now
        switch command {
        case .step(let seq, let name, let input, let retry):
            // The step's journal entry is its task too: queued in the FIFO index until claimed.
            try tx.run("""
                INSERT INTO journal (workflowId, seq, kind, name, status, taskState, input, fifoAt, readyAt, enqueuedAt,
                                     attempts, maxAttempts, initialBackoffMs, multiplier, maxBackoffMs, jitter)
                VALUES (?, ?, 'step', ?, 'pending', 'queued', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)
                """, workflow.id, seq, name, input, workflow.createdAt, now, now, retry.maxAttempts,
                      retry.initialBackoff.milliseconds, retry.multiplier, retry.maxBackoff.milliseconds, retry.jitter)
            tx.effects.tasks = true
        case .sleep(let seq, let milliseconds):
            try tx.run("INSERT INTO journal (workflowId, seq, kind, name, status) VALUES (?, ?, 'sleep', 'sleep', 'pending')",
                       workflow.id, seq)
            try tx.run("INSERT INTO timers (workflowId, seq, fireAt) VALUES (?, ?, ?)", workflow.id, seq, now.saturatingAdd(milliseconds))
            tx.effects.timers = true
        case .waitForEvent(let seq, let name, let timeout):
            try tx.run("INSERT INTO journal (workflowId, seq, kind, name, status) VALUES (?, ?, 'event', ?, 'pending')",
                       workflow.id, seq, name)
            try tx.run("INSERT INTO event_waits (workflowId, seq, name) VALUES (?, ?, ?)", workflow.id, seq, name)
            if let timeout {
                try tx.run("INSERT INTO timers (workflowId, seq, fireAt) VALUES (?, ?, ?)", workflow.id, seq, now.saturatingAdd(timeout))
                tx.effects.timers = true
            }
            // An event that arrived before the wait is delivered now.
            try tx.matchEvent(workflowId: workflow.id, name: name)
        case .patch(let seq, let name):
            // Resolved as it is written, and never delivered in a round (round 0 is no replay's).
            try tx.run("""
                INSERT INTO journal (workflowId, seq, kind, name, status, attempts, round, completedAt)
                VALUES (?, ?, 'patch', ?, 'recorded', 0, 0, ?)
                """, workflow.id, seq, name, now)
        }
    }
}
