import ShardflowSupport
import GRDB
import ShardflowJSON

/// Read-only queries shared by `Shard` and `ShardInspector`.
enum StoreQueries {
    // Stuck (I1 says none): running, not parked (a parked workflow is queued again at its shard's next
    // open, see `ShardReplayer.retryParked`), and nothing that would move it on.
    static func stuckCount(_ db: StoreConnection) throws -> Int {
        try db.count("""
            SELECT COUNT(*) FROM workflows w
            WHERE w.status = 'running' AND w.parkedReason IS NULL
            AND NOT EXISTS (SELECT 1 FROM replay_queue r WHERE r.workflowId = w.id)
            AND NOT EXISTS (SELECT 1 FROM journal t WHERE t.workflowId = w.id AND t.taskState IS NOT NULL)
            AND NOT EXISTS (SELECT 1 FROM timers m WHERE m.workflowId = w.id)
            AND NOT EXISTS (SELECT 1 FROM event_waits e WHERE e.workflowId = w.id)
            """)
    }

    static func stuckIds(_ db: StoreConnection, limit: Int = 10_000) throws -> [String] {
        try db.rows("""
            SELECT w.id FROM workflows w
            WHERE w.status = 'running' AND w.parkedReason IS NULL
            AND NOT EXISTS (SELECT 1 FROM replay_queue r WHERE r.workflowId = w.id)
            AND NOT EXISTS (SELECT 1 FROM journal t WHERE t.workflowId = w.id AND t.taskState IS NOT NULL)
            AND NOT EXISTS (SELECT 1 FROM timers m WHERE m.workflowId = w.id)
            AND NOT EXISTS (SELECT 1 FROM event_waits e WHERE e.workflowId = w.id)
            ORDER BY w.id LIMIT ?
            """, limit) { $0[0] as String }
    }

    static func meta(_ db: StoreConnection) throws -> (shard: Int, epoch: Int64, executorEnabled: Bool)? {
        try db.row("SELECT shard, epoch, executorEnabled FROM shard_meta WHERE id = 1") { row in
            (shard: row[0] as Int, epoch: row[1] as Int64, executorEnabled: row[2] as Bool)
        }
    }

    static func logState(_ db: StoreConnection) throws -> ShardLogLocalState {
        try db.row("SELECT checkpointOffset, checkpointEpoch, checkpointSeq, lastSeq, writerEpoch FROM shard_log_state WHERE id = 1") { row in
            ShardLogLocalState(checkpoint: ShardLogPosition(offset: row[0], epoch: row[1], seq: row[2]),
                               lastSeq: row[3], writerEpoch: row[4])
        } ?? .empty
    }

    static func nextOffset(_ db: StoreConnection, _ stream: InboundMessage.Stream) throws -> Int64? {
        try db.int("SELECT nextOffset FROM consumed_offsets WHERE stream = ?", stream)
    }

    /// When the oldest outbox row was written (nil: empty, or a row from before that was recorded).
    static func oldestOutboxCreatedAt(_ db: StoreConnection) throws -> Int64? {
        try db.int("SELECT createdAt FROM outbox ORDER BY id LIMIT 1").flatMap { $0 > 0 ? $0 : nil }
    }

    static func quarantinedIds(_ db: StoreConnection, limit: Int = 10_000) throws -> [String] {
        try db.rows("SELECT id FROM workflows WHERE quarantined = 1 ORDER BY id LIMIT ?", limit) { $0[0] as String }
    }

    static func parked(_ db: StoreConnection, limit: Int = 10_000) throws -> [ParkedWorkflow] {
        try db.rows("""
            SELECT id, name, version, parkedReason, parkedAt FROM workflows
            WHERE parkedReason IS NOT NULL AND status = 'running' ORDER BY parkedAt, id LIMIT ?
            """, limit) { row in
            ParkedWorkflow(workflowId: row[0], workflow: row[1], version: row[2], reason: row[3], parkedAt: row[4] ?? 0)
        }
    }

    static func stats(_ db: StoreConnection, shard: Int, executorState: ExecutorState?) throws -> ShardStats {
        let meta = try meta(db)
        var byStatus: [String: Int] = [:]
        for (status, count) in try workflowsByStatus(db) { byStatus[status] = count }
        let state = executorState ?? ((meta?.executorEnabled ?? true) ? .enabled : .stopped)
        return ShardStats(
            shard: meta?.shard ?? shard,
            epoch: meta?.epoch ?? 0,
            executorState: state,
            queuedTasks: try db.count("SELECT COUNT(*) FROM journal WHERE taskState = 'queued'"),
            runningTasks: try db.count("SELECT COUNT(*) FROM journal WHERE taskState = 'running'"),
            replayQueueDepth: try db.count("SELECT COUNT(*) FROM replay_queue"),
            outboxDepth: try db.count("SELECT COUNT(*) FROM outbox"),
            timers: try db.count("SELECT COUNT(*) FROM timers"),
            eventWaits: try db.count("SELECT COUNT(*) FROM event_waits"),
            workflowsByStatus: byStatus,
            oldestQueuedCreatedAt: try db.int("SELECT MIN(fifoAt) FROM journal WHERE taskState = 'queued'"),
            oldestOutboxCreatedAt: try oldestOutboxCreatedAt(db),
            quarantinedWorkflows: try db.count("SELECT COUNT(*) FROM workflows WHERE quarantined = 1"),
            parkedWorkflows: try db.count("SELECT COUNT(*) FROM workflows WHERE parkedReason IS NOT NULL"),
            nextWorkflowsOffset: try nextOffset(db, .workflows),
            nextControlOffset: try nextOffset(db, .control))
    }

    static func audit(_ db: StoreConnection, shard: Int, concurrencyBound: Int, outboxAgeLimit: Duration, now: Int64) throws -> AuditReport {
        // Rows of a workflow that is not running (or does not exist).
        var orphans: [String: Int] = [:]
        orphans["tasks"] = try db.count("""
            SELECT COUNT(*) FROM journal x
            WHERE x.taskState IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = x.workflowId AND w.status = 'running')
            """)
        orphans["replay_queue"] = try db.count("""
            SELECT COUNT(*) FROM replay_queue x
            WHERE NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = x.workflowId AND w.status = 'running')
            """)
        orphans["timers"] = try db.count("""
            SELECT COUNT(*) FROM timers x WHERE NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = x.workflowId AND w.status = 'running')
            """)
        orphans["event_waits"] = try db.count("""
            SELECT COUNT(*) FROM event_waits x
            WHERE NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = x.workflowId AND w.status = 'running')
            """)
        orphans["journal"] = try db.count(
            "SELECT COUNT(*) FROM journal x WHERE NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = x.workflowId)")
        // A task is the pending journal entry of its step: one whose entry is resolved is left over.
        orphans["tasks_of_resolved_entries"] = try db.count(
            "SELECT COUNT(*) FROM journal WHERE taskState IS NOT NULL AND status <> 'pending'")
        return AuditReport(
            shard: try meta(db)?.shard ?? shard,
            stuckWorkflows: try stuckIds(db),
            runningTasks: try db.count("SELECT COUNT(*) FROM journal WHERE taskState = 'running'"),
            concurrencyBound: concurrencyBound,
            orphanRows: orphans,
            oldestOutboxAgeMilliseconds: try oldestOutboxCreatedAt(db).map { max(0, now - $0) },
            outboxAgeLimitMilliseconds: outboxAgeLimit.milliseconds,
            quarantinedWorkflows: try quarantinedIds(db),
            parkedWorkflows: try parked(db),
            undecodableRows: try undecodableRows(db))
    }

    /// Workflows by status (as stored, so a value this version does not know is counted too), from the two
    /// partial indexes: the running ones, and the finished ones, whose index holds their status.
    static func workflowsByStatus(_ db: StoreConnection) throws -> [(value: String, rows: Int)] {
        var groups = try db.rows("SELECT status, COUNT(*) FROM workflows WHERE status <> 'running' GROUP BY status") {
            (value: $0[0] as String, rows: $0[1] as Int)
        }
        let running = try db.count("SELECT COUNT(*) FROM workflows WHERE status = 'running'")
        if running > 0 { groups.append((value: WorkflowStatus.running.rawValue, rows: running)) }
        return groups
    }

    /// Rows whose typed columns hold a value this version does not know, by `table.column`.
    static func undecodableRows(_ db: StoreConnection) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        func tally<E: StoreEnum & CaseIterable>(_ type: E.Type, _ groups: [(value: String, rows: Int)]) {
            let known = Set(E.allCases.map(\.rawValue))
            let unknown = groups.filter { !known.contains($0.value) }.reduce(0) { $0 + $1.rows }
            if unknown > 0 { counts[E.storeColumn] = unknown }
        }
        func group(_ row: StoreRow) -> (value: String, rows: Int) { (row[0], row[1]) }
        tally(OutboxTopic.self, try db.rows("SELECT topic, COUNT(*) FROM outbox GROUP BY topic", as: group))
        tally(WorkflowStatus.self, try workflowsByStatus(db))
        tally(TaskState.self, try db.rows("SELECT taskState, COUNT(*) FROM journal WHERE taskState IS NOT NULL GROUP BY taskState",
                                          as: group))
        tally(JournalEntry.Kind.self, try db.rows("SELECT kind, COUNT(*) FROM journal GROUP BY kind", as: group))
        tally(JournalEntry.Status.self, try db.rows("SELECT status, COUNT(*) FROM journal GROUP BY status", as: group))
        tally(ReplayTrigger.self, try db.rows("SELECT trigger, COUNT(*) FROM replay_queue GROUP BY trigger", as: group))
        return counts
    }

    static func workflowDetail(_ db: StoreConnection, workflowId: String) throws -> WorkflowDetail? {
        let journal = try db.rows("""
            SELECT seq, kind, name, status, output, error, attempts, completedAt, round FROM journal WHERE workflowId = ? ORDER BY seq
            """, workflowId) { entry in
            WorkflowDetail.JournalRow(
                stepId: entry[0], kind: entry[1], name: entry[2], status: entry[3],
                output: (entry[4] as String?).flatMap { try? JSONValue.parse(Array($0.utf8)) },
                error: entry[5], attempts: entry[6], completedAt: entry[7], round: (entry[8] as Int?).flatMap { $0 > 0 ? $0 : nil })
        }
        let timers = try db.rows("SELECT seq, fireAt FROM timers WHERE workflowId = ? ORDER BY seq", workflowId) {
            WorkflowDetail.PendingTimer(stepId: $0[0], fireAt: $0[1])
        }
        let waits = try db.rows("SELECT seq, name FROM event_waits WHERE workflowId = ? ORDER BY seq", workflowId) {
            WorkflowDetail.EventWait(stepId: $0[0], name: $0[1])
        }
        let tasks = try db.rows("""
            SELECT seq, name, taskState, attempts, readyAt FROM journal WHERE workflowId = ? AND taskState IS NOT NULL ORDER BY seq
            """,
                                workflowId) { task in
            WorkflowDetail.PendingTask(stepId: task[0], name: task[1], state: task[2], attempt: task[3], readyAt: task[4])
        }
        let inReplayQueue = try db.int("SELECT 1 FROM replay_queue WHERE workflowId = ?", workflowId) != nil
        return try db.row("""
            SELECT id, name, status, args, createdAt, completedAt, result, errorMessage, errorStep, generation,
                   crashes, quarantined, version, parkedReason, parkedAt
            FROM workflows WHERE id = ?
            """, workflowId) { row in
            let errorMessage: String? = row[7]
            return WorkflowDetail(
                workflowId: row[0], workflow: row[1], status: row[2],
                args: (try? JSONValue.parse(Array((row[3] as String).utf8))) ?? .null,
                createdAt: row[4], completedAt: row[5],
                result: (row[6] as String?).flatMap { try? JSONValue.parse(Array($0.utf8)) },
                error: errorMessage.map { WorkflowErrorInfo(message: $0, step: row[8]) },
                generation: row[9], journal: journal, pendingTasks: tasks, inReplayQueue: inReplayQueue,
                crashes: row[10], quarantined: row[11], version: row[12], parkedReason: row[13], parkedAt: row[14],
                timers: timers, eventWaits: waits)
        }
    }

    /// What an operator looks at first: stuck and parked workflows, recent failures, steps being retried.
    static func lists(_ db: StoreConnection, shard: Int, limit: Int) throws -> ShardLists {
        // `status <> 'running'` is implied, but stated: SQLite uses a partial index only for a query that
        // names its condition (here `workflows_finished`, newest first).
        let failed = try db.rows("""
            SELECT id, name, errorMessage, errorStep, completedAt FROM workflows
            WHERE status <> 'running' AND status = 'failed' AND completedAt IS NOT NULL ORDER BY completedAt DESC LIMIT ?
            """, limit) { row in
            ShardLists.Failed(workflowId: row[0], workflow: row[1], error: row[2], step: row[3], completedAt: row[4])
        }
        let retrying = try db.rows("""
            SELECT workflowId, seq, name, attempts, readyAt, error FROM journal
            WHERE taskState = 'queued' AND attempts > 0 ORDER BY readyAt LIMIT ?
            """, limit) { row in
            ShardLists.Retrying(workflowId: row[0], stepId: row[1], name: row[2], attempts: row[3], readyAt: row[4], lastError: row[5])
        }
        return ShardLists(shard: try meta(db)?.shard ?? shard, stuck: try stuckIds(db, limit: limit),
                          parked: try parked(db, limit: limit), failedRecently: failed, retrying: retrying)
    }
}
