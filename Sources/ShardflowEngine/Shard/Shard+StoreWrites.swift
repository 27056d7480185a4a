import Foundation
import GRDB
import ShardflowJSON

/// Writes shared by ingest, replay, executor, timers and operations. Each runs inside the caller's
/// transaction, so an effect and everything it implies commit together.
extension Shard {
    func appendOutbox(_ db: Database, topic: OutboxTopic, key: String, value: [UInt8], effects: inout Effects) throws {
        try db.run("INSERT INTO outbox (topic, key, value, createdAt) VALUES (?, ?, ?, ?)", topic.rawValue, key, value,
                   clock.nowMilliseconds())
        effects.outbox = true
    }

    /// I1: called in every transaction that leaves a workflow with something new to look at.
    /// Returns whether a row was added (a workflow has at most one).
    @discardableResult
    func enqueueReplay(_ db: Database, workflowId: String, trigger: ReplayTrigger, now: Int64, effects: inout Effects) throws -> Bool {
        try db.run("INSERT OR IGNORE INTO replay_queue (workflowId, trigger, enqueuedAt) VALUES (?, ?, ?)",
                   workflowId, trigger.rawValue, now)
        // Set before the commit, not after: a later transaction that finds the hint clear may rely on
        // the queue being empty (see `replay`). A rollback only leaves a spurious hint.
        replayHint.store(true, ordering: .releasing)
        effects.replay = true
        return db.changesCount > 0
    }

    /// Takes the next value of a shard-wide sequence (for stable outbound event ids).
    func nextSequence(_ db: Database, column: String) throws -> Int64 {
        // Taken in memory and written once when the transaction ends (see `Shard.write`).
        let current = sequences.withLock { $0.values[column] }
        let base = try current ?? (db.int("SELECT \(column) FROM shard_meta WHERE id = 1") ?? 0)
        return sequences.withLock { state in
            state.values[column] = base + 1
            state.dirty.insert(column)
            return base + 1
        }
    }

    func eventId(prefix: String, sequence: Int64) -> String {
        let digits = String(sequence)
        let padded = digits.count >= 9 ? digits : String(repeating: "0", count: 9 - digits.count) + digits
        return "\(prefix)-\(shard)-\(padded)"
    }

    struct WorkflowRow {
        let id: String
        let name: String
        let args: String
        let createdAt: Int64
        let startedAt: Int64
        let status: String
        var generation: Int
        /// The registered version of the workflow it runs (see `WorkflowRegistry`).
        let version: Int
        /// Why it is parked; nil when it is not.
        var parkedReason: String?
    }

    func loadWorkflow(_ db: Database, _ id: String) throws -> WorkflowRow? {
        try db.row("""
            SELECT id, name, args, createdAt, startedAt, status, generation, version, parkedReason FROM workflows WHERE id = ?
            """, id) { row in
            WorkflowRow(id: row[0], name: row[1], args: row[2], createdAt: row[3], startedAt: row[4], status: row[5],
                        generation: row[6], version: row[7], parkedReason: row[8])
        }
    }

    /// What a completing workflow may have left in the store, when the caller knows (see `replay`).
    struct CompletionLeftovers {
        /// Steps in its journal; nil: count them.
        var knownSteps: Int?
        /// Some operation is unresolved: a task, timer or event wait may remain.
        var mayHaveOpenOperations: Bool
        var mayBeInReplayQueue: Bool
    }

    /// Finishes a workflow: its result, its completion message, and nothing left queued for it.
    /// - Parameter leftovers: what may remain; nil when unknown (everything is looked up and removed).
    /// A result or error too large for the completion message turns the completion into a `failed` one
    /// that says so (the stored row says the same), so the message always fits.
    func completeWorkflow(_ db: Database, workflow: WorkflowRow, status: CompletionStatus, result: String?,
                          error: WorkflowErrorInfo?, now: Int64, leftovers: CompletionLeftovers? = nil,
                          effects: inout Effects) throws {
        let steps: Int
        if let known = leftovers?.knownSteps {
            steps = known
        } else {
            steps = Int(try db.int("SELECT COUNT(*) FROM journal WHERE workflowId = ? AND kind = 'step'", workflow.id) ?? 0)
        }
        var event = CompletionEvent(
            eventId: eventId(prefix: "c", sequence: try nextSequence(db, column: "completionSeq")), workflowId: workflow.id,
            workflow: workflow.name, shard: shard, status: status, result: result.flatMap { try? JSONValue.parse(Array($0.utf8)) },
            error: error, createdAt: workflow.createdAt, completedAt: now, steps: steps)
        var result = result
        var bytes = try event.contractJSON()
        // The size is checked on the encoded message (escapes included) before anything is written, so the
        // row and the message agree.
        if bytes.count + workflow.id.utf8.count > MessageLimits.maxOutboundBytes {
            let resultBytes = result?.utf8.count ?? 0
            let errorBytes = error.map { $0.message.utf8.count + ($0.step?.utf8.count ?? 0) } ?? 0
            let what = resultBytes >= errorBytes ? "result" : "error"
            var message = "the workflow's \(what) is \(max(resultBytes, errorBytes)) bytes, too large for a completion message (limit \(MessageLimits.maxOutboundBytes) bytes)"
            if let original = error?.message {
                message += "; it begins: " + original.prefix(utf8Bytes: 1000)
            }
            metrics.oversizedOutputs.increment()
            logger.warning("workflow \(workflow.id): \(message)")
            event.status = .failed
            event.result = nil
            event.error = WorkflowErrorInfo(message: message, step: error?.step.map { $0.prefix(utf8Bytes: 200) })
            result = nil
            bytes = try event.contractJSON()
        }
        try db.run("""
            UPDATE workflows SET status = ?, result = ?, errorMessage = ?, errorStep = ?, completedAt = ?, parkedReason = NULL
            WHERE id = ?
            """, event.status.rawValue, result, event.error?.message, event.error?.step, now, workflow.id)
        if leftovers?.mayHaveOpenOperations ?? true {
            try db.run("DELETE FROM tasks WHERE workflowId = ?", workflow.id)
            try db.run("DELETE FROM timers WHERE workflowId = ?", workflow.id)
            try db.run("DELETE FROM event_waits WHERE workflowId = ?", workflow.id)
        }
        // Events sent to it but never waited for; nothing in memory knows of them.
        try db.run("DELETE FROM events WHERE workflowId = ?", workflow.id)
        if leftovers?.mayBeInReplayQueue ?? true {
            try db.run("DELETE FROM replay_queue WHERE workflowId = ?", workflow.id)
        }
        try appendOutbox(db, topic: .completions, key: workflow.id, value: bytes, effects: &effects)
        metrics.completed(event.status)
        metrics.workflowDuration.recordMilliseconds(max(0, now - workflow.startedAt))
    }

    func appendReplayEvent(_ db: Database, workflow: WorkflowRow, generation: Int, trigger: ReplayTrigger,
                           consumed: [ReplayEvent.Consumed], scheduled: [ReplayEvent.Scheduled],
                           outcome: ReplayEvent.Outcome, parkedReason: String? = nil, now: Int64, effects: inout Effects) throws {
        let sequence = try nextSequence(db, column: "replaySeq")
        var event = ReplayEvent(
            eventId: eventId(prefix: "r", sequence: sequence), workflowId: workflow.id, workflow: workflow.name,
            shard: shard, generation: generation, at: now, trigger: trigger, consumed: consumed,
            scheduled: scheduled, outcome: outcome)
        event.version = workflow.version
        event.parkedReason = parkedReason
        var bytes = try event.contractJSON()
        if bytes.count + workflow.id.utf8.count > MessageLimits.maxOutboundBytes {
            // A replay that consumed or scheduled very many steps: the lists are cut to fit, and say so.
            event.consumedCount = consumed.count
            event.scheduledCount = scheduled.count
            var keep = 1000
            repeat {
                event.consumed = Array(consumed.prefix(keep))
                event.scheduled = Array(scheduled.prefix(keep))
                bytes = try event.contractJSON()
                keep /= 4
            } while bytes.count + workflow.id.utf8.count > MessageLimits.maxOutboundBytes && keep > 0
            metrics.oversizedOutputs.increment()
        }
        try appendOutbox(db, topic: .replays, key: workflow.id, value: bytes, effects: &effects)
    }

    /// Delivers the oldest stored event named `name` to the workflow's oldest wait for it, if both exist.
    /// Returns whether one was delivered.
    @discardableResult
    func matchEvent(_ db: Database, workflowId: String, name: String, now: Int64, effects: inout Effects) throws -> Bool {
        guard let seq = try db.row("SELECT seq FROM event_waits WHERE workflowId = ? AND name = ? ORDER BY seq LIMIT 1",
                                   workflowId, name, as: { $0[0] as Int }),
              let (eventId, value) = try db.row("SELECT id, value FROM events WHERE workflowId = ? AND name = ? ORDER BY id LIMIT 1",
                                                workflowId, name, as: { ($0[0] as Int64, $0[1] as String) })
        else { return false }
        try db.run("""
            UPDATE journal SET status = 'received', output = ?, completedAt = ?, attempts = 1
            WHERE workflowId = ? AND seq = ?
            """, value, now, workflowId, seq)
        try db.run("DELETE FROM event_waits WHERE workflowId = ? AND seq = ?", workflowId, seq)
        try db.run("DELETE FROM timers WHERE workflowId = ? AND seq = ?", workflowId, seq)
        try db.run("DELETE FROM events WHERE id = ?", eventId)
        try enqueueReplay(db, workflowId: workflowId, trigger: .event, now: now, effects: &effects)
        return true
    }
}
