import Foundation

extension BenchReport {
    /// The headline sentence: counts, completion-time percentiles, earliest and latest decile.
    public func headline() -> String {
        var parts = "\(BenchFormat.count(workflows)) workflows: \(BenchFormat.count(succeeded)) completed, "
            + "\(BenchFormat.count(failed)) failed (\(BenchFormat.percent(failed, of: workflows)))"
        if canceled > 0 { parts += ", \(BenchFormat.count(canceled)) canceled" }
        parts += ", \(BenchFormat.count(stuck)) stuck"
        if incomplete > 0 { parts += ", \(BenchFormat.count(incomplete)) unfinished" }
        if let completionTime {
            parts += "; completion time p50 \(BenchFormat.duration(ms: completionTime.p50Ms)), "
                + "p90 \(BenchFormat.duration(ms: completionTime.p90Ms)), "
                + "p99 \(BenchFormat.duration(ms: completionTime.p99Ms)), "
                + "max \(BenchFormat.duration(ms: completionTime.maxMs))"
        }
        if let first = deciles.first, let last = deciles.last, deciles.count > 1 {
            parts += "; earliest \(BenchFormat.count(first.workflows)) median \(Self.medianText(first)), "
                + "latest \(BenchFormat.count(last.workflows)) median \(Self.medianText(last))"
        }
        return parts
    }

    /// The full text report: run line, headline, decile table, throughput, makespan and memory.
    public func text() -> String {
        let m = metadata
        var lines: [String] = []
        var run = "bench: \(BenchFormat.count(m.submitted)) × \(m.workflowKind) (\(m.stepsPerWorkflow) steps), "
            + "\(m.shards) shards × \(m.slotsPerShard) slots"
        if m.latencyMedianMs > 0 {
            run += ", step latency median \(BenchFormat.duration(ms: m.latencyMedianMs)), p99 \(BenchFormat.duration(ms: m.latencyP99Ms))"
        } else {
            run += ", no modelled step latency"
        }
        lines.append(run)
        lines.append(headline())
        lines.append("")
        lines.append("decile  workflows (creation order)   completed   median completion")
        for d in deciles {
            let range = "\(BenchFormat.count(d.firstIndex + 1))–\(BenchFormat.count(d.lastIndex + 1))"
            lines.append(
                Self.pad("\(d.decile)", 6) + "  " + Self.pad(range, 27) + "  " + Self.pad(BenchFormat.count(d.completed), 9, left: true)
                    + "   " + Self.medianText(d)
            )
        }
        lines.append("")
        lines.append(
            "throughput: \(String(format: "%.1f", throughput.workflowsPerSecond)) workflows/s, "
                + "\(String(format: "%.1f", throughput.stepsPerSecond)) steps/s "
                + "(\(BenchFormat.count(throughput.steps)) steps in \(BenchFormat.duration(ms: throughput.measuredMakespanMs)))"
        )
        if let ideal = makespan.idealMs, let ratio = makespan.ratio {
            lines.append(
                "makespan: measured \(BenchFormat.duration(ms: makespan.measuredMs)), ideal \(BenchFormat.duration(ms: ideal)), "
                    + "measured / ideal \(String(format: "%.2f", ratio))"
            )
            lines.append(
                "  ideal = max(\(BenchFormat.count(Int(makespan.totalStepSeconds.rounded()))) step-seconds / \(BenchFormat.count(makespan.slots)) slots"
                    + " = \(BenchFormat.duration(ms: makespan.capacityBoundMs)), \(makespan.criticalPathSteps) steps × "
                    + "\(BenchFormat.duration(ms: makespan.meanStepLatencyMs)) mean step latency = "
                    + "\(BenchFormat.duration(ms: makespan.criticalPathMs)))"
            )
        } else {
            lines.append("makespan: measured \(BenchFormat.duration(ms: makespan.measuredMs)) (no ideal: steps have no modelled latency)")
        }
        lines.append("worker peak RSS: " + (workerPeakRSSBytes.map(BenchFormat.mebibytes) ?? "not measured"))
        return lines.joined(separator: "\n") + "\n"
    }

    static func medianText(_ decile: BenchDecile) -> String {
        decile.medianCompletionMs.map { BenchFormat.duration(ms: $0) } ?? "none completed"
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? fill + text : text + fill
    }
}
