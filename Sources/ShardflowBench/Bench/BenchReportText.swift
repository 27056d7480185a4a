import Foundation

extension BenchReport {
    /// The headline sentence: counts, completion-time percentiles, earliest and latest decile.
    /// One line a newcomer can read: workflows, stuck, the earliest and latest deciles' medians, and the ratio to the ideal.
    public func summaryLine() -> String {
        var line = "\(BenchFormat.count(workflows)) workflows, \(BenchFormat.count(succeeded)) succeeded, \(BenchFormat.count(stuck)) stuck"
        if let first = deciles.first, let last = deciles.last, deciles.count > 1 {
            line += "; the first 10% finished in \(Self.medianText(first)) (median), the last 10% in \(Self.medianText(last))"
            if let ideal = exactIdeal, let firstIdeal = ideal.decileMedianMs.first, let lastIdeal = ideal.decileMedianMs.last {
                line += " (ideal \(BenchFormat.duration(ms: firstIdeal)) and \(BenchFormat.duration(ms: lastIdeal)))"
            }
        }
        if let ideal = exactIdeal {
            line += String(format: "; all done in %.2f× the ideal time", ideal.makespanRatio)
        }
        return line
    }

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
        lines.append("decile  workflows (creation order)   completed   median completion" + (exactIdeal == nil ? "" : "   ideal median   measured / ideal"))
        for (position, d) in deciles.enumerated() {
            let range = "\(BenchFormat.count(d.firstIndex + 1))–\(BenchFormat.count(d.lastIndex + 1))"
            var line = Self.pad("\(d.decile)", 6) + "  " + Self.pad(range, 27) + "  " + Self.pad(BenchFormat.count(d.completed), 9, left: true)
                + "   " + Self.medianText(d)
            if let ideal = exactIdeal, position < ideal.decileMedianMs.count {
                line = Self.pad(line, 74) + "   " + Self.pad(BenchFormat.duration(ms: ideal.decileMedianMs[position]), 12)
                    + "   " + (ideal.decileRatios[position].map { String(format: "%.2f", $0) } ?? "-")
            }
            lines.append(line)
        }
        lines.append("")
        lines.append(
            "throughput: \(String(format: "%.1f", throughput.workflowsPerSecond)) workflows/s, "
                + "\(String(format: "%.1f", throughput.stepsPerSecond)) steps/s "
                + "(\(BenchFormat.count(throughput.steps)) steps in \(BenchFormat.duration(ms: throughput.measuredMakespanMs)))"
        )
        if let exact = exactIdeal {
            lines.append(
                "makespan: measured \(BenchFormat.duration(ms: makespan.measuredMs)), exact ideal \(BenchFormat.duration(ms: exact.makespanMs)), "
                    + "measured / ideal \(String(format: "%.2f", exact.makespanRatio))"
                    + (exact.p50Ratio.map { "; p50 measured / ideal \(String(format: "%.2f", $0)) (ideal p50 \(BenchFormat.duration(ms: exact.p50Ms)))" } ?? "")
            )
            lines.append("  exact ideal: \(BenchExactIdeal.method)")
        }
        if let ideal = makespan.idealMs, let ratio = makespan.ratio {
            lines.append(
                "makespan lower bound (old formula): \(BenchFormat.duration(ms: ideal)), measured / bound \(String(format: "%.2f", ratio))"
            )
            lines.append(
                "  bound = max(\(BenchFormat.count(Int(makespan.totalStepSeconds.rounded()))) step-seconds / \(BenchFormat.count(makespan.slots)) slots"
                    + " = \(BenchFormat.duration(ms: makespan.capacityBoundMs)), \(makespan.criticalPathSteps) steps × "
                    + "\(BenchFormat.duration(ms: makespan.meanStepLatencyMs)) mean step latency = "
                    + "\(BenchFormat.duration(ms: makespan.criticalPathMs)))"
            )
        } else {
            lines.append("makespan: measured \(BenchFormat.duration(ms: makespan.measuredMs)) (no ideal: steps have no modelled latency)")
        }
        if let cpu {
            lines.append(String(format: "CPU per step (user + sys over the run): worker %.0f µs (%.1f s)", cpu.workerMicrosecondsPerStep, cpu.workerSeconds)
                         + (cpu.mockMicrosecondsPerStep.map { String(format: ", mock LLM %.0f µs (%.1f s)", $0, cpu.mockSeconds ?? 0) } ?? ""))
        }
        if let log = shardLog {
            lines.append(String(format: "shard log: %.0f records, %.1f MB, %.0f bytes per step", log.records, log.bytes / 1e6, log.bytesPerStep))
        }
        if let lag = executorLag, lag.samples > 0 {
            lines.append(String(format: "worker executor lag during the run (ready work waiting for a thread, at each hop of a step): mean %.0f ms, %.0f%% of %.0f samples over 100 ms, the slowest ",
                                lag.meanMs, lag.shareOver100ms * 100, lag.samples)
                         + (lag.slowestAtMostMs.map { "at most " + BenchFormat.duration(ms: $0) } ?? "beyond the last bucket"))
        }
        if let split = stepSplit {
            func spread(_ value: BenchStepSplit.Spread) -> String {
                "p50 \(BenchFormat.duration(ms: value.p50Ms)) (p90 \(BenchFormat.duration(ms: value.p90Ms)))"
            }
            lines.append("a step's time around its LLM call (\(BenchFormat.count(split.steps)) steps of one try): queued → call reached the mock "
                         + spread(split.beforeCall) + "; the call " + spread(split.call) + "; answered → result recorded " + spread(split.afterCall))
        }
        if let mock = mockLLM {
            let rate = mock.uptimeSeconds > 0 ? Double(mock.requests) / mock.uptimeSeconds * 60 : 0
            lines.append("mock LLM: \(BenchFormat.count(mock.requests)) requests (\(String(format: "%.0f", rate)) per minute over its uptime), "
                         + "\(BenchFormat.count(mock.rateLimited)) answered 429, \(BenchFormat.count(mock.serverErrors + mock.overloaded)) injected 500/529")
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
