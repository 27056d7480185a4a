import ShardflowSupport
import Foundation
import GRDB
import ShardflowJSON

/// Writes shared by ingest, replay, executor, timers and operations. Each runs inside the caller's
/// transaction, so an effect and everything it implies commit together.
extension ShardTransaction {
    func appendOutbox(topic: OutboxTopic, key: String, value: [UInt8]) throws {
        try run("INSERT INTO outbox (topic, key, value, createdAt) VALUES (?, ?, ?, ?)", topic, key, value, now)
        effects.lastOutboxId = connection.db.lastInsertedRowID
        effects.outbox = true
    }

    /// I1: called in every transaction that leaves a workflow with something new to look at.
    /// Returns whether a row was added (a workflow has at most one).
    @discardableResult
    func enqueueReplay(workflowId: String, trigger: ReplayTrigger) throws -> Bool {
        try run("INSERT OR IGNORE INTO replay_queue (workflowId, trigger, enqueuedAt) VALUES (?, ?, ?)",
                workflowId, trigger, now)
        // Raised before the commit, not after: a later transaction that finds the hint clear may rely on
        // the queue being empty (see `ShardReplayer.replay`). A rollback only leaves a spurious hint.
        signals.replay.raise()
        effects.replay = true
        return changes > 0
    }

    /// An outbound event id: `c-7-000000042` (the prefix, the shard, the sequence).
    func eventId(prefix: String, sequence: Int64) -> String {
        "\(prefix)-\(shard)-\(String(zeroPadded: sequence, width: 9))"
    }

    func loadWorkflow(_ id: String) throws -> WorkflowRow? {
        try row("""
            SELECT id, name, args, createdAt, startedAt, status, generation, version, parkedReason FROM workflows WHERE id = ?
            """, id) { row in try WorkflowRow(row, from: 0) }
    }

    /// Finishes a workflow: its result, its completion message, and nothing left queued for it.
    /// - Parameter result: the body's result as `JSONCoding` encoded it (so it goes into the message as it
    ///   is, not parsed again).
    /// - Parameter leftovers: what may remain; nil when unknown (everything is looked up and removed).
    /// A result or error too large for the completion message turns the completion into a `failed` one
    /// that says so (the stored row says the same), so the message always fits.
    func completeWorkflow(_ workflow: WorkflowRow, status: CompletionStatus, result: String?,
                          error: WorkflowErrorInfo?, leftovers: CompletionLeftovers? = nil) throws {
        let steps: Int
        if let known = leftovers?.knownSteps {
            steps = known
        } else {
            steps = try count("SELECT COUNT(*) FROM journal WHERE workflowId = ? AND kind = 'step'", workflow.id)
        }
        var event = CompletionEvent(
            eventId: eventId(prefix: "c", sequence: nextCompletionSequence()), workflowId: workflow.id,
            workflow: workflow.name, shard: shard, status: status, result: nil,
            error: error, createdAt: workflow.createdAt, completedAt: now, steps: steps)
        var result = result
        var bytes = event.contractJSON(encodedResult: result)
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
        try run("""
            UPDATE workflows SET status = ?, result = ?, errorMessage = ?, errorStep = ?, completedAt = ?, parkedReason = NULL
            WHERE id = ?
            """, WorkflowStatus(event.status), result, event.error?.message, event.error?.step, now, workflow.id)
        if leftovers?.mayHaveOpenOperations ?? true {
            try run("UPDATE journal SET taskState = NULL, input = NULL WHERE workflowId = ? AND taskState IS NOT NULL", workflow.id)
            try run("DELETE FROM timers WHERE workflowId = ?", workflow.id)
            try run("DELETE FROM event_waits WHERE workflowId = ?", workflow.id)
        }
        // Events sent to it but never waited for; nothing in memory knows of them (the hint only says
        // whether the shard holds any at all).
        if signals.storedEvents.isRaised {
            try run("DELETE FROM events WHERE workflowId = ?", workflow.id)
        }
        if leftovers?.mayBeInReplayQueue ?? true {
            try run("DELETE FROM replay_queue WHERE workflowId = ?", workflow.id)
        }
        try appendOutbox(topic: .completions, key: workflow.id, value: bytes)
        metrics.completed(event.status)
        metrics.workflowDuration.recordMilliseconds(max(0, now - workflow.startedAt))
    }

    func appendReplayEvent(_ workflow: WorkflowRow, generation: Int, trigger: ReplayTrigger,
                           consumed: [ReplayEvent.Consumed], scheduled: [ReplayEvent.Scheduled],
                           outcome: ReplayEvent.Outcome, parkedReason: String? = nil) throws {
        let sequence = nextReplaySequence()
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
        try appendOutbox(topic: .replays, key: workflow.id, value: bytes)
    }

    /// Delivers the oldest stored event named `name` to the workflow's oldest wait for it, if both exist.
    /// Returns whether one was delivered.
    @discardableResult
    func matchEvent(workflowId: String, name: String) throws -> Bool {
        guard let seq = try row("SELECT seq FROM event_waits WHERE workflowId = ? AND name = ? ORDER BY seq LIMIT 1",
                                   workflowId, name, as: { $0[0] as Int }),
              let (eventId, value) = try row("SELECT id, value FROM events WHERE workflowId = ? AND name = ? ORDER BY id LIMIT 1",
                                                workflowId, name, as: { ($0[0] as Int64, $0[1] as String) })
        else { return false }
        try run("""
            UPDATE journal SET status = 'received', output = ?, completedAt = ?, attempts = 1
            WHERE workflowId = ? AND seq = ?
            """, value, now, workflowId, seq)
        try run("DELETE FROM event_waits WHERE workflowId = ? AND seq = ?", workflowId, seq)
        try run("DELETE FROM timers WHERE workflowId = ? AND seq = ?", workflowId, seq)
        try run("DELETE FROM events WHERE id = ?", eventId)
        try enqueueReplay(workflowId: workflowId, trigger: .event)
        return true
    }
}

/// A workflow as a transaction loads it.
struct WorkflowRow: Sendable {
    let id: String
    let name: String
    let args: String
    let createdAt: Int64
    let startedAt: Int64
    let status: WorkflowStatus
    var generation: Int
    /// The registered version of the workflow it runs (see `WorkflowRegistry`).
    let version: Int
    /// Why it is parked; nil when it is not.
    var parkedReason: String?
}

extension WorkflowRow {
    /// Decodes the columns `id, name, args, createdAt, startedAt, status, generation, version, parkedReason`
    /// of `row`, the first at `first`.
    init(_ row: StoreRow, from first: Int32) throws {
        self.init(id: row[first], name: row[first + 1], args: row[first + 2], createdAt: row[first + 3],
                  startedAt: row[first + 4], status: try row.decode(first + 5), generation: row[first + 6],
                  version: row[first + 7], parkedReason: row[first + 8])
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
