import GRDB

/// Durable timers (sleeps, event-wait timeouts) and the wake-up of tasks waiting out a retry backoff.
extension Shard {
    func timerLoop() async {
        while lifecycle.isRunning && !Task.isCancelled {
            var next: Int64?
            do {
                next = try fireDueTimers()
            } catch {
                if !lifecycle.isRunning { return }
                logger.error("timers failed: \(error)")
                next = clock.nowMilliseconds() + 100
            }
            await signals.timers.wait(orUntil: next, clock: clock)
        }
    }

    /// Fires every timer that is due and returns when the next timer or retry is due (nil: none).
    func fireDueTimers() throws -> Int64? {
        return try transaction { tx -> Int64? in
            let now = tx.now
            let due = try tx.rows("SELECT workflowId, seq FROM timers WHERE fireAt <= ? ORDER BY fireAt LIMIT 500", now) { row in
                (workflowId: row[0] as String, seq: row[1] as Int)
            }
            for (workflowId, seq) in due {
                try tx.run("DELETE FROM timers WHERE workflowId = ? AND seq = ?", workflowId, seq)
                try tx.run("DELETE FROM event_waits WHERE workflowId = ? AND seq = ?", workflowId, seq)
                let kind: JournalEntry.Kind?
                do {
                    kind = try tx.row("SELECT kind FROM journal WHERE workflowId = ? AND seq = ?", workflowId, seq) { row in
                        try row.decode(0, as: JournalEntry.Kind.self)
                    }
                } catch let unreadable as StoreDecodingError {
                    try replayer.failUnreadable(tx, workflowId: workflowId, unreadable)
                    continue
                }
                try tx.run("""
                    UPDATE journal SET status = ?, completedAt = ?, attempts = 1
                    WHERE workflowId = ? AND seq = ? AND status = 'pending'
                    """, kind == .event ? JournalEntry.Status.timedOut : .fired, now, workflowId, seq)
                try tx.enqueueReplay(workflowId: workflowId, trigger: .timer)
            }
            // Only a task backing off becomes ready by time passing (the others were signalled when queued).
            if try tx.int("SELECT 1 FROM journal WHERE taskState = 'queued' AND readyAt > enqueuedAt AND readyAt <= ? LIMIT 1",
                          now) != nil {
                tx.effects.tasks = true
            }
            let timer = try tx.int("SELECT MIN(fireAt) FROM timers")
            let retry = try tx.int("SELECT MIN(readyAt) FROM journal WHERE taskState = 'queued' AND readyAt > enqueuedAt AND readyAt > ?",
                                   now)
            switch (timer, retry) {
            case let (a?, b?): return min(a, b)
            case let (a?, nil): return a
            case let (nil, b?): return b
            case (nil, nil): return nil
            }
        }
    }
}
