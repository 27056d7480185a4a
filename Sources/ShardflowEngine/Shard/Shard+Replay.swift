import Foundation
import GRDB

/// The replayer: runs workflow bodies over their journals and commits what they asked for.
extension Shard {
    /// Executions a transaction advanced: those left waiting are kept once it commits; if it fails,
    /// every one it touched is terminated (the store did not move on, so neither may they).
    struct StagedExecutions {
        var kept: [(workflowId: String, entry: ExecutionCache.Entry)] = []
        var touched: [WorkflowExecution] = []
    }

    /// Replays up to `replayBatchSize` queued workflows in one transaction. Returns how many.
    func replayBatch() throws -> Int {
        var effects = Effects()
        let started = ContinuousClock.now
        let handled = try writeAdvancing { db, staged -> Int in
            // The rows go in the transaction that commits the replays (I1). (No RETURNING: this SQLite
            // recompiles a RETURNING statement at every run, which costs more than a second statement.)
            let rows = try db.rows("SELECT rowid, workflowId, trigger FROM replay_queue ORDER BY rowid LIMIT ?",
                                   configuration.replayBatchSize) { row in
                (rowid: row[0] as Int64, workflowId: row[1] as String, trigger: row[2] as String)
            }
            guard let last = rows.last else { return 0 }
            // The batch is the rows with the smallest rowids, so one range delete takes exactly them.
            try db.run("DELETE FROM replay_queue WHERE rowid <= ?", last.rowid)
            let now = clock.nowMilliseconds()
            for (_, workflowId, trigger) in rows {
                _ = try replay(db, workflowId: workflowId, trigger: ReplayTrigger(rawValue: trigger) ?? .step, now: now,
                               effects: &effects, staged: &staged, queuedRowTaken: true)
            }
            return rows.count
        }
        if handled > 0 {
            metrics.replayDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        }
        signal(effects)
        return handled
    }

    /// A write transaction that may advance kept executions (see `StagedExecutions`).
    func writeAdvancing<T>(_ body: (Database, inout StagedExecutions) throws -> T) throws -> T {
        var staged = StagedExecutions()
        do {
            let value = try write { db in try body(db, &staged) }
            executions.keep(staged.kept)
            return value
        } catch {
            for execution in staged.touched { execution.terminate() }
            throw error
        }
    }

    /// Replays one workflow: resumes its kept execution when the cache has the one for the current
    /// generation, else replays the body over the whole journal. Returns whether it scheduled new steps.
    /// - Parameter recorded: results the caller recorded in this transaction with `round` already set
    ///   to this replay's generation (see `record`); nil when the journal has to be asked.
    func replay(_ db: Database, workflowId: String, trigger: ReplayTrigger, now: Int64, effects: inout Effects,
                staged: inout StagedExecutions, queuedRowTaken: Bool = false, recorded: [JournalEntry]? = nil) throws -> Bool {
        // The row goes in the same transaction that commits this replay's effects (I1).
        var otherTrigger = queuedRowTaken
        // A clear hint means the queue is empty: every insert sets it inside its own transaction, and
        // the work loop clears it only before a transaction that takes the queued rows.
        if !queuedRowTaken && replayHint.load(ordering: .acquiring) {
            try db.run("DELETE FROM replay_queue WHERE workflowId = ?", workflowId)
            otherTrigger = db.changesCount > 0
        }
        var cached = executions.take(workflowId)
        if let cached { staged.touched.append(cached.execution) }
        let workflow: WorkflowRow
        if let entry = cached {
            // Still running at the generation the body last ran at? (One statement instead of a load.)
            try db.run("UPDATE workflows SET generation = ? WHERE id = ? AND status = 'running' AND generation = ?",
                       entry.generation + 1, workflowId, entry.generation)
            if db.changesCount == 1 {
                var row = entry.workflow
                row.generation = entry.generation + 1
                workflow = row
            } else {
                entry.execution.terminate()
                cached = nil
                guard let loaded = try startGeneration(db, workflowId) else { return false }
                workflow = loaded
            }
        } else {
            guard let loaded = try startGeneration(db, workflowId) else { return false }
            workflow = loaded
        }
        let generation = workflow.generation
        guard let definition = registry.workflow(workflow.name, version: workflow.version) else {
            cached?.execution.terminate()
            try park(db, workflow: workflow, reason: unregisteredReason(workflow), trigger: trigger, now: now, effects: &effects)
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
                try db.run("UPDATE journal SET round = ? WHERE workflowId = ? AND round IS NULL AND status <> 'pending'",
                           generation, workflowId)
                entries = try db.rows("""
                    SELECT seq, kind, name, status, output, error, attempts, round, completedAt
                    FROM journal WHERE workflowId = ? AND round = ? ORDER BY seq
                    """, workflowId, generation, as: Self.journalEntry)
            }
            consumed = entries.map { .init(stepId: $0.seq, name: $0.name, status: $0.status.rawValue, attempts: $0.attempts) }
            execution = cached.execution
            outcome = execution.resume(with: entries)
        } else {
            executions.count(hit: false)
            // Results that arrived since the last replay are delivered in this generation's round.
            try db.run("UPDATE journal SET round = ? WHERE workflowId = ? AND round IS NULL AND status <> 'pending'",
                       generation, workflowId)
            var journal: [JournalEntry] = []
            var rounds: [Int: [Int]] = [:]
            var hasPending = false
            let journalSQL = """
                SELECT seq, kind, name, status, output, error, attempts, round, completedAt
                FROM journal WHERE workflowId = ? ORDER BY seq
                """
            for entry in try db.rows(journalSQL, workflowId, as: Self.journalEntry) {
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
                    try completeWorkflow(db, workflow: workflow, status: .failed, result: nil, error: refused, now: now, effects: &effects)
                    try appendReplayEvent(db, workflow: workflow, generation: generation, trigger: trigger, consumed: [],
                                          scheduled: [], outcome: .completed, now: now, effects: &effects)
                    return false
                }
            }
            let context = WorkflowContext(
                workflowId: workflowId, workflowName: workflow.name, workflowVersion: workflow.version, registry: registry,
                defaultRetry: definition.retry ?? configuration.defaultRetry, journal: journal, startedAt: workflow.startedAt)
            execution = WorkflowExecution(definition: definition, context: context, args: workflow.args,
                                          crashSite: crashSite(CrashSubject(kind: .body, workflowId: workflowId, stepId: nil)))
            staged.touched.append(execution)
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
            try park(db, workflow: workflow, reason: violation.description, trigger: trigger, consumed: consumed,
                     now: now, effects: &effects)
            return false
        case .unrunnable(let missing):
            try park(db, workflow: workflow, reason: missing.description, trigger: trigger, consumed: consumed,
                     now: now, effects: &effects)
            return false
        case .violated:
            break  // --on-nondeterminism fail: completed failed below, not run again
        case .completed, .failed, .waiting:
            if workflow.parkedReason != nil, try unpark(db, workflow: workflow) { unparked = true }
        }
        switch outcome {
        case .completed(let result, let markers):
            for marker in markers { try schedule(db, workflow: workflow, command: marker, now: now, effects: &effects) }
            try completeWorkflow(db, workflow: workflow, status: .succeeded, result: result, error: nil, now: now,
                                 leftovers: leftovers, effects: &effects)
            try appendReplayEvent(db, workflow: workflow, generation: generation, trigger: trigger, consumed: consumed,
                                  scheduled: [], outcome: .completed, now: now, effects: &effects)
            return false
        case .violated(let violation):
            // --on-nondeterminism fail: the detector's verdict is final.
            try completeWorkflow(db, workflow: workflow, status: .failed, result: nil,
                                 error: WorkflowErrorInfo(message: violation.description, step: nil), now: now,
                                 leftovers: leftovers, effects: &effects)
            try appendReplayEvent(db, workflow: workflow, generation: generation, trigger: trigger, consumed: consumed,
                                  scheduled: [], outcome: .completed, now: now, effects: &effects)
            return false
        case .unrunnable:
            return false  // parked above
        case .failed(let error, let markers):
            for marker in markers { try schedule(db, workflow: workflow, command: marker, now: now, effects: &effects) }
            try completeWorkflow(db, workflow: workflow, status: .failed, result: nil, error: error, now: now,
                                 leftovers: leftovers, effects: &effects)
            try appendReplayEvent(db, workflow: workflow, generation: generation, trigger: trigger, consumed: consumed,
                                  scheduled: [], outcome: .completed, now: now, effects: &effects)
            return false
        case .waiting(let commands):
            var scheduled: [ReplayEvent.Scheduled] = []
            for command in commands {
                if case .step(let seq, let name, _, _) = command { scheduled.append(.init(stepId: seq, name: name)) }
                try schedule(db, workflow: workflow, command: command, now: now, effects: &effects)
            }
            try appendReplayEvent(db, workflow: workflow, generation: generation, trigger: trigger, consumed: consumed,
                                  scheduled: scheduled, outcome: .waiting, now: now, effects: &effects)
            var kept = workflow
            if unparked { kept.parkedReason = nil }
            staged.kept.append((workflowId, ExecutionCache.Entry(execution: execution, workflow: kept, generation: generation)))
            return !scheduled.isEmpty
        }
    }

    /// Loads a running workflow and starts its next generation; nil when it is not running.
    private func startGeneration(_ db: Database, _ workflowId: String) throws -> WorkflowRow? {
        guard let loaded = try loadWorkflow(db, workflowId), loaded.status == "running" else { return nil }
        try db.run("UPDATE workflows SET generation = ? WHERE id = ?", loaded.generation + 1, workflowId)
        var row = loaded
        row.generation += 1
        return row
    }

    private static func journalEntry(_ row: StoreRow) -> JournalEntry {
        JournalEntry(
            seq: row[0], kind: JournalEntry.Kind(rawValue: row[1]) ?? .step, name: row[2],
            status: JournalEntry.Status(rawValue: row[3]) ?? .pending, output: row[4],
            error: row[5], attempts: row[6], round: row[7], completedAt: row[8])
    }

    private func schedule(_ db: Database, workflow: WorkflowRow, command: NewCommand, now: Int64, effects: inout Effects) throws {
        switch command {
        case .step(let seq, let name, let input, let retry):
            try db.run("INSERT INTO journal (workflowId, seq, kind, name, status) VALUES (?, ?, 'step', ?, 'pending')",
                       workflow.id, seq, name)
            try db.run("""
                INSERT INTO tasks (workflowId, stepId, name, input, createdAt, state, attempt, readyAt, enqueuedAt,
                                   maxAttempts, initialBackoffMs, multiplier, maxBackoffMs, jitter)
                VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?)
                """, workflow.id, seq, name, input, workflow.createdAt, now, now, retry.maxAttempts,
                      retry.initialBackoff.milliseconds, retry.multiplier, retry.maxBackoff.milliseconds, retry.jitter)
            effects.tasks = true
        case .sleep(let seq, let milliseconds):
            try db.run("INSERT INTO journal (workflowId, seq, kind, name, status) VALUES (?, ?, 'sleep', 'sleep', 'pending')",
                       workflow.id, seq)
            try db.run("INSERT INTO timers (workflowId, seq, fireAt) VALUES (?, ?, ?)", workflow.id, seq, now.saturatingAdd(milliseconds))
            effects.timers = true
        case .waitForEvent(let seq, let name, let timeout):
            try db.run("INSERT INTO journal (workflowId, seq, kind, name, status) VALUES (?, ?, 'event', ?, 'pending')",
                       workflow.id, seq, name)
            try db.run("INSERT INTO event_waits (workflowId, seq, name) VALUES (?, ?, ?)", workflow.id, seq, name)
            if let timeout {
                try db.run("INSERT INTO timers (workflowId, seq, fireAt) VALUES (?, ?, ?)", workflow.id, seq, now.saturatingAdd(timeout))
                effects.timers = true
            }
            // An event that arrived before the wait is delivered now.
            try matchEvent(db, workflowId: workflow.id, name: name, now: now, effects: &effects)
        case .patch(let seq, let name):
            // Resolved as it is written, and never delivered in a round (round 0 is no replay's).
            try db.run("""
                INSERT INTO journal (workflowId, seq, kind, name, status, attempts, round, completedAt)
                VALUES (?, ?, 'patch', ?, 'recorded', 0, 0, ?)
                """, workflow.id, seq, name, now)
        }
    }
}
