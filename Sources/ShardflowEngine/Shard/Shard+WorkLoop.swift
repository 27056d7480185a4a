import ShardflowSupport
import GRDB

/// The shard's one work loop, and the path of a step result through it: record, replay (a kept body or
/// the journal), claim, all in one transaction. One loop per shard keeps the shard's transactions on one
/// task, so no pool thread waits for another on the store.
extension Shard {
    func workLoop() async {
        while !Task.isCancelled {
            var progressed = false
            do {
                progressed = try recordResults() > 0
                if lifecycle.isRunning {
                    if signals.replay.take() {
                        let replayed = try replayQueued()
                        if replayed >= configuration.replayBatchSize { signals.replay.raise() }
                        progressed = replayed > 0 || progressed
                    }
                    progressed = try claimAndLaunch() > 0 || progressed
                }
            } catch {
                signals.replay.raise()
                signals.claim.raise()
                if !lifecycle.isRunning { return }
                logger.error("shard work failed: \(error)")
                try? await Task.sleep(for: .milliseconds(100))
            }
            if !progressed {
                await signals.work.wait()
            } else {
                await Task.yield()
            }
        }
    }

    /// Replays up to `replayBatchSize` queued workflows in one transaction. Returns how many.
    func replayQueued() throws -> Int {
        let started = ContinuousClock.now
        let handled = try transaction { tx in try replayer.replayQueued(tx, limit: configuration.replayBatchSize) }
        if handled > 0 {
            metrics.replayDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        }
        return handled
    }

    /// Claims up to the free slots (and at most `claimLimit`) and starts the steps.
    func claimAndLaunch() throws -> Int {
        guard let plan = executor.planClaim(tasksAdded: false) else { return 0 }
        let claim = try transaction { tx in try executor.claim(tx, plan) }
        return executor.launch(claim)
    }

    /// Records buffered step results in one transaction and, in the same transaction, replays the
    /// workflows they moved on and claims their next steps (while stopping, it only records and leaves
    /// replay rows). Returns how many results it recorded.
    @discardableResult
    func recordResults() throws -> Int {
        let batch = executor.takeResults(limit: configuration.recordBatchSize)
        guard !batch.isEmpty else { return 0 }
        let replayNow = lifecycle.isRunning
        var scheduledAfter: [ContinuousClock.Instant] = []
        var claim: ShardExecutor.Claim?
        let started = ContinuousClock.now
        do {
            try transaction { tx in
                var order: [(workflowId: String, finishedAt: ContinuousClock.Instant)] = []
                var recorded: [String: [JournalEntry]] = [:]
                for outcome in batch {
                    guard let entry = try record(tx, outcome, replayInline: replayNow) else { continue }
                    if recorded[outcome.workflowId] == nil { order.append((outcome.workflowId, outcome.finishedAt)) }
                    recorded[outcome.workflowId, default: []].append(entry)
                }
                guard replayNow else { return }
                // After every result is in, so a workflow with several results replays once.
                for (workflowId, finishedAt) in order {
                    if try replayer.replay(tx, workflowId: workflowId, source: .recorded(recorded[workflowId] ?? [])) {
                        scheduledAfter.append(finishedAt)
                    }
                }
                // The next steps are claimed in the same transaction, sparing the loop one.
                if let plan = executor.planClaim(tasksAdded: tx.effects.tasks) {
                    claim = try executor.claim(tx, plan)
                }
            }
        } catch {
            // Not recorded: the tasks stay `running` in the store and return to the queue at the next open.
            executor.putBack(batch)
            throw error
        }
        if let claim { executor.launch(claim) }
        if replayNow {
            let committed = ContinuousClock.now
            metrics.replayDuration.recordNanoseconds((committed - started).nanoseconds)
            if !scheduledAfter.isEmpty, let sink = schedulingLatency.withLock({ $0 }) {
                sink.record(scheduledAfter.map { committed - $0 })
            }
        }
        return batch.count
    }

    /// Records one result. Returns the resolved journal entry when it moved its workflow on (it needs
    /// a replay). With `replayInline` the caller replays the workflow in this transaction, so the
    /// entry's `round` is set here to that replay's generation (sparing it a search of the journal);
    /// otherwise the replay row is written here and the round is left to the replay.
    private func record(_ tx: ShardTransaction, _ outcome: ShardExecutor.StepOutcome, replayInline: Bool) throws -> JournalEntry? {
        let now = tx.now
        let entry: JournalEntry
        switch outcome.result {
        case .success(let output):
            // The entry resolves only if its task is still the running attempt: one canceled, failed by an
            // operator or re-queued meanwhile is not changed, and the result is not used.
            if replayInline {
                try tx.run("""
                    UPDATE journal SET status = 'succeeded', output = ?, completedAt = ?, taskState = NULL, input = NULL,
                                       round = (SELECT generation + 1 FROM workflows WHERE id = ?)
                    WHERE workflowId = ? AND seq = ? AND taskState = 'running' AND attempts = ?
                    """, output, now, outcome.workflowId, outcome.workflowId, outcome.stepId, outcome.attempt)
            } else {
                try tx.run("""
                    UPDATE journal SET status = 'succeeded', output = ?, completedAt = ?, taskState = NULL, input = NULL,
                                       round = NULL
                    WHERE workflowId = ? AND seq = ? AND taskState = 'running' AND attempts = ?
                    """, output, now, outcome.workflowId, outcome.stepId, outcome.attempt)
            }
            guard tx.changes > 0 else { return nil }
            metrics.stepsSucceeded.increment()
            entry = JournalEntry(seq: outcome.stepId, kind: .step, name: outcome.name, status: .succeeded, output: output,
                                 error: nil, attempts: outcome.attempt, round: nil, completedAt: now)
        case .failure(let error) where error.unregistered:
            try replayer.parkUnregisteredStep(tx, workflowId: outcome.workflowId, stepId: outcome.stepId,
                                              attempt: outcome.attempt, name: outcome.name)
            return nil
        case .failure(let error):
            guard let (attempt, policy) = try tx.row("""
                SELECT j.attempts, j.maxAttempts, j.initialBackoffMs, j.multiplier, j.maxBackoffMs, j.jitter
                FROM journal j JOIN workflows w ON w.id = j.workflowId
                WHERE j.workflowId = ? AND j.seq = ? AND j.taskState = 'running' AND w.status = 'running'
                """, outcome.workflowId, outcome.stepId, as: { task in
                    (task[0] as Int, RetryPolicy(maxAttempts: task[1], initialBackoff: .milliseconds(task[2] as Int64),
                                                 multiplier: task[3], maxBackoff: .milliseconds(task[4] as Int64), jitter: task[5]))
                }),
                attempt == outcome.attempt
            else { return nil }
            // A permanent failure (the step's error said so) is final at once, whatever the policy allows.
            if error.retryable && outcome.attempt < policy.maxAttempts {
                let delay = policy.backoffMilliseconds(afterAttempt: outcome.attempt, unitRandom: Double.random(in: 0..<1))
                try tx.run("""
                    UPDATE journal SET taskState = 'queued', claimedEpoch = NULL, readyAt = ?, error = ?
                    WHERE workflowId = ? AND seq = ?
                    """, now.saturatingAdd(delay), error.message, outcome.workflowId, outcome.stepId)
                metrics.stepRetries.increment()
                tx.effects.timers = true
                tx.effects.tasks = true
                return nil
            }
            metrics.stepsFailed.increment()
            if replayInline {
                try tx.run("""
                    UPDATE journal SET status = 'failed', error = ?, completedAt = ?, taskState = NULL, input = NULL,
                                       round = (SELECT generation + 1 FROM workflows WHERE id = ?)
                    WHERE workflowId = ? AND seq = ?
                    """, error.message, now, outcome.workflowId, outcome.workflowId, outcome.stepId)
            } else {
                try tx.run("""
                    UPDATE journal SET status = 'failed', error = ?, completedAt = ?, taskState = NULL, input = NULL, round = NULL
                    WHERE workflowId = ? AND seq = ?
                    """, error.message, now, outcome.workflowId, outcome.stepId)
            }
            entry = JournalEntry(seq: outcome.stepId, kind: .step, name: outcome.name, status: .failed, output: nil,
                                 error: error.message, attempts: outcome.attempt, round: nil, completedAt: now)
        }
        if !replayInline {
            try tx.enqueueReplay(workflowId: outcome.workflowId, trigger: .step)
        }
        return entry
    }
}
