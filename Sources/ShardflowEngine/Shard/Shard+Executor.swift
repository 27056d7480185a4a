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
    }

    /// The shard's one work loop: record step results, replay, claim. One loop per shard keeps the
    /// shard's transactions on one task, so no pool thread waits for another on the store.
    func workLoop() async {
        while !Task.isCancelled {
            var progressed = false
            do {
                progressed = try recordResults() > 0
                if !isClosing {
                    progressed = try replayBatch() > 0 || progressed
                    progressed = try claimAndLaunch() > 0 || progressed
                }
            } catch {
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

    /// Claims up to the free slots (and at most `claimLimit`) and starts the steps.
    func claimAndLaunch() throws -> Int {
        let (free, epoch) = runtime.withLock { state in
            (configuration.maxConcurrency - state.inFlight.count, state.executorEpoch)
        }
        guard free > 0, let epoch else { return 0 }
        let limit = min(free, configuration.claimLimit)
        let claimed: [ClaimedTask] = try write { db in
            // The epoch is read in the claim's own transaction: an executor of an older epoch claims nothing.
            guard let meta = try StoreQueries.meta(db), meta.executorEnabled, meta.epoch == epoch else { return [] }
            if try outboxIsFull(db) { return [] }
            // One statement: the FIFO selection (I4) and its update. RETURNING has no order, so the
            // claimed tasks are sorted back into FIFO order to launch.
            let rows = try db.rows("""
                UPDATE tasks SET state = 'running', attempt = attempt + 1, claimedEpoch = ?
                WHERE (workflowId, stepId) IN (
                    SELECT workflowId, stepId FROM tasks
                    WHERE state = 'queued' AND readyAt <= ?
                    ORDER BY createdAt, workflowId, stepId LIMIT ?)
                RETURNING createdAt, workflowId, stepId, name, input, attempt
                """, [epoch, clock.nowMilliseconds(), limit])
            return rows.map { row in
                (createdAt: row[0] as Int64, task: ClaimedTask(workflowId: row[1], stepId: row[2], name: row[3],
                                                               input: row[4], attempt: row[5]))
            }
            .sorted { a, b in
                (a.createdAt, a.task.workflowId, a.task.stepId) < (b.createdAt, b.task.workflowId, b.task.stepId)
            }
            .map(\.task)
        }
        if claimed.isEmpty {
            if runtime.withLock({ $0.executorEpoch != epoch || $0.closing }) { return 0 }
            let stale = try read { db in
                guard let meta = try StoreQueries.meta(db) else { return true }
                return !meta.executorEnabled || meta.epoch != epoch
            }
            if stale {
                // bumpEpoch committed: this executor is done; in-flight steps still record.
                runtime.withLock { state in
                    if state.executorEpoch == epoch { state.executorEpoch = nil }
                }
            }
            return 0
        }
        for task in claimed { launch(task) }
        return claimed.count
    }

    private func outboxIsFull(_ db: Database) throws -> Bool {
        // max-min is an upper bound of the row count, and cheap; count exactly only when it is high.
        let span = try db.int("SELECT MAX(id) - MIN(id) + 1 FROM outbox") ?? 0
        guard span > Int64(configuration.outboxHighWater) else { return false }
        return try StoreQueries.count(db, "SELECT COUNT(*) FROM outbox") > configuration.outboxHighWater
    }

    private func launch(_ task: ClaimedTask) {
        let key = TaskKey(workflowId: task.workflowId, stepId: task.stepId)
        let definition = registry.steps[task.name]
        let context = StepContext(workflowId: task.workflowId, stepId: task.stepId, name: task.name,
                                  attempt: task.attempt, shard: shard, logger: logger)
        let stepDuration = metrics.stepDuration
        runtime.withLock { state in
            state.inFlight[key] = Task {
                let started = ContinuousClock.now
                let result: Result<String, StepError>
                if let definition {
                    do {
                        result = .success(try await definition.run(task.input, context))
                    } catch {
                        result = .failure(StepError(message: String(describing: error)))
                    }
                } else {
                    result = .failure(StepError(message: "step \(task.name) is not registered in this worker"))
                }
                let finished = ContinuousClock.now
                stepDuration.recordNanoseconds((finished - started).nanoseconds)
                self.finish(StepOutcome(workflowId: task.workflowId, stepId: task.stepId, attempt: task.attempt,
                                        result: result, finishedAt: finished), key: key)
            }
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
        let started = ContinuousClock.now
        do {
            try writeAdvancing { db, staged in
                let now = clock.nowMilliseconds()
                var moved: [StepOutcome] = []
                for outcome in batch {
                    if try record(db, outcome, now: now, enqueueReplay: !replayNow, effects: &effects) {
                        moved.append(outcome)
                    }
                }
                guard replayNow else { return }
                // After every result is in, so a workflow with several results replays once.
                var replayed = Set<String>()
                for outcome in moved where replayed.insert(outcome.workflowId).inserted {
                    if try replay(db, workflowId: outcome.workflowId, trigger: .step, now: now, effects: &effects, staged: &staged) {
                        scheduledAfter.append(outcome.finishedAt)
                    }
                }
            }
        } catch {
            // Not recorded: the tasks stay `running` in the store and return to the queue at the next open.
            runtime.withLock { $0.results.insert(contentsOf: batch, at: 0) }
            throw error
        }
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

    /// Records one result. Returns whether it moved its workflow on (it needs a replay); with
    /// `enqueueReplay` the replay row is written here, else the caller replays in this transaction.
    private func record(_ db: Database, _ outcome: StepOutcome, now: Int64, enqueueReplay: Bool,
                        effects: inout Effects) throws -> Bool {
        switch outcome.result {
        case .success(let output):
            // A task deleted meanwhile (cancel, operator, a finished workflow) or already re-queued:
            // the result is not used.
            try db.run("DELETE FROM tasks WHERE workflowId = ? AND stepId = ? AND state = 'running' AND attempt = ?",
                       [outcome.workflowId, outcome.stepId, outcome.attempt])
            guard db.changesCount > 0 else { return false }
            metrics.stepsSucceeded.increment()
            try db.run("""
                UPDATE journal SET status = 'succeeded', output = ?, attempts = ?, completedAt = ?
                WHERE workflowId = ? AND seq = ?
                """, [output, outcome.attempt, now, outcome.workflowId, outcome.stepId])
        case .failure(let error):
            guard let task = try db.row("""
                SELECT t.attempt, t.maxAttempts, t.initialBackoffMs, t.multiplier, t.maxBackoffMs, t.jitter
                FROM tasks t JOIN workflows w ON w.id = t.workflowId
                WHERE t.workflowId = ? AND t.stepId = ? AND t.state = 'running' AND w.status = 'running'
                """, [outcome.workflowId, outcome.stepId]),
                (task[0] as Int) == outcome.attempt
            else { return false }
            let maxAttempts: Int = task[1]
            if outcome.attempt < maxAttempts {
                let policy = RetryPolicy(
                    maxAttempts: maxAttempts, initialBackoff: .milliseconds(task[2] as Int64),
                    multiplier: task[3], maxBackoff: .milliseconds(task[4] as Int64),
                    jitter: task[5])
                let delay = policy.backoffMilliseconds(afterAttempt: outcome.attempt, unitRandom: Double.random(in: 0..<1))
                try db.run("""
                    UPDATE tasks SET state = 'queued', claimedEpoch = NULL, readyAt = ? WHERE workflowId = ? AND stepId = ?
                    """, [now + delay, outcome.workflowId, outcome.stepId])
                try db.run("UPDATE journal SET error = ?, attempts = ? WHERE workflowId = ? AND seq = ?",
                           [error.message, outcome.attempt, outcome.workflowId, outcome.stepId])
                metrics.stepRetries.increment()
                effects.timers = true
                effects.tasks = true
                return false
            }
            metrics.stepsFailed.increment()
            try db.run("""
                UPDATE journal SET status = 'failed', error = ?, attempts = ?, completedAt = ?
                WHERE workflowId = ? AND seq = ?
                """, [error.message, outcome.attempt, now, outcome.workflowId, outcome.stepId])
            try db.run("DELETE FROM tasks WHERE workflowId = ? AND stepId = ?", [outcome.workflowId, outcome.stepId])
        }
        if enqueueReplay {
            try self.enqueueReplay(db, workflowId: outcome.workflowId, trigger: .step, now: now, effects: &effects)
        }
        return true
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
