import GRDB

/// Parking: a workflow whose code this worker cannot run (a determinism violation after a deploy, or
/// a workflow, version or step that is not registered here) is parked instead of failed. It stays
/// running with its journal intact; a parked workflow is not stuck (I1): it is tried again whenever its
/// shard is opened, so a rollback or a fixed deploy runs it on, and an operator may fail it on purpose.
extension ShardReplayer {
    /// Parks a workflow in the caller's transaction: records why (the first park's time is kept while it
    /// stays parked), sets its queued steps aside (no slot or LLM call is spent on a workflow that cannot
    /// go on here; `retryParked` queues them again), and publishes a `parked` replay event. Nothing of the
    /// abandoned run is written.
    func park(_ tx: ShardTransaction, workflow: WorkflowRow, reason: String, trigger: ReplayTrigger,
              consumed: [ReplayEvent.Consumed] = []) throws {
        let reason = reason.prefix(utf8Bytes: MessageLimits.maxReasonBytes)
        try tx.run("""
            UPDATE workflows SET parkedAt = CASE WHEN parkedReason IS NULL THEN ? ELSE parkedAt END, parkedReason = ?
            WHERE id = ?
            """, tx.now, reason, workflow.id)
        try tx.run("UPDATE journal SET taskState = 'parked', claimedEpoch = NULL WHERE workflowId = ? AND taskState = 'queued'",
                   workflow.id)
        if workflow.parkedReason == nil {
            metrics.workflowsParked.increment()
            logger.warning("workflow \(workflow.id) (\(workflow.name) v\(workflow.version)) parked: \(reason)")
        }
        try tx.appendReplayEvent(workflow, generation: workflow.generation, trigger: trigger, consumed: consumed,
                                 scheduled: [], outcome: .parked, parkedReason: reason)
    }

    /// Clears a parked workflow whose body ran again, unless a step of it is still parked (its step is
    /// not registered here). Returns whether it was cleared.
    func unpark(_ tx: ShardTransaction, workflow: WorkflowRow) throws -> Bool {
        try tx.run("""
            UPDATE workflows SET parkedReason = NULL
            WHERE id = ? AND NOT EXISTS (SELECT 1 FROM journal WHERE workflowId = ? AND taskState = 'parked')
            """, workflow.id, workflow.id)
        guard tx.changes > 0 else { return false }
        metrics.workflowsResumed.increment()
        logger.info("workflow \(workflow.id) (\(workflow.name) v\(workflow.version)) runs again after being parked")
        return true
    }

    /// Parks a workflow whose claimed step is not registered in this worker: the task is set aside
    /// (not claimed again here, not failed, and the attempt that never ran not counted) until its shard
    /// is opened by a worker that may have it.
    func parkUnregisteredStep(_ tx: ShardTransaction, workflowId: String, stepId: Int, attempt: Int, name: String) throws {
        try tx.run("""
            UPDATE journal SET taskState = 'parked', claimedEpoch = NULL, attempts = attempts - 1
            WHERE workflowId = ? AND seq = ? AND taskState = 'running' AND attempts = ?
            """, workflowId, stepId, attempt)
        guard tx.changes > 0, let loaded = try tx.loadWorkflow(workflowId), loaded.status == .running else { return }
        // A kept body of this workflow would resume with a result that never comes: drop it. The
        // generation stays: a result of the same batch may already carry the next one for its inline replay.
        evict(tx, workflowId)
        try park(tx, workflow: loaded, reason: UnregisteredStepError(step: name).description + " (step \(stepId))",
                 trigger: .step)
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
    func retryParked(_ tx: ShardTransaction) throws -> (workflows: Int, tasks: Int) {
        var tasks = 0
        let names = try tx.rows("SELECT DISTINCT name FROM journal WHERE taskState = 'parked'") { $0[0] as String }
        for name in names where registry.steps[name] != nil {
            try tx.run("UPDATE journal SET taskState = 'queued', readyAt = enqueuedAt WHERE taskState = 'parked' AND name = ?", name)
            tasks += tx.changes
        }
        try tx.run("""
            INSERT OR IGNORE INTO replay_queue (workflowId, trigger, enqueuedAt)
            SELECT id, 'unpark', ? FROM workflows WHERE parkedReason IS NOT NULL AND status = 'running'
            """, tx.now)
        return (tx.changes, tasks)
    }
}
