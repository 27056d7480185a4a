import ShardflowSupport
import GRDB

/// Retention: finished workflows leave the store some time after they completed, so a store holds
/// what is running plus a bounded history instead of everything it ever ran.
extension Shard {
    /// Sweeps every `retentionSweepInterval` until the shard stops.
    func retentionLoop() async {
        while lifecycle.isRunning && !Task.isCancelled {
            do {
                var pruned = 0
                // Small transactions, so the work loop is never held up for long.
                while lifecycle.isRunning, !Task.isCancelled {
                    let batch = try pruneFinished(limit: 500)
                    pruned += batch
                    if batch < 500 { break }
                    await Task.yield()
                }
                if pruned > 0 { logger.info("pruned \(pruned) finished workflows past retention") }
            } catch {
                if !lifecycle.isRunning { return }
                logger.error("retention sweep failed: \(error)")
            }
            try? await Task.sleep(for: configuration.retentionSweepInterval)
        }
    }

    /// Deletes up to `limit` workflows that finished before `now - retention`, with their journals.
    /// Returns how many. Control-command answers stay (the contract answers a repeated commandId
    /// again however late it comes), and so do events for workflows not started yet (kept until the
    /// workflow asks for them).
    @discardableResult
    func pruneFinished(limit: Int) throws -> Int {
        guard let retention = configuration.retention else { return 0 }
        let cutoff = clock.nowMilliseconds() - retention.milliseconds
        let pruned = try transaction { tx -> Int in
            let ids = try tx.rows("""
                SELECT id FROM workflows WHERE status <> 'running' AND completedAt < ? ORDER BY completedAt LIMIT ?
                """, cutoff, limit) { $0[0] as String }
            for id in ids {
                try tx.run("DELETE FROM journal WHERE workflowId = ?", id)
                try tx.run("DELETE FROM workflows WHERE id = ?", id)
            }
            return ids.count
        }
        metrics.workflowsPruned.increment(by: pruned)
        return pruned
    }
}
