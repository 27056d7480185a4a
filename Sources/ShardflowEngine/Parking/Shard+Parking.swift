import GRDB

/// Parking: a workflow whose code this worker cannot run (a determinism violation after a deploy, or
/// a workflow, version or step that is not registered here) is parked instead of failed. It stays
/// running with its journal intact; a parked workflow is not stuck (I1): it is tried again whenever its
/// shard is opened, so a rollback or a fixed deploy runs it on, and an operator may fail it on purpose.
extension Shard {
    /// Parks a workflow in the caller's transaction: records why (the first park's time is kept while it
    /// stays parked), sets its queued steps aside (no slot or LLM call is spent on a workflow that cannot
    /// go on here; `retryParked` queues them again), and publishes a `parked` replay event. Nothing of the
    /// abandoned run is written.
    func park(_ db: Database, workflow: WorkflowRow, reason: String, trigger: ReplayTrigger,
              consumed: [ReplayEvent.Consumed] = [], now: Int64, effects: inout Effects) throws {
        let reason = reason.prefix(utf8Bytes: MessageLimits.maxReasonBytes)
        try db.run("""
            UPDATE workflows SET parkedAt = CASE WHEN parkedReason IS NULL THEN ? ELSE parkedAt END, parkedReason = ?
            WHERE id = ?
            """, now, reason, workflow.id)
        try db.run("UPDATE tasks SET state = 'parked', claimedEpoch = NULL WHERE workflowId = ? AND state = 'queued'", workflow.id)
        if workflow.parkedReason == nil {
            metrics.workflowsParked.increment()
            logger.warning("workflow \(workflow.id) (\(workflow.name) v\(workflow.version)) parked: \(reason)")
        }
        try appendReplayEvent(db, workflow: workflow, generation: workflow.generation, trigger: trigger, consumed: consumed,
                              scheduled: [], outcome: .parked, parkedReason: reason, now: now, effects: &effects)
    }

    /// Clears a parked workflow whose body ran again, unless a step of it is still parked (its step is
    /// not registered here). Returns whether it was cleared.
    func unpark(_ db: Database, workflow: WorkflowRow) throws -> Bool {
        try db.run("""
            UPDATE workflows SET parkedReason = NULL
            WHERE id = ? AND NOT EXISTS (SELECT 1 FROM tasks WHERE workflowId = ? AND state = 'parked')
            """, workflow.id, workflow.id)
        guard db.changesCount > 0 else { return false }
        metrics.workflowsResumed.increment()
        logger.info("workflow \(workflow.id) (\(workflow.name) v\(workflow.version)) runs again after being parked")
        return true
    }

    /// Parks a workflow whose claimed step is not registered in this worker: the task is set aside
    /// (not claimed again here, not failed, and the attempt that never ran not counted) until its shard
    /// is opened by a worker that may have it.
    func parkUnregisteredStep(_ db: Database, workflowId: String, stepId: Int, attempt: Int, name: String,
                              now: Int64, effects: inout Effects) throws {
        try db.run("""
            UPDATE tasks SET state = 'parked', claimedEpoch = NULL, attempt = attempt - 1 WHERE workflowId = ? AND stepId = ? AND state = 'running' AND attempt = ?
            """, workflowId, stepId, attempt)
        guard db.changesCount > 0, let loaded = try loadWorkflow(db, workflowId), loaded.status == "running" else { return }
        // A kept body of this workflow would resume with a result that never comes: drop it (safe if this
        // rolls back). The generation stays: a result of the same batch may already carry the next one
        // for its inline replay.
        executions.evict(workflowId)
        try park(db, workflow: loaded, reason: UnregisteredStepError(step: name).description + " (step \(stepId))",
                 trigger: .step, now: now, effects: &effects)
    }

    /// Why a workflow's name or version cannot run here.
    func unregisteredReason(_ workflow: WorkflowRow) -> String {
        guard let versions = registry.versions[workflow.name], !versions.isEmpty else {
            return "workflow \(workflow.name) is not registered in this worker"
        }
        let known = versions.keys.sorted().map(String.init).joined(separator: ", ")
        return "workflow \(workflow.name) version \(workflow.version) is not registered in this worker (it has version\(versions.count == 1 ? "" : "s") \(known))"
    }

    /// At open (the store is locked, no loop runs yet): parked steps this worker has go back to the queue,
    /// and every parked workflow gets a replay row, so the code of this worker tries it again.
    static func retryParked(_ db: Database, registry: WorkflowRegistry, now: Int64) throws -> (workflows: Int, tasks: Int) {
        var tasks = 0
        let names = try db.rows("SELECT DISTINCT name FROM tasks WHERE state = 'parked'") { $0[0] as String }
        for name in names where registry.steps[name] != nil {
            try db.run("UPDATE tasks SET state = 'queued', readyAt = enqueuedAt WHERE state = 'parked' AND name = ?", name)
            tasks += db.changesCount
        }
        try db.run("""
            INSERT OR IGNORE INTO replay_queue (workflowId, trigger, enqueuedAt)
            SELECT id, 'unpark', ? FROM workflows WHERE parkedReason IS NOT NULL AND status = 'running'
            """, now)
        return (db.changesCount, tasks)
    }

    /// Fails parked workflows on purpose (all of the shard's, or the one named): each completes `failed`
    /// with the operator's reason and why it was parked.
    func failParkedWorkflows(_ db: Database, workflowId: String?, reason: String, now: Int64,
                             effects: inout Effects) throws -> OperationResult {
        let ids: [String]
        if let workflowId {
            ids = try db.rows("SELECT id FROM workflows WHERE id = ? AND parkedReason IS NOT NULL AND status = 'running'",
                              workflowId) { $0[0] as String }
        } else {
            ids = try db.rows("SELECT id FROM workflows WHERE parkedReason IS NOT NULL AND status = 'running' ORDER BY createdAt, id") {
                $0[0] as String
            }
        }
        var tasks = 0
        for id in ids {
            guard let workflow = try loadWorkflow(db, id) else { continue }
            executions.evict(id)
            tasks += Int(try db.int("SELECT COUNT(*) FROM tasks WHERE workflowId = ?", id) ?? 0)
            var row = workflow
            row.generation += 1
            try db.run("UPDATE workflows SET generation = ? WHERE id = ?", row.generation, id)
            let message = "failed by operator while parked: \(reason) (parked because: \(workflow.parkedReason ?? "unknown"))"
            try completeWorkflow(db, workflow: row, status: .failed, result: nil,
                                 error: WorkflowErrorInfo(message: message, step: nil), now: now, effects: &effects)
            try appendReplayEvent(db, workflow: row, generation: row.generation, trigger: .operator, consumed: [],
                                  scheduled: [], outcome: .completed, now: now, effects: &effects)
        }
        return try result(db, AffectedCounts(tasks: tasks, workflows: ids.count, replayEntries: 0))
    }
}
