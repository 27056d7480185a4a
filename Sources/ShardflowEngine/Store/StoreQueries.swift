import GRDB

/// Read-only queries shared by `Shard` and `ShardInspector`.
enum StoreQueries {
    static let stuckCondition = """
        w.status = 'running'
        AND NOT EXISTS (SELECT 1 FROM replay_queue r WHERE r.workflowId = w.id)
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.workflowId = w.id)
        AND NOT EXISTS (SELECT 1 FROM timers m WHERE m.workflowId = w.id)
        AND NOT EXISTS (SELECT 1 FROM event_waits e WHERE e.workflowId = w.id)
        """

    static func stuckCount(_ db: Database) throws -> Int {
        Int(try db.int("SELECT COUNT(*) FROM workflows w WHERE \(stuckCondition)") ?? 0)
    }

    static func stuckIds(_ db: Database, limit: Int = 10_000) throws -> [String] {
        try String.fetchAll(db.cachedStatement(sql: "SELECT w.id FROM workflows w WHERE \(stuckCondition) ORDER BY w.id LIMIT ?"),
                            arguments: [limit])
    }

    static func meta(_ db: Database) throws -> (shard: Int, epoch: Int64, executorEnabled: Bool)? {
        guard let row = try db.row("SELECT shard, epoch, executorEnabled FROM shard_meta WHERE id = 1") else { return nil }
        return (row["shard"], row["epoch"], (row["executorEnabled"] as Int64) != 0)
    }

    static func nextOffset(_ db: Database, _ stream: InboundMessage.Stream) throws -> Int64? {
        try db.int("SELECT nextOffset FROM consumed_offsets WHERE stream = ?", [stream.rawValue])
    }

    static func count(_ db: Database, _ sql: String) throws -> Int { Int(try db.int(sql) ?? 0) }

    static func stats(_ db: Database, shard: Int, executorState: ExecutorState?) throws -> ShardStats {
        let meta = try meta(db)
        var byStatus: [String: Int] = [:]
        for row in try db.rows("SELECT status, COUNT(*) AS n FROM workflows GROUP BY status") {
            byStatus[row["status"]] = row["n"]
        }
        let state = executorState ?? ((meta?.executorEnabled ?? true) ? .enabled : .stopped)
        return ShardStats(
            shard: meta?.shard ?? shard,
            epoch: meta?.epoch ?? 0,
            executorState: state,
            queuedTasks: try count(db, "SELECT COUNT(*) FROM tasks WHERE state = 'queued'"),
            runningTasks: try count(db, "SELECT COUNT(*) FROM tasks WHERE state = 'running'"),
            replayQueueDepth: try count(db, "SELECT COUNT(*) FROM replay_queue"),
            outboxDepth: try count(db, "SELECT COUNT(*) FROM outbox"),
            timers: try count(db, "SELECT COUNT(*) FROM timers"),
            eventWaits: try count(db, "SELECT COUNT(*) FROM event_waits"),
            workflowsByStatus: byStatus,
            oldestQueuedCreatedAt: try db.int("SELECT MIN(createdAt) FROM tasks WHERE state = 'queued'"),
            nextWorkflowsOffset: try nextOffset(db, .workflows),
            nextControlOffset: try nextOffset(db, .control))
    }

    static func audit(_ db: Database, shard: Int, concurrencyBound: Int) throws -> AuditReport {
        let finished = "NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = x.workflowId AND w.status = 'running')"
        var orphans: [String: Int] = [:]
        orphans["tasks"] = try count(db, "SELECT COUNT(*) FROM tasks x WHERE \(finished)")
        orphans["replay_queue"] = try count(db, "SELECT COUNT(*) FROM replay_queue x WHERE \(finished)")
        orphans["timers"] = try count(db, "SELECT COUNT(*) FROM timers x WHERE \(finished)")
        orphans["event_waits"] = try count(db, "SELECT COUNT(*) FROM event_waits x WHERE \(finished)")
        orphans["journal"] = try count(db,
            "SELECT COUNT(*) FROM journal x WHERE NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = x.workflowId)")
        orphans["tasks_without_journal_entry"] = try count(db,
            "SELECT COUNT(*) FROM tasks x WHERE NOT EXISTS (SELECT 1 FROM journal j WHERE j.workflowId = x.workflowId AND j.seq = x.stepId)")
        return AuditReport(
            shard: try meta(db)?.shard ?? shard,
            stuckWorkflows: try stuckIds(db),
            runningTasks: try count(db, "SELECT COUNT(*) FROM tasks WHERE state = 'running'"),
            concurrencyBound: concurrencyBound,
            orphanRows: orphans)
    }

    static func workflowDetail(_ db: Database, workflowId: String) throws -> WorkflowDetail? {
        guard let row = try db.row("SELECT * FROM workflows WHERE id = ?", [workflowId]) else { return nil }
        let journal = try db.rows("SELECT * FROM journal WHERE workflowId = ? ORDER BY seq", [workflowId]).map { entry in
            WorkflowDetail.JournalRow(
                stepId: entry["seq"], kind: entry["kind"], name: entry["name"], status: entry["status"],
                output: (entry["output"] as String?).flatMap { try? JSONValue.parse(Array($0.utf8)) },
                error: entry["error"], attempts: entry["attempts"], completedAt: entry["completedAt"])
        }
        let tasks = try db.rows("SELECT * FROM tasks WHERE workflowId = ? ORDER BY stepId", [workflowId]).map { task in
            WorkflowDetail.PendingTask(stepId: task["stepId"], name: task["name"], state: task["state"],
                                       attempt: task["attempt"], readyAt: task["readyAt"])
        }
        let errorMessage: String? = row["errorMessage"]
        return WorkflowDetail(
            workflowId: row["id"], workflow: row["name"], status: row["status"],
            args: (try? JSONValue.parse(Array((row["args"] as String).utf8))) ?? .null,
            createdAt: row["createdAt"], completedAt: row["completedAt"],
            result: (row["result"] as String?).flatMap { try? JSONValue.parse(Array($0.utf8)) },
            error: errorMessage.map { WorkflowErrorInfo(message: $0, step: row["errorStep"]) },
            generation: row["generation"], journal: journal, pendingTasks: tasks,
            inReplayQueue: try db.int("SELECT 1 FROM replay_queue WHERE workflowId = ?", [workflowId]) != nil)
    }
}
