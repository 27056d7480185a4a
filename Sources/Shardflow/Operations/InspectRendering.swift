import Foundation
import ShardflowEngine
import ShardflowJSON

/// Plain-text tables for `shardflow inspect` and `shardflow check`.
public enum InspectRendering {
    public static func shards(_ stats: [ShardStats]) -> String {
        var rows = [["shard", "epoch", "executor", "queued", "running", "replay", "outbox", "timers", "waits",
                     "quarantined", "parked", "workflows by status", "oldest queued createdAt"]]
        for s in stats {
            let statuses = s.workflowsByStatus.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: " ")
            rows.append([String(s.shard), String(s.epoch), s.executorState.rawValue, String(s.queuedTasks),
                         String(s.runningTasks), String(s.replayQueueDepth), String(s.outboxDepth), String(s.timers),
                         String(s.eventWaits), String(s.quarantinedWorkflows), String(s.parkedWorkflows), statuses.isEmpty ? "-" : statuses,
                         s.oldestQueuedCreatedAt.map(timestamp) ?? "-"])
        }
        return table(rows)
    }

    /// Where each local store stands against its shard's log. Whether a copy is current only its log can
    /// say (the next owner finds out); between copies, the one with the lower last seq is the staler.
    public static func logPositions(_ positions: [(shard: Int, state: ShardLogLocalState?)]) -> String {
        var rows = [["shard", "last seq", "read back up to", "writer epoch", "copy"]]
        for (shard, state) in positions {
            guard let state else {
                rows.append([String(shard), "-", "-", "-", "from before the shard log (migrated at its next open)"])
                continue
            }
            let copy = state.checkpoint.offset < 0 && state.lastSeq == 0 ? "empty or never logged"
                : state.lastSeq > state.checkpoint.seq ? "holds \(state.lastSeq - state.checkpoint.seq) transactions not read back (checked at its next open)"
                : "as read back"
            rows.append([String(shard), String(state.lastSeq),
                         "offset \(state.checkpoint.offset), seq \(state.checkpoint.seq)", String(state.writerEpoch), copy])
        }
        return table(rows)
    }

    public static func workflow(_ d: WorkflowDetail, shard: Int) -> String {
        var lines = [
            "workflow    \(d.workflowId) (\(d.workflow) version \(d.version)) on shard \(shard)",
            "status      \(d.status)  generation \(d.generation)  in replay queue: \(d.inReplayQueue ? "yes" : "no")",
            "created     \(timestamp(d.createdAt))" + (d.completedAt.map { "  completed \(timestamp($0))" } ?? ""),
            "args        \(compact(d.args))",
        ]
        if let result = d.result { lines.append("result      \(compact(result))") }
        if let error = d.error { lines.append("error       \(error.message)" + (error.step.map { " (step \($0))" } ?? "")) }
        if let reason = d.parkedReason {
            lines.append("parked      since \(d.parkedAt.map(timestamp) ?? "-"): \(reason)")
        } else if let parkedAt = d.parkedAt {
            lines.append("parked      last at \(timestamp(parkedAt)); runs again")
        }
        if d.crashes > 0 || d.quarantined {
            lines.append("crashes     its code stopped the worker \(d.crashes) times" + (d.quarantined ? "; quarantined" : ""))
        }
        lines.append("")
        var journal = [["stepId", "kind", "name", "status", "attempts", "output / error"]]
        // Patch markers (negative numbers: they are no operations) are listed after the operations.
        for row in d.journal.filter({ $0.kind != "patch" }) + d.journal.filter({ $0.kind == "patch" }) {
            journal.append([String(row.stepId), row.kind, row.name, row.status, String(row.attempts),
                            row.error ?? row.output.map(compact) ?? ""])
        }
        lines.append("journal")
        lines.append(table(journal))
        if !d.pendingTasks.isEmpty {
            var pending = [["stepId", "name", "state", "attempt", "ready at"]]
            for task in d.pendingTasks {
                pending.append([String(task.stepId), task.name, task.state, String(task.attempt), timestamp(task.readyAt)])
            }
            lines.append("pending steps")
            lines.append(table(pending))
        }
        return lines.joined(separator: "\n")
    }

    public static func audit(_ reports: [AuditReport]) -> String {
        var lines: [String] = []
        for report in reports where !report.isHealthy {
            if !report.stuckWorkflows.isEmpty {
                lines.append("shard \(report.shard): \(report.stuckWorkflows.count) stuck workflows: "
                             + report.stuckWorkflows.prefix(50).joined(separator: ", ")
                             + (report.stuckWorkflows.count > 50 ? ", …" : ""))
            }
            if report.runningTasksBeyondBound {
                lines.append("shard \(report.shard): \(report.runningTasks) running tasks, above the bound of \(report.concurrencyBound)")
            }
            for (table, count) in report.orphanRows.sorted(by: { $0.key < $1.key }) where count > 0 {
                lines.append("shard \(report.shard): \(count) rows of \(table) point at nothing")
            }
            for (column, count) in report.undecodableRows.sorted(by: { $0.key < $1.key }) {
                lines.append("shard \(report.shard): \(count) undecodable rows: \(column) holds a value this version does not know (written by a newer version, or damaged)")
            }
            if report.outboxTooOld, let age = report.oldestOutboxAgeMilliseconds {
                lines.append("shard \(report.shard): the oldest outbox row has waited \(age / 1000) s to be published (limit \(report.outboxAgeLimitMilliseconds / 1000) s): its messages are not getting out")
            }
        }
        for report in reports where !report.quarantinedWorkflows.isEmpty {
            lines.append("shard \(report.shard): \(report.quarantinedWorkflows.count) quarantined workflows (failed: their code stopped the worker): "
                         + report.quarantinedWorkflows.prefix(20).joined(separator: ", ")
                         + (report.quarantinedWorkflows.count > 20 ? ", …" : ""))
        }
        for report in reports where !report.parkedWorkflows.isEmpty {
            lines.append("shard \(report.shard): \(report.parkedWorkflows.count) parked workflows (running, not stuck: they wait for a worker that can run them, or for admin fail-parked):")
            for parked in report.parkedWorkflows.prefix(20) {
                lines.append("  \(parked.workflowId) (\(parked.workflow) version \(parked.version)) since \(timestamp(parked.parkedAt)): \(parked.reason)")
            }
            if report.parkedWorkflows.count > 20 { lines.append("  …") }
        }
        let stuck = reports.reduce(0) { $0 + $1.stuckWorkflows.count }
        let broken = reports.filter { !$0.isHealthy }.count
        let quarantined = reports.reduce(0) { $0 + $1.quarantinedWorkflows.count }
        let parked = reports.reduce(0) { $0 + $1.parkedWorkflows.count }
        lines.append("\(reports.count) shards checked: \(broken) with problems, \(stuck) stuck workflows, \(quarantined) quarantined, \(parked) parked")
        return lines.joined(separator: "\n")
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func timestamp(_ millis: Int64) -> String {
        Date(timeIntervalSince1970: Double(millis) / 1000).formatted(.iso8601)
    }

    static func compact(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}
