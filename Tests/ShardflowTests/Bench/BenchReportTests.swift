import Foundation
import Shardflow
import ShardflowBench
import ShardflowEngine
import ShardflowLLM
import ShardflowMockLLM
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Synthetic bench inputs shaped like a FIFO run: later workflows wait longer in the queue.
enum BenchFixtures {
    static let start: Int64 = 1_795_900_000_000

    static func metadata(
        submitted: Int, steps: Int = 3, shards: Int = 2, slotsPerShard: Int = 5,
        medianMs: Double = 1_000, p99Ms: Double = 1_000, endOffsetMs: Int64 = 3_600_000, stuck: Int = 0
    ) -> BenchRunMetadata {
        BenchRunMetadata(
            workflowKind: "llm-chain", stepsPerWorkflow: steps, shards: shards, slotsPerShard: slotsPerShard,
            latencyMedianMs: medianMs, latencyP99Ms: p99Ms, runStartedAt: start, runEndedAt: start + endOffsetMs,
            submitted: submitted, stuck: stuck, workerPeakRSSBytes: 300 << 20
        )
    }

    /// Workflow i is created at i × 10 ms and takes 3 s plus 40 ms of queueing per earlier workflow.
    static func fifoRecords(_ count: Int, failEvery: Int? = nil) -> [BenchWorkflowRecord] {
        (0..<count).map { i in
            let created = start + Int64(i) * 10
            let failed = failEvery.map { i % $0 == $0 - 1 } ?? false
            return BenchWorkflowRecord(
                index: i, workflowId: "wf-\(i)", createdAt: created, completedAt: created + 3_000 + Int64(i) * 40,
                status: failed ? .failed : .succeeded, steps: failed ? 2 : 3
            )
        }
    }
}

@Suite("Bench report")
struct BenchReportTests {
    @Test("counts add up, whatever the mix of outcomes")
    func countsAddUp() throws {
        var records = BenchFixtures.fifoRecords(100, failEvery: 10)
        records[5].status = .canceled
        records[7].status = .incomplete
        records[7].completedAt = nil
        let report = try BenchReport(records: records, metadata: BenchFixtures.metadata(submitted: 100, stuck: 1))
        #expect(report.workflows == 100)
        #expect(report.failed == 10)
        #expect(report.canceled == 1)
        #expect(report.incomplete == 1)
        #expect(report.succeeded == 88)
        #expect(report.succeeded + report.failed + report.canceled + report.incomplete == report.workflows)
        #expect(report.completed == 99)
        #expect(report.stuck == 1)
        #expect(report.deciles.reduce(0) { $0 + $1.workflows } == 100)
        #expect(report.deciles.reduce(0) { $0 + $1.completed } == 99)
    }

    @Test("creation-order deciles of a FIFO run rise from earliest to latest")
    func decilesOrdered() throws {
        let report = try BenchReport(records: BenchFixtures.fifoRecords(1_000), metadata: BenchFixtures.metadata(submitted: 1_000))
        #expect(report.deciles.count == 10)
        #expect(report.deciles.map(\.decile) == Array(1...10))
        #expect(report.deciles.first?.firstIndex == 0)
        #expect(report.deciles.last?.lastIndex == 999)
        let medians = report.deciles.compactMap(\.medianCompletionMs)
        #expect(medians.count == 10)
        #expect(zip(medians, medians.dropFirst()).allSatisfy { $0 < $1 })
        // Decile 1 holds indexes 0…99: median of 3,000 + 40 × i is 3,000 + 40 × 49.5.
        #expect(medians[0] == 4_980)
        #expect(medians[0] * 3 < medians[9])
    }

    @Test("percentiles use nearest rank over the completed workflows")
    func percentiles() throws {
        let records = (0..<100).map { i in
            BenchWorkflowRecord(
                index: i, workflowId: "p-\(i)", createdAt: BenchFixtures.start,
                completedAt: BenchFixtures.start + Int64(i + 1) * 1_000, status: .succeeded, steps: 1
            )
        }
        let report = try BenchReport(records: records.shuffled(), metadata: BenchFixtures.metadata(submitted: 100, steps: 1))
        let time = try #require(report.completionTime)
        #expect(time.p50Ms == 50_000)
        #expect(time.p90Ms == 90_000)
        #expect(time.p99Ms == 99_000)
        #expect(time.maxMs == 100_000)
        #expect(time.meanMs == 50_500)
    }

    @Test("ideal makespan is the larger of the capacity bound and the critical path")
    func idealMakespan() throws {
        // 100 workflows × 3 steps × 1 s on 10 slots: capacity bound 30 s, critical path 3 s.
        let records = BenchFixtures.fifoRecords(100)
        let report = try BenchReport(records: records, metadata: BenchFixtures.metadata(submitted: 100))
        #expect(report.makespan.slots == 10)
        #expect(report.makespan.totalStepSeconds == 300)
        #expect(report.makespan.capacityBoundMs == 30_000)
        #expect(report.makespan.criticalPathMs == 3_000)
        #expect(report.makespan.idealMs == 30_000)
        // The last workflow (index 99) completes 990 + 3,000 + 3,960 ms after the start.
        #expect(report.makespan.measuredMs == 7_950)
        #expect(report.makespan.ratio == 7_950.0 / 30_000)
        #expect(report.throughput.steps == 300)
        #expect(abs(report.throughput.stepsPerSecond - 300 / 7.95) < 1e-9)

        // One slot per shard and one workflow: the critical path wins.
        let single = try BenchReport(
            records: [records[0]], metadata: BenchFixtures.metadata(submitted: 1, shards: 1, slotsPerShard: 100)
        )
        #expect(single.makespan.idealMs == 3_000)
    }

    @Test("the step latency mean is that of the lognormal, not its median")
    func lognormalMean() {
        let metadata = BenchFixtures.metadata(submitted: 1, medianMs: 1_000, p99Ms: 4_000)
        // sigma = ln 4 / 2.326 ≈ 0.596, mean = exp(sigma² / 2) s ≈ 1.194 s.
        #expect(abs(metadata.meanStepLatencyMs - 1_194.3) < 0.5)
        #expect(BenchFixtures.metadata(submitted: 1, medianMs: 0, p99Ms: 0).meanStepLatencyMs == 0)
    }

    @Test("without modelled latency there is no ideal and no ratio")
    func noLatency() throws {
        let report = try BenchReport(
            records: BenchFixtures.fifoRecords(10), metadata: BenchFixtures.metadata(submitted: 10, medianMs: 0, p99Ms: 0)
        )
        #expect(report.makespan.idealMs == nil)
        #expect(report.makespan.ratio == nil)
        #expect(report.text().contains("no ideal"))
    }

    @Test("an unfinished run's makespan runs to the end of the run")
    func unfinishedMakespan() throws {
        var records = BenchFixtures.fifoRecords(10)
        records[9].completedAt = nil
        records[9].status = .incomplete
        let report = try BenchReport(records: records, metadata: BenchFixtures.metadata(submitted: 10, endOffsetMs: 60_000))
        #expect(report.makespan.measuredMs == 60_000)
        #expect(report.text().contains("1 unfinished"))
    }

    @Test("the JSON form decodes back to the same report")
    func jsonRoundTrip() throws {
        let report = try BenchReport(
            records: BenchFixtures.fifoRecords(500, failEvery: 50), metadata: BenchFixtures.metadata(submitted: 500)
        )
        let data = try report.jsonData()
        let decoded = try JSONDecoder().decode(BenchReport.self, from: data)
        #expect(decoded == report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["failed"] as? Int == 10)
        #expect(object["deciles"] as? [Any] != nil)
    }

    @Test("the text report reads like the reference run")
    func textShape() throws {
        let report = try BenchReport(
            records: BenchFixtures.fifoRecords(2_000, failEvery: 100), metadata: BenchFixtures.metadata(submitted: 2_000)
        )
        let headline = report.headline()
        #expect(headline.hasPrefix("2,000 workflows: 1,980 completed, 20 failed (1.00%), 0 stuck; completion time p50 "))
        #expect(headline.contains(", p90 "))
        #expect(headline.contains(", p99 "))
        #expect(headline.contains(", max "))
        #expect(headline.contains("; earliest 200 median "))
        #expect(headline.contains(", latest 200 median "))
        let text = report.text()
        #expect(text.contains("decile"))
        #expect(text.contains("throughput: "))
        #expect(text.contains("workflows/s"))
        #expect(text.contains("steps/s"))
        // Without the run's draws only the old lower bound is known, and it is called that.
        #expect(text.contains("makespan lower bound (old formula)"))
        #expect(text.contains("measured / bound"))
        #expect(report.exactIdeal == nil)
        #expect(text.contains("worker peak RSS: 300.0 MiB"))
        // A header line, then one row per decile.
        let rows = text.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("decile") }.dropFirst().prefix { !$0.isEmpty }
        #expect(rows.count == 10)
    }

    @Test("with the exact ideal the report gives measured / ideal for the makespan, the p50 and each decile")
    func exactIdealRatios() throws {
        let records = BenchFixtures.fifoRecords(1_000)
        // An ideal at half of every measured completion time (from the start of the run).
        let start = BenchFixtures.metadata(submitted: 1_000).runStartedAt
        let ideal = Dictionary(uniqueKeysWithValues: records.map { ($0.index, Double(($0.completedAt ?? start) - $0.createdAt) / 2) })
        let report = try BenchReport(records: records, metadata: BenchFixtures.metadata(submitted: 1_000), idealCompletionMs: ideal)
        let exact = try #require(report.exactIdeal)
        #expect(abs((exact.p50Ratio ?? 0) - 2) < 0.01)
        #expect(exact.decileRatios.count == 10)
        #expect(exact.decileRatios.allSatisfy { abs(($0 ?? 0) - 2) < 0.01 })
        #expect(exact.makespanRatio >= 2)
        let text = report.text()
        #expect(text.contains("exact ideal"))
        #expect(text.contains("measured / ideal"))
        #expect(text.contains("ideal median"))
        #expect(BenchChart(report: report).svg().contains("stroke-dasharray"))
        #expect(report.summaryLine().contains("× the ideal time"))
        // An ideal that misses workflows is no ideal.
        var partial = ideal
        partial.removeValue(forKey: 0)
        #expect(try BenchReport(records: records, metadata: BenchFixtures.metadata(submitted: 1_000), idealCompletionMs: partial).exactIdeal == nil)
    }

    @Test("the ideal schedule is FIFO per shard on its slots: a free slot takes the earliest-created ready step")
    func idealScheduleIsFIFOListScheduling() {
        // One slot, two workflows of two 1 s steps: w0 1, w0 2, then w1 1, w1 2.
        let one = IdealSchedule.completionSeconds([
            .init(index: 0, shard: 0, stepSeconds: [1, 1]), .init(index: 1, shard: 0, stepSeconds: [1, 1]),
        ], slotsPerShard: 1)
        #expect(one == [0: 2, 1: 4])
        // Enough slots: each workflow takes its own chain; shards do not share slots.
        let wide = IdealSchedule.completionSeconds([
            .init(index: 0, shard: 0, stepSeconds: [3, 1]), .init(index: 1, shard: 0, stepSeconds: [0.5]),
            .init(index: 2, shard: 1, stepSeconds: [2, 2]), .init(index: 3, shard: 1, stepSeconds: []),
        ], slotsPerShard: 2)
        #expect(wide == [0: 4, 1: 0.5, 2: 4, 3: 0])
        // Two slots, three workflows: the third waits for the first slot to free up (at 1 s), behind nobody.
        let queued = IdealSchedule.completionSeconds([
            .init(index: 0, shard: 0, stepSeconds: [1]), .init(index: 1, shard: 0, stepSeconds: [5]),
            .init(index: 2, shard: 0, stepSeconds: [1]),
        ], slotsPerShard: 2)
        #expect(queued == [0: 1, 1: 5, 2: 2])
    }

    @Test("behind a request limit the ideal starts steps at the bucket's rate, earliest-created first across shards")
    func idealScheduleBehindARequestLimit() {
        func near(_ got: [Int: Double], _ want: [Int: Double]) -> Bool {
            got.keys.sorted() == want.keys.sorted() && want.allSatisfy { abs((got[$0.key] ?? -1) - $0.value) < 1e-6 }
        }
        // 60 per minute: a bucket of one, refilled each second. Three shards, slots to spare: starts at 0, 1, 2.
        let paced = IdealSchedule.completionSeconds([
            .init(index: 0, shard: 0, stepSeconds: [0.5]), .init(index: 1, shard: 1, stepSeconds: [0.5]),
            .init(index: 2, shard: 2, stepSeconds: [0.5]),
        ], slotsPerShard: 50, requestsPerMinute: 60)
        #expect(near(paced, [0: 0.5, 1: 1.5, 2: 2.5]))
        // 120 per minute: two at once, then one every half second.
        let burst = IdealSchedule.completionSeconds((0..<4).map { .init(index: $0, shard: $0, stepSeconds: [0.1]) },
                                                    slotsPerShard: 50, requestsPerMinute: 120)
        #expect(near(burst, [0: 0.1, 1: 0.1, 2: 0.6, 3: 1.1]))
        // A token is not spent on a step whose shard has no free slot: w1 waits for w0's slot, w2 goes first.
        let slots = IdealSchedule.completionSeconds([
            .init(index: 0, shard: 0, stepSeconds: [2]), .init(index: 1, shard: 0, stepSeconds: [1]),
            .init(index: 2, shard: 1, stepSeconds: [1]),
        ], slotsPerShard: 1, requestsPerMinute: 60)
        #expect(near(slots, [0: 2, 1: 3, 2: 2]))
        // A limit far above what the slots allow changes nothing.
        let workflows: [IdealSchedule.Workflow] = (0..<40).map { .init(index: $0, shard: $0 % 3, stepSeconds: [1, 0.5, Double($0 % 7)]) }
        #expect(near(IdealSchedule.completionSeconds(workflows, slotsPerShard: 4, requestsPerMinute: 600_000),
                     IdealSchedule.completionSeconds(workflows, slotsPerShard: 4)))
    }

    @Test("the mock's draws for an identified call depend only on (seed, workflow, step, attempt, try)")
    func drawsAreAFunctionOfTheCall() {
        let draws = MockLLMDraws(seed: 42, latency: LognormalLatency(median: 4, p99: 15), errorRate: 0.1)
        let call = LLMStepIdentity(workflowId: "wf-1", stepId: 2, attempt: 1)
        #expect(draws.draw(call, httpTry: 1) == draws.draw(call, httpTry: 1))
        #expect(draws.draw(call, httpTry: 1) != draws.draw(call, httpTry: 2))
        #expect(draws.draw(call, httpTry: 1) != MockLLMDraws(seed: 43, latency: draws.latency).draw(call, httpTry: 1))
        let latencies = (0..<4_000).map { draws.draw(LLMStepIdentity(workflowId: "wf-\($0)", stepId: 1, attempt: 1), httpTry: 1).latencySeconds }.sorted()
        #expect(abs(latencies[2_000] - 4) < 0.4, "median \(latencies[2_000])")
        let errors = (0..<4_000).filter { draws.draw(LLMStepIdentity(workflowId: "wf-\($0)", stepId: 1, attempt: 1), httpTry: 1).status == 500 }.count
        #expect((300...500).contains(errors), "\(errors) errors")
        #expect(LLMStepIdentity.parse(call.headerValue(httpTry: 3))?.identity == call)
        #expect(LLMStepIdentity.parse("a/b/1/1") == nil)
    }

    @Test("bad input is refused with a clear error")
    func badInput() {
        var records = BenchFixtures.fifoRecords(3)
        records[2].index = 1
        #expect(throws: BenchReportError.self) {
            try BenchReport(records: records, metadata: BenchFixtures.metadata(submitted: 3))
        }
        var unfinished = BenchFixtures.fifoRecords(3)
        unfinished[0].status = .incomplete
        #expect(throws: BenchReportError.self) {
            try BenchReport(records: unfinished, metadata: BenchFixtures.metadata(submitted: 3))
        }
        var backwards = BenchFixtures.fifoRecords(3)
        backwards[1].completedAt = backwards[1].createdAt - 1
        #expect(throws: BenchReportError.self) {
            try BenchReport(records: backwards, metadata: BenchFixtures.metadata(submitted: 3))
        }
        do {
            _ = try BenchReport(records: [], metadata: BenchFixtures.metadata(submitted: 0, shards: 0))
            Issue.record("zero shards accepted")
        } catch {
            #expect("\(error)".contains("shards"))
        }
    }

    @Test("the executor lag over a run is the difference of two reads of the workers' histograms")
    func executorLag() throws {
        func page(count: Int, sum: Double, buckets: [(String, Int)]) -> String {
            var lines = buckets.map { #"shardflow_executor_lag_seconds_bucket{le="\#($0.0)"} \#($0.1)"# }
            lines.append(#"shardflow_executor_lag_seconds_bucket{le="+Inf"} \#(count)"#)
            lines.append("shardflow_executor_lag_seconds_sum \(sum)")
            lines.append("shardflow_executor_lag_seconds_count \(count)")
            lines.append("shardflow_executor_lag_seconds_other 7")
            return lines.joined(separator: "\n") + "\n"
        }
        // Before the run: 10 quick samples. After: 10 more under 100 ms, 4 up to 250 ms, 2 up to 500 ms.
        let before = BenchExecutorLag.Totals(metrics: page(count: 10, sum: 0.01, buckets: [("0.001", 10), ("0.1", 10), ("0.25", 10), ("0.5", 10), ("1.0", 10)]))
        var after = BenchExecutorLag.Totals(metrics: page(count: 26, sum: 1.81, buckets: [("0.001", 10), ("0.1", 20), ("0.25", 24), ("0.5", 26), ("1.0", 26)]))
        #expect(before.samples == 10)
        #expect(after.buckets[0.25] == 24)
        let lag = BenchExecutorLag(over: after - before)
        #expect(lag.samples == 16)
        #expect(abs(lag.meanMs - 112.5) < 0.001)
        #expect(lag.shareOver100ms == 6.0 / 16)
        #expect(lag.slowestAtMostMs == 500)
        // A second worker's page adds to the totals; a sample beyond every bound has no bucket.
        after.add(BenchExecutorLag.Totals(metrics: page(count: 1, sum: 5, buckets: [("0.001", 0), ("0.1", 0), ("0.25", 0), ("0.5", 0), ("1.0", 0)])))
        #expect(BenchExecutorLag(over: after - before).slowestAtMostMs == nil)
        #expect(BenchExecutorLag(over: BenchExecutorLag.Totals()).samples == 0)
    }

    @Test("a step's time splits around its LLM call, over the steps of one attempt and one HTTP try")
    func stepSplit() throws {
        func timing(_ id: String, attempts: Int = 1, queued: Int64, recorded: Int64) -> StepTiming {
            StepTiming(workflowId: id, stepId: 1, attempts: attempts, enqueuedAt: queued, completedAt: recorded)
        }
        func request(_ id: String, attempt: Int = 1, httpTry: Int = 1, status: Int = 200, arrived: Int64, answered: Int64) -> MockLLMRequestLog.Entry {
            MockLLMRequestLog.Entry(workflowId: id, stepId: 1, attempt: attempt, httpTry: httpTry, status: status,
                                    arrivedAtMs: arrived, answeredAtMs: answered)
        }
        let timings = [
            timing("a", queued: 0, recorded: 1_300), timing("b", queued: 100, recorded: 1_600),
            timing("retried", attempts: 2, queued: 0, recorded: 9_000), timing("two-tries", queued: 0, recorded: 9_000),
            timing("no-call", queued: 0, recorded: 10),
        ]
        let requests = [
            request("a", arrived: 200, answered: 1_200), request("b", arrived: 400, answered: 1_400),
            request("retried", attempt: 2, arrived: 10, answered: 20),
            request("two-tries", status: 529, arrived: 10, answered: 20), request("two-tries", httpTry: 2, arrived: 30, answered: 40),
        ]
        let split = try #require(BenchStepSplit(timings: timings, requests: requests))
        #expect(split.steps == 2)
        #expect(split.beforeCall == BenchStepSplit.Spread(p50Ms: 200, p90Ms: 300))
        #expect(split.call == BenchStepSplit.Spread(p50Ms: 1_000, p90Ms: 1_000))
        #expect(split.afterCall == BenchStepSplit.Spread(p50Ms: 100, p90Ms: 200))
        #expect(BenchStepSplit(timings: timings, requests: []) == nil)
    }

    @Test("an empty run still renders")
    func emptyRun() throws {
        let report = try BenchReport(records: [], metadata: BenchFixtures.metadata(submitted: 0))
        #expect(report.completionTime == nil)
        #expect(report.deciles.isEmpty)
        #expect(report.text().hasPrefix("bench: 0 × llm-chain"))
        #expect(BenchChart(report: report).svg().hasSuffix("</svg>\n"))
    }

    @Test("write(to:) creates report.json, report.txt and chart.svg")
    func writesFiles() throws {
        let report = try BenchReport(records: BenchFixtures.fifoRecords(50), metadata: BenchFixtures.metadata(submitted: 50))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-report-\(UUID().uuidString)/out")
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let urls = try report.write(to: directory)
        #expect(urls.map(\.lastPathComponent) == ["report.json", "report.txt", "chart.svg"])
        let json = try Data(contentsOf: directory.appendingPathComponent("report.json"))
        #expect(try JSONDecoder().decode(BenchReport.self, from: json) == report)
        #expect(try String(contentsOf: directory.appendingPathComponent("report.txt"), encoding: .utf8) == report.text())
    }
}
