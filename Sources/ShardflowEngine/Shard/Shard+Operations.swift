import GRDB
import ShardflowJSON

/// Operator operations. Control messages run the same transaction bodies from `ingest`.
extension Shard {
    /// Every queued task (not a running one) fails with `failed by operator: <reason>`; each affected
    /// workflow gets a replay row in the same transaction, so it proceeds and none is left stuck.
    public func failPendingTasks(reason: String) async throws -> OperationResult {
        try operation { tx in try tx.failPendingTasks(reason: reason) }
    }

    /// Raises the epoch: the running executor stops claiming, its in-flight steps finish and record.
    /// No executor runs again until `resumeExecutors`. Ingestion goes on.
    public func bumpEpoch() async throws -> OperationResult {
        try operation { tx in try tx.bumpEpoch() }
    }

    /// Starts an executor at the current epoch; does nothing if one is running.
    public func resumeExecutors() async throws -> OperationResult {
        try operation { tx in try tx.resumeExecutors() }
    }

    /// Deletes every replay-queue row (operational recovery); the result counts the stuck workflows left.
    public func clearReplayQueue() async throws -> OperationResult {
        try operation { tx in try tx.clearReplayQueue() }
    }

    /// Deletes every queued task (operational recovery); the result counts the stuck workflows left.
    public func clearTaskQueue() async throws -> OperationResult {
        try operation { tx in try tx.clearTaskQueue() }
    }

    /// Fails parked workflows on purpose (all of the shard's, or the one named).
    public func failParkedWorkflows(workflowId: String? = nil, reason: String) async throws -> OperationResult {
        try operation { tx in try tx.failParkedWorkflows(workflowId: workflowId, reason: reason) }
    }

    /// Completes a running workflow as `canceled`; queued steps are dropped, running ones finish unused.
    public func cancel(workflowId: String, reason: String? = nil) async throws -> OperationResult {
        try operation { tx in try tx.cancel(workflowId: workflowId, reason: reason, answer: true) }
    }

    /// Delivers a named event (kept until the workflow waits for it).
    public func deliverEvent(workflowId: String, name: String, value: JSONValue) async throws -> OperationResult {
        try operation { tx in try tx.deliverEvent(workflowId: workflowId, name: name, value: value, answer: true) }
    }

    private func operation(_ body: (ShardTransaction) throws -> OperationResult) throws -> OperationResult {
        let result = try transaction(body)
        // An operation may change what can be claimed (epoch, enabled) or replayed: look again.
        signals.lookAgain()
        return result
    }
}

// MARK: transaction bodies

extension ShardTransaction {
    /// The answer to an operation: what it affected, the epoch, and the stuck workflows left.
    func result(_ affected: AffectedCounts) throws -> OperationResult {
        OperationResult(affected: affected, epoch: try StoreQueries.meta(connection)?.epoch ?? 0,
                        stuckWorkflows: try StoreQueries.stuckCount(connection))
    }

    /// `result`, or an empty answer where nobody reads it (a cancel or event read from Kafka): it
    /// spares a scan of the running workflows per message.
    private func result(_ affected: AffectedCounts, answer: Bool) throws -> OperationResult {
        answer ? try result(affected) : OperationResult(affected: affected, epoch: 0, stuckWorkflows: 0)
    }

    func failPendingTasks(reason: String) throws -> OperationResult {
        let queued = try rows("SELECT workflowId, seq FROM journal WHERE taskState = 'queued' ORDER BY fifoAt, workflowId, seq") {
            row in (workflowId: row[0] as String, stepId: row[1] as Int)
        }
        var workflows = Set<String>()
        var replayEntries = 0
        let message = "failed by operator: \(reason)"
        for (workflowId, stepId) in queued {
            try run("""
                UPDATE journal SET status = 'failed', error = ?, completedAt = ?, taskState = NULL, input = NULL
                WHERE workflowId = ? AND seq = ?
                """, message, now, workflowId, stepId)
            workflows.insert(workflowId)
            if try enqueueReplay(workflowId: workflowId, trigger: .operator) {
                replayEntries += 1
            }
        }
        return try result(AffectedCounts(tasks: queued.count, workflows: workflows.count, replayEntries: replayEntries))
    }

    func bumpEpoch() throws -> OperationResult {
        try run("UPDATE shard_meta SET epoch = epoch + 1, executorEnabled = 0 WHERE id = 1")
        return try result(AffectedCounts())
    }

    func resumeExecutors() throws -> OperationResult {
        try run("UPDATE shard_meta SET executorEnabled = 1 WHERE id = 1")
        let epoch = try StoreQueries.meta(connection)?.epoch ?? 0
        // The executor claims at the epoch once this commits.
        effects.resumedEpoch = epoch
        return try result(AffectedCounts())
    }

    func clearReplayQueue() throws -> OperationResult {
        let workflows = try count("SELECT COUNT(*) FROM replay_queue")
        try run("DELETE FROM replay_queue")
        return try result(AffectedCounts(tasks: 0, workflows: workflows, replayEntries: workflows))
    }

    func clearTaskQueue() throws -> OperationResult {
        let tasks = try count("SELECT COUNT(*) FROM journal WHERE taskState = 'queued'")
        let workflows = try count("SELECT COUNT(DISTINCT workflowId) FROM journal WHERE taskState = 'queued'")
        try run("UPDATE journal SET taskState = NULL, input = NULL WHERE taskState = 'queued'")
        return try result(AffectedCounts(tasks: tasks, workflows: workflows, replayEntries: 0))
    }

    func cancel(workflowId: String, reason: String?, answer: Bool) throws -> OperationResult {
        guard let workflow = try loadWorkflow(workflowId), workflow.status == .running else {
            return try result(AffectedCounts(), answer: answer)
        }
        // A kept body of a canceled workflow is never resumed.
        executions.evicted.insert(workflowId)
        let tasks = try count("SELECT COUNT(*) FROM journal WHERE workflowId = ? AND taskState IS NOT NULL", workflowId)
        let error = WorkflowErrorInfo(message: reason.map { "canceled: \($0)" } ?? "canceled", step: nil)
        let generation = workflow.generation + 1
        try run("UPDATE workflows SET generation = ? WHERE id = ?", generation, workflowId)
        try completeWorkflow(workflow, status: .canceled, result: nil, error: error)
        try appendReplayEvent(workflow, generation: generation, trigger: .cancel, consumed: [], scheduled: [], outcome: .completed)
        return try result(AffectedCounts(tasks: tasks, workflows: 1, replayEntries: 0), answer: answer)
    }

    func deliverEvent(workflowId: String, name: String, value: JSONValue, answer: Bool) throws -> OperationResult {
        if let workflow = try loadWorkflow(workflowId), workflow.status != .running {
            return try result(AffectedCounts(), answer: answer)  // finished: nobody will ask for it
        }
        // Raised before the row is written, so no completion can miss it (a rollback leaves it raised).
        signals.storedEvents.raise()
        try run("INSERT INTO events (workflowId, name, value, receivedAt) VALUES (?, ?, ?, ?)",
                workflowId, name, value.jsonString(), now)
        let delivered = try matchEvent(workflowId: workflowId, name: name)
        return try result(AffectedCounts(tasks: 0, workflows: delivered ? 1 : 0, replayEntries: delivered ? 1 : 0),
                          answer: answer)
    }

    /// Fails parked workflows on purpose (all of the shard's, or the one named): each completes `failed`
    /// with the operator's reason and why it was parked.
    func failParkedWorkflows(workflowId: String?, reason: String) throws -> OperationResult {
        let ids: [String]
        if let workflowId {
            ids = try rows("SELECT id FROM workflows WHERE id = ? AND parkedReason IS NOT NULL AND status = 'running'",
                           workflowId) { $0[0] as String }
        } else {
            ids = try rows("SELECT id FROM workflows WHERE parkedReason IS NOT NULL AND status = 'running' ORDER BY createdAt, id") {
                $0[0] as String
            }
        }
        var tasks = 0
        for id in ids {
            guard let workflow = try loadWorkflow(id) else { continue }
            executions.evicted.insert(id)
            tasks += try count("SELECT COUNT(*) FROM journal WHERE workflowId = ? AND taskState IS NOT NULL", id)
            var row = workflow
            row.generation += 1
            try run("UPDATE workflows SET generation = ? WHERE id = ?", row.generation, id)
            let message = "failed by operator while parked: \(reason) (parked because: \(workflow.parkedReason ?? "unknown"))"
            try completeWorkflow(row, status: .failed, result: nil, error: WorkflowErrorInfo(message: message, step: nil))
            try appendReplayEvent(row, generation: row.generation, trigger: .operator, consumed: [], scheduled: [], outcome: .completed)
        }
        return try result(AffectedCounts(tasks: tasks, workflows: ids.count, replayEntries: 0))
    }
}
