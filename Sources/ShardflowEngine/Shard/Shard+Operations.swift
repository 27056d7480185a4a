import GRDB
import ShardflowJSON

/// Operator operations. Control messages call the same transaction bodies from `ingest`.
extension Shard {
    /// Every queued task (not a running one) fails with `failed by operator: <reason>`; each affected
    /// workflow gets a replay row in the same transaction, so it proceeds and none is left stuck.
    public func failPendingTasks(reason: String) async throws -> OperationResult {
        try operation { db, now, effects in try failPendingTasks(db, reason: reason, now: now, effects: &effects) }
    }

    /// Raises the epoch: the running executor stops claiming, its in-flight steps finish and record.
    /// No executor runs again until `resumeExecutors`. Ingestion goes on.
    public func bumpEpoch() async throws -> OperationResult {
        try operation { db, _, _ in try bumpEpoch(db) }
    }

    /// Starts an executor at the current epoch; does nothing if one is running.
    public func resumeExecutors() async throws -> OperationResult {
        try operation { db, _, _ in try resumeExecutors(db) }
    }

    /// Deletes every replay-queue row (operational recovery); the result counts the stuck workflows left.
    public func clearReplayQueue() async throws -> OperationResult {
        try operation { db, _, _ in try clearReplayQueue(db) }
    }

    /// Deletes every queued task (operational recovery); the result counts the stuck workflows left.
    public func clearTaskQueue() async throws -> OperationResult {
        try operation { db, _, _ in try clearTaskQueue(db) }
    }

    /// Completes a running workflow as `canceled`; queued steps are dropped, running ones finish unused.
    public func cancel(workflowId: String, reason: String? = nil) async throws -> OperationResult {
        try operation { db, now, effects in try cancel(db, workflowId: workflowId, reason: reason, now: now, effects: &effects) }
    }

    /// Delivers a named event (kept until the workflow waits for it).
    public func deliverEvent(workflowId: String, name: String, value: JSONValue) async throws -> OperationResult {
        try operation { db, now, effects in
            try deliverEvent(db, workflowId: workflowId, name: name, value: value, now: now, effects: &effects)
        }
    }

    private func operation(_ body: (Database, Int64, inout Effects) throws -> OperationResult) throws -> OperationResult {
        var effects = Effects()
        let result = try write { db in try body(db, clock.nowMilliseconds(), &effects) }
        afterOperation(effects)
        return result
    }

    func afterOperation(_ effects: Effects) {
        // An operation may change what can be claimed (epoch, enabled) or replayed: look again.
        replayHint.store(true, ordering: .releasing)
        claimHint.store(true, ordering: .releasing)
        signal(effects)
        workSignal.notify()
    }

    // MARK: transaction bodies

    func result(_ db: Database, _ affected: AffectedCounts) throws -> OperationResult {
        OperationResult(affected: affected, epoch: try StoreQueries.meta(db)?.epoch ?? 0,
                        stuckWorkflows: try StoreQueries.stuckCount(db))
    }

    func failPendingTasks(_ db: Database, reason: String, now: Int64, effects: inout Effects) throws -> OperationResult {
        let queued = try db.rows("SELECT workflowId, stepId FROM tasks WHERE state = 'queued' ORDER BY createdAt, workflowId, stepId") {
            row in (workflowId: row[0] as String, stepId: row[1] as Int)
        }
        var workflows = Set<String>()
        var replayEntries = 0
        let message = "failed by operator: \(reason)"
        for (workflowId, stepId) in queued {
            try db.run("""
                UPDATE journal SET status = 'failed', error = ?, completedAt = ? WHERE workflowId = ? AND seq = ?
                """, message, now, workflowId, stepId)
            try db.run("DELETE FROM tasks WHERE workflowId = ? AND stepId = ?", workflowId, stepId)
            workflows.insert(workflowId)
            if try enqueueReplay(db, workflowId: workflowId, trigger: .operator, now: now, effects: &effects) {
                replayEntries += 1
            }
        }
        return try result(db, AffectedCounts(tasks: queued.count, workflows: workflows.count, replayEntries: replayEntries))
    }

    func bumpEpoch(_ db: Database) throws -> OperationResult {
        try db.run("UPDATE shard_meta SET epoch = epoch + 1, executorEnabled = 0 WHERE id = 1")
        return try result(db, AffectedCounts())
    }

    func resumeExecutors(_ db: Database) throws -> OperationResult {
        try db.run("UPDATE shard_meta SET executorEnabled = 1 WHERE id = 1")
        let epoch = try StoreQueries.meta(db)?.epoch ?? 0
        // The in-memory executor epoch changes with the transaction; a rollback only leaves an
        // executor that finds the store disabled at its next claim and stops.
        runtime.withLock { $0.executorEpoch = epoch }
        return try result(db, AffectedCounts())
    }

    func clearReplayQueue(_ db: Database) throws -> OperationResult {
        let workflows = try StoreQueries.count(db, "SELECT COUNT(*) FROM replay_queue")
        try db.run("DELETE FROM replay_queue")
        return try result(db, AffectedCounts(tasks: 0, workflows: workflows, replayEntries: workflows))
    }

    func clearTaskQueue(_ db: Database) throws -> OperationResult {
        let tasks = try StoreQueries.count(db, "SELECT COUNT(*) FROM tasks WHERE state = 'queued'")
        let workflows = try StoreQueries.count(db, "SELECT COUNT(DISTINCT workflowId) FROM tasks WHERE state = 'queued'")
        try db.run("DELETE FROM tasks WHERE state = 'queued'")
        return try result(db, AffectedCounts(tasks: tasks, workflows: workflows, replayEntries: 0))
    }

    func cancel(_ db: Database, workflowId: String, reason: String?, now: Int64, effects: inout Effects) throws -> OperationResult {
        guard let workflow = try loadWorkflow(db, workflowId), workflow.status == "running" else {
            return try result(db, AffectedCounts())
        }
        // A kept body of a canceled workflow is never resumed: free it now (safe even if this rolls back).
        executions.evict(workflowId)
        let tasks = Int(try db.int("SELECT COUNT(*) FROM tasks WHERE workflowId = ?", workflowId) ?? 0)
        let error = WorkflowErrorInfo(message: reason.map { "canceled: \($0)" } ?? "canceled", step: nil)
        let generation = workflow.generation + 1
        try db.run("UPDATE workflows SET generation = ? WHERE id = ?", generation, workflowId)
        try completeWorkflow(db, workflow: workflow, status: .canceled, result: nil, error: error, now: now, effects: &effects)
        try appendReplayEvent(db, workflow: workflow, generation: generation, trigger: .cancel, consumed: [],
                              scheduled: [], outcome: .completed, now: now, effects: &effects)
        return try result(db, AffectedCounts(tasks: tasks, workflows: 1, replayEntries: 0))
    }

    func deliverEvent(_ db: Database, workflowId: String, name: String, value: JSONValue, now: Int64,
                      effects: inout Effects) throws -> OperationResult {
        if let workflow = try loadWorkflow(db, workflowId), workflow.status != "running" {
            return try result(db, AffectedCounts())  // finished: nobody will ask for it
        }
        try db.run("INSERT INTO events (workflowId, name, value, receivedAt) VALUES (?, ?, ?, ?)",
                   workflowId, name, value.jsonString(), now)
        let delivered = try matchEvent(db, workflowId: workflowId, name: name, now: now, effects: &effects)
        return try result(db, AffectedCounts(tasks: 0, workflows: delivered ? 1 : 0, replayEntries: delivered ? 1 : 0))
    }
}
