import ShardflowEngine

/// The table `shardflow admin --wait` prints.
public enum ControlRendering {
    public static func table(_ results: [ControlResult]) -> String {
        var rows = [["shard", "command", "status", "epoch", "tasks", "workflows", "replay entries", "stuck", "error"]]
        for r in results {
            rows.append([String(r.shard), r.type ?? "-", r.status.rawValue, String(r.epoch), String(r.affected.tasks),
                         String(r.affected.workflows), String(r.affected.replayEntries), String(r.stuckWorkflows),
                         r.error ?? ""])
        }
        return InspectRendering.table(rows)
    }
}
