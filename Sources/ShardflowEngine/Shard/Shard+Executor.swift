import Foundation
import GRDB
import Logging

/// The executor: claims ready tasks in FIFO order (I4), runs at most `maxConcurrency` at once (I5),
/// and records their results in batched transactions.
extension Shard {
    struct ClaimedTask: Sendable {
        let workflowId: String
        let stepId: Int
        let name: String
        let input: String
        let attempt: Int
        /// The workflow's createdAt: the FIFO key (I4), for whatever orders the step's work further.
        let createdAt: Int64
    }

    /// The shard's one work loop: record step results, replay, claim. One loop per shard keeps the
    /// shard's transactions on one task, so no pool thread waits for another on the store.
    func workLoop() async {
        while !Task.isCancelled {
            var progressed = false
            do {
                progressed = try recordResults() > 0
                if !isClosing {
                    if replayHint.exchange(false, ordering: .acquiringAndReleasing) {
                        let replayed = try replayBatch()
                        if replayed >= configuration.replayBatchSize { replayHint.store(true, ordering: .releasing) }
                        progressed = replayed > 0 || progressed
                    }
                    progressed = try claimAndLaunch() > 0 || progressed
                }
            } catch {
                replayHint.store(true, ordering: .releasing)
                claimHint.store(true, ordering: .releasing)
                if isClosing { return }
                logger.error("shard work failed: \(error)")
                try? await Task.sleep(for: .milliseconds(100))
            }
            if !progressed {
                await workSignal.wait()
            } else {
                await Task.yield()
            }
        }
    }

    /// What one claim may take: free slots (at most `claimLimit`) at the executor's epoch.
    struct ClaimPlan {
        let limit: Int
        let epoch: Int64
    }

    /// Claims up to the free slots (and at most `claimLimit`) and starts the steps.
    func claimAndLaunch() throws -> Int {
        guard let plan = planClaim(tasksAdded: false) else { return 0 }
        let (claimed, stale) = try write { db in try claimTasks(db, plan) }
        return launchClaimed(claimed, plan: plan, stale: stale)
    }

    /// Nil when no claim can take anything: no free slot, no executor, or no ready task since the last
    /// claim (`tasksAdded`: the caller's own transaction has just queued some).
    func planClaim(tasksAdded: Bool) -> ClaimPlan? {
        // A finished step keeps its slot until its result is recorded: until then its task is still
        // `running` in the store, and I5 holds for what the store shows too.
        let (free, epoch) = runtime.withLock { state in
            (configuration.maxConcurrency - state.inFlight.count - state.results.count, state.executorEpoch)
        }
        guard free > 0, let epoch else { return nil }
        let hinted = claimHint.exchange(false, ordering: .acquiringAndReleasing)
        guard hinted || tasksAdded else { return nil }
        return ClaimPlan(limit: min(free, configuration.claimLimit), epoch: epoch)
    }

    /// The claim's statements, inside the caller's transaction. `stale`: the store's epoch moved on.
    func claimTasks(_ db: Database, _ plan: ClaimPlan) throws -> (claimed: [ClaimedTask], stale: Bool) {
        // The epoch is read in the claim's own transaction: an executor of an older epoch claims nothing.
        guard let meta = try StoreQueries.meta(db), meta.executorEnabled, meta.epoch == plan.epoch else {
            return ([], true)
        }
        if try outboxIsFull(db) {
            // Tasks are left: look again once the outbox drains (acknowledging wakes the loop).
            claimHint.store(true, ordering: .releasing)
            return ([], false)
        }
        // The FIFO selection (I4), then one update of the same selection (same transaction, same
        // total order, so the same rows) rather than one update per task. The partial FIFO index holds
        // exactly the queued tasks, walked in order and stopped at the limit; `+readyAt` keeps the
        // planner on it (a task backing off is skipped by the row check).
        let now = clock.nowMilliseconds()
        let claimed = try db.rows("""
            SELECT workflowId, stepId, name, input, attempt, createdAt FROM tasks
            WHERE state = 'queued' AND +readyAt <= ?
            ORDER BY createdAt, workflowId, stepId LIMIT ?
            """, now, plan.limit) { row in
            ClaimedTask(workflowId: row[0], stepId: row[1], name: row[2], input: row[3], attempt: (row[4] as Int) + 1,
                        createdAt: row[5])
        }
        guard !claimed.isEmpty else { return ([], false) }
        try db.run("""
            UPDATE tasks SET state = 'running', attempt = attempt + 1, claimedEpoch = ?
            WHERE (workflowId, stepId) IN (
                SELECT workflowId, stepId FROM tasks
                WHERE state = 'queued' AND +readyAt <= ?
                ORDER BY createdAt, workflowId, stepId LIMIT ?)
            """, plan.epoch, now, plan.limit)
        return (claimed, false)
    }

    /// After the claim committed: starts the steps, or retires an executor whose epoch is over.
    func launchClaimed(_ claimed: [ClaimedTask], plan: ClaimPlan, stale: Bool) -> Int {
        if stale {
            // bumpEpoch committed: this executor is done; in-flight steps still record.
            runtime.withLock { state in
                if state.executorEpoch == plan.epoch { state.executorEpoch = nil }
            }
        }
        guard !claimed.isEmpty else { return 0 }
        // A full claim may have left more ready tasks.
        if claimed.count >= plan.limit { claimHint.store(true, ordering: .releasing) }
        launch(claimed)
        return claimed.count
    }

    private func outboxIsFull(_ db: Database) throws -> Bool {
        // max-min is an upper bound of the row count, and cheap; count exactly only when it is high.
        // Two subqueries: `MAX(id) - MIN(id)` in one expression would scan the table.
        let span = try db.int("SELECT (SELECT MAX(id) FROM outbox) - (SELECT MIN(id) FROM outbox) + 1") ?? 0
        guard span > Int64(configuration.outboxHighWater) else { return false }
        return try StoreQueries.count(db, "SELECT COUNT(*) FROM outbox") > configuration.outboxHighWater
    }

    /// Starts the claimed steps. Their slots are taken first and the tasks created outside the
    /// lock, so a step that finishes at once does not wait for the launch of the others.
    private func launch(_ tasks: [ClaimedTask]) {
        runtime.withLock { state in
            for task in tasks { state.inFlight[TaskKey(workflowId: task.workflowId, stepId: task.stepId)] = .some(nil) }
        }
        let stepDuration = metrics.stepDuration
        var started: [(TaskKey, Task<Void, Never>)] = []
        started.reserveCapacity(tasks.count)
        for task in tasks {
            let key = TaskKey(workflowId: task.workflowId, stepId: task.stepId)
            let definition = registry.steps[task.name]
            let context = StepContext(workflowId: task.workflowId, stepId: task.stepId, name: task.name,
                                      attempt: task.attempt, shard: shard, logger: logger, workflowCreatedAt: task.createdAt)
            // The step runs with its crash site set, so a trap in its code is recorded as its own.
            let site = crashSite(CrashSubject(kind: .step, workflowId: task.workflowId, stepId: task.stepId))
            started.append((key, Task {
                let started = ContinuousClock.now
                let result: Result<String, StepError>
                if let definition {
                    do {
                        if let site {
                            result = .success(try await site.attributing { try await definition.run(task.input, context) })
                        } else {
                            result = .success(try await definition.run(task.input, context))
                        }
                    } catch {
                        let retryable = (error as? any StepFailureClassifying)?.isRetryable ?? true
                        result = .failure(StepError(message: String(describing: error), retryable: retryable))
                    }
                } else {
                    result = .failure(StepError(message: "step \(task.name) is not registered in this worker",
                                                retryable: false, unregistered: true))
                }
                let finished = ContinuousClock.now
                stepDuration.recordNanoseconds((finished - started).nanoseconds)
                self.finish(StepOutcome(workflowId: task.workflowId, stepId: task.stepId, name: task.name, attempt: task.attempt,
                                        result: result, finishedAt: finished), key: key)
            }))
        }
        runtime.withLock { state in
            // A step that already finished has left its slot; only the others keep a handle.
            for (key, handle) in started where state.inFlight[key] != nil { state.inFlight[key] = handle }
        }
    }

    private func finish(_ outcome: StepOutcome, key: TaskKey) {
        let drained = runtime.withLock { state -> Bool in
            state.inFlight.removeValue(forKey: key)
            if !state.closed { state.results.append(outcome) }
            return state.inFlight.isEmpty
        }
        workSignal.notify()
        if drained { drainedSignal.notify() }
    }

    /// Records buffered step results in one transaction and, in the same transaction, replays the
    /// workflows they moved on (while closing, only records and leaves replay rows). Returns how many.
    @discardableResult
    func recordResults() throws -> Int {
        let batch: [StepOutcome] = runtime.withLock { state in
            let count = min(state.results.count, configuration.recordBatchSize)
            let taken = Array(state.results.prefix(count))
            state.results.removeFirst(count)
            return taken
        }
        guard !batch.isEmpty else { return 0 }
        let replayNow = !isClosing
        var effects = Effects()
        var scheduledAfter: [ContinuousClock.Instant] = []
        var claim: (plan: ClaimPlan, claimed: [ClaimedTask], stale: Bool)?
        let started = ContinuousClock.now
        do {
            try writeAdvancing { db, staged in
                let now = clock.nowMilliseconds()
                var order: [(workflowId: String, finishedAt: ContinuousClock.Instant)] = []
                var recorded: [String: [JournalEntry]] = [:]
                for outcome in batch {
                    guard let entry = try record(db, outcome, now: now, replayInline: replayNow, effects: &effects) else {
                        continue
                    }
                    if recorded[outcome.workflowId] == nil { order.append((outcome.workflowId, outcome.finishedAt)) }
                    recorded[outcome.workflowId, default: []].append(entry)
                }
                // After every result is in, so a workflow with several results replays once.
                for (workflowId, finishedAt) in order where replayNow {
                    if try replay(db, workflowId: workflowId, trigger: .step, now: now, effects: &effects,
                                  staged: &staged, recorded: recorded[workflowId]) {
                        scheduledAfter.append(finishedAt)
                    }
                }
                // The next steps are claimed in the same transaction, sparing the loop one.
                if replayNow, let plan = planClaim(tasksAdded: effects.tasks) {
                    let (claimed, stale) = try claimTasks(db, plan)
                    claim = (plan, claimed, stale)
                }
            }
        } catch {
            // Not recorded: the tasks stay `running` in the store and return to the queue at the next open.
            runtime.withLock { $0.results.insert(contentsOf: batch, at: 0) }
            throw error
        }
        if let claim { _ = launchClaimed(claim.claimed, plan: claim.plan, stale: claim.stale) }
        if replayNow {
            let committed = ContinuousClock.now
            metrics.replayDuration.recordNanoseconds((committed - started).nanoseconds)
            if !scheduledAfter.isEmpty, let sink = runtime.withLock({ $0.latencySink }) {
                sink.record(scheduledAfter.map { committed - $0 })
            }
        }
        signal(effects)
        return batch.count
    }

    /// Records one result. Returns the resolved journal entry when it moved its workflow on (it needs
    /// a replay). With `replayInline` the caller replays the workflow in this transaction, so the
    /// entry's `round` is set here to that replay's generation (sparing it a search of the journal);
    /// otherwise the replay row is written here and the round is left to the replay.
    private func record(_ db: Database, _ outcome: StepOutcome, now: Int64, replayInline: Bool,
                        effects: inout Effects) throws -> JournalEntry? {
        // The generation the inline replay will run at (nil: leave the round to a later replay).
        let roundSQL = replayInline ? "(SELECT generation + 1 FROM workflows WHERE id = ?)" : "?"
        let entry: JournalEntry
        switch outcome.result {
        case .success(let output):
            // A task deleted meanwhile (cancel, operator, a finished workflow) or already re-queued:
            // the result is not used.
            try db.run("DELETE FROM tasks WHERE workflowId = ? AND stepId = ? AND state = 'running' AND attempt = ?",
                       outcome.workflowId, outcome.stepId, outcome.attempt)
            guard db.changesCount > 0 else { return nil }
            metrics.stepsSucceeded.increment()
            try db.run("""
                UPDATE journal SET status = 'succeeded', output = ?, attempts = ?, completedAt = ?, round = \(roundSQL)
                WHERE workflowId = ? AND seq = ?
                """, output, outcome.attempt, now, replayInline ? outcome.workflowId : nil, outcome.workflowId, outcome.stepId)
            entry = JournalEntry(seq: outcome.stepId, kind: .step, name: outcome.name, status: .succeeded, output: output,
                                 error: nil, attempts: outcome.attempt, round: nil, completedAt: now)
        case .failure(let error) where error.unregistered:
            try parkUnregisteredStep(db, workflowId: outcome.workflowId, stepId: outcome.stepId, attempt: outcome.attempt,
                                     name: outcome.name, now: now, effects: &effects)
            return nil
        case .failure(let error):
            guard let (attempt, policy) = try db.row("""
                SELECT t.attempt, t.maxAttempts, t.initialBackoffMs, t.multiplier, t.maxBackoffMs, t.jitter
                FROM tasks t JOIN workflows w ON w.id = t.workflowId
                WHERE t.workflowId = ? AND t.stepId = ? AND t.state = 'running' AND w.status = 'running'
                """, outcome.workflowId, outcome.stepId, as: { task in
                    (task[0] as Int, RetryPolicy(maxAttempts: task[1], initialBackoff: .milliseconds(task[2] as Int64),
                                                 multiplier: task[3], maxBackoff: .milliseconds(task[4] as Int64), jitter: task[5]))
                }),
                attempt == outcome.attempt
            else { return nil }
            // A permanent failure (the step's error said so) is final at once, whatever the policy allows.
            if error.retryable && outcome.attempt < policy.maxAttempts {
                let delay = policy.backoffMilliseconds(afterAttempt: outcome.attempt, unitRandom: Double.random(in: 0..<1))
                try db.run("""
                    UPDATE tasks SET state = 'queued', claimedEpoch = NULL, readyAt = ? WHERE workflowId = ? AND stepId = ?
                    """, now.saturatingAdd(delay), outcome.workflowId, outcome.stepId)
                try db.run("UPDATE journal SET error = ?, attempts = ? WHERE workflowId = ? AND seq = ?",
                           error.message, outcome.attempt, outcome.workflowId, outcome.stepId)
                metrics.stepRetries.increment()
                effects.timers = true
                effects.tasks = true
                return nil
            }
            metrics.stepsFailed.increment()
            try db.run("""
                UPDATE journal SET status = 'failed', error = ?, attempts = ?, completedAt = ?, round = \(roundSQL)
                WHERE workflowId = ? AND seq = ?
                """, error.message, outcome.attempt, now, replayInline ? outcome.workflowId : nil,
                      outcome.workflowId, outcome.stepId)
            try db.run("DELETE FROM tasks WHERE workflowId = ? AND stepId = ?", outcome.workflowId, outcome.stepId)
            entry = JournalEntry(seq: outcome.stepId, kind: .step, name: outcome.name, status: .failed, output: nil,
                                 error: error.message, attempts: outcome.attempt, round: nil, completedAt: now)
        }
        if !replayInline {
            try enqueueReplay(db, workflowId: outcome.workflowId, trigger: .step, now: now, effects: &effects)
        }
        return entry
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
