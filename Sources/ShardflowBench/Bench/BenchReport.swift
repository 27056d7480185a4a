import Foundation
import ShardflowLLM
import ShardflowMockLLM

/// Completion-time percentiles, in milliseconds (nearest rank).
public struct BenchPercentiles: Codable, Sendable, Equatable {
    public var p50Ms: Double
    public var p90Ms: Double
    public var p99Ms: Double
    public var maxMs: Double
    public var meanMs: Double
}

/// One tenth of the workflows in creation order: decile 1 is the earliest 10 %, 10 the latest.
public struct BenchDecile: Codable, Sendable, Equatable {
    public var decile: Int
    /// Creation indexes covered, inclusive.
    public var firstIndex: Int
    public var lastIndex: Int
    public var workflows: Int
    public var completed: Int
    /// Median completion time of the decile's completed workflows; nil when none completed.
    public var medianCompletionMs: Double?
}

public struct BenchThroughput: Codable, Sendable, Equatable {
    /// From the first submission to the last completion (to the end of the run if some never completed).
    public var measuredMakespanMs: Double
    public var workflowsPerSecond: Double
    public var stepsPerSecond: Double
    public var steps: Int
}

/// The measured makespan against the old lower bounds (capacity and critical path with the mean latency); far
/// below the true optimum for lognormal latencies, so `BenchExactIdeal` is the headline where it is known.
public struct BenchMakespan: Codable, Sendable, Equatable {
    public static let formula =
        "ideal = max(total step-seconds / slots, critical-path steps × mean step latency), "
        + "mean step latency = median × exp(σ²/2) with σ = ln(p99/median) / 2.326 (lognormal)"

    public var measuredMs: Double
    public var meanStepLatencyMs: Double
    public var totalStepSeconds: Double
    public var slots: Int
    public var criticalPathSteps: Int
    /// total step-seconds / slots.
    public var capacityBoundMs: Double
    /// critical-path steps × mean step latency.
    public var criticalPathMs: Double
    /// max(capacity bound, critical path); nil when steps take no modelled time (`--no-llm`).
    public var idealMs: Double?
    /// measured / ideal.
    public var ratio: Double?
    public var formula: String
}

/// The exact ideal: the FIFO list schedule (`IdealSchedule`) of the run's own step latencies (the mock's
/// draws for each workflow, step and attempt) on the same slots, against what was measured.
public struct BenchExactIdeal: Codable, Sendable, Equatable {
    public static let method =
        "FIFO list schedule of this run's own mock draws (per workflow, step, attempt and HTTP try) on the same "
        + "shards and slots: a workflow's next step is ready when its previous one ends; a free slot takes the "
        + "ready step of the earliest-created workflow of its shard; injected errors' retries count their draws, "
        + "not their backoff waits; with the mock's request limit, a step also takes a token of its bucket "
        + "(one second's requests), earliest-created first across shards; nothing else takes time"

    public var makespanMs: Double
    public var p50Ms: Double
    /// The ideal median completion time of each decile (same deciles as the measured ones).
    public var decileMedianMs: [Double]
    /// measured / ideal.
    public var makespanRatio: Double
    public var p50Ratio: Double?
    public var decileRatios: [Double?]
    public var method: String
}

/// Where the CPU went over the run (user + system from `/proc`, from the first submission to the last
/// completion), per step: the worker processes and the mock LLM apart.
public struct BenchCPU: Codable, Sendable, Equatable {
    public var workerSeconds: Double
    public var mockSeconds: Double?
    public var workerMicrosecondsPerStep: Double
    public var mockMicrosecondsPerStep: Double?

    public init(workerSeconds: Double, mockSeconds: Double?, steps: Int) {
        self.workerSeconds = workerSeconds
        self.mockSeconds = mockSeconds
        let perStep = { (seconds: Double) in steps > 0 ? seconds * 1e6 / Double(steps) : 0 }
        workerMicrosecondsPerStep = perStep(workerSeconds)
        mockMicrosecondsPerStep = mockSeconds.map(perStep)
    }
}

/// The shard logs' cost: records and bytes the workers wrote to them, per step.
public struct BenchShardLog: Codable, Sendable, Equatable {
    public var records: Double
    public var bytes: Double
    public var bytesPerStep: Double

    public init(records: Double, bytes: Double, steps: Int) {
        self.records = records
        self.bytes = bytes
        bytesPerStep = steps > 0 ? bytes / Double(steps) : 0
    }
}

/// How long the workers' ready work waited for a thread of the Swift runtime during the run
/// (`shardflow_executor_lag_seconds`, sampled every 100 ms): the figure that shows a CPU-bound worker,
/// since each hop of a step waits this long. A sample waits for its own wake-up too, so samples thin out
/// while the lag is long: the share and the slowest bucket say more than the mean.
public struct BenchExecutorLag: Codable, Sendable, Equatable {
    public var samples: Double
    public var meanMs: Double
    /// The share of samples that waited more than 100 ms.
    public var shareOver100ms: Double
    /// The upper bound of the histogram bucket that holds the slowest sample (nil: beyond the last bound).
    public var slowestAtMostMs: Double?

    public init(over totals: Totals) {
        samples = totals.samples
        meanMs = totals.samples > 0 ? totals.seconds / totals.samples * 1000 : 0
        let atMost100ms = totals.buckets[0.1] ?? 0
        shareOver100ms = totals.samples > 0 ? max(0, totals.samples - atMost100ms) / totals.samples : 0
        let bounds = totals.buckets.keys.sorted()
        if let first = bounds.first(where: { totals.buckets[$0, default: 0] >= totals.samples }) {
            slowestAtMostMs = first * 1000
        } else {
            slowestAtMostMs = nil
        }
    }

    /// The histogram's running totals over all workers; a run's figures are the difference of two reads.
    public struct Totals: Sendable, Equatable {
        public var samples = 0.0
        public var seconds = 0.0
        /// Cumulative sample counts by bucket upper bound in seconds (`le`), +Inf left out.
        public var buckets: [Double: Double] = [:]

        public init(samples: Double = 0, seconds: Double = 0, buckets: [Double: Double] = [:]) {
            self.samples = samples
            self.seconds = seconds
            self.buckets = buckets
        }

        public init(metrics: String) {
            samples = PrometheusText.sum("shardflow_executor_lag_seconds_count", in: metrics)
            seconds = PrometheusText.sum("shardflow_executor_lag_seconds_sum", in: metrics)
            buckets = PrometheusText.buckets("shardflow_executor_lag_seconds", in: metrics)
        }

        public mutating func add(_ other: Totals) {
            samples += other.samples
            seconds += other.seconds
            buckets.merge(other.buckets, uniquingKeysWith: +)
        }

        public static func - (later: Totals, earlier: Totals) -> Totals {
            Totals(samples: later.samples - earlier.samples, seconds: later.seconds - earlier.seconds,
                   buckets: later.buckets.merging(earlier.buckets.mapValues { -$0 }, uniquingKeysWith: +))
        }
    }
}

/// One dot of the chart: a completed workflow's creation index and completion time.
public struct BenchChartPoint: Codable, Sendable, Equatable {
    public var index: Int
    public var completionMs: Double
    public var status: BenchWorkflowStatus
}

/// The result of a bench run: what `shardflow bench` prints and writes as report.json.
public struct BenchReport: Codable, Sendable, Equatable {
    public static let maxChartPoints = 5_000

    public var metadata: BenchRunMetadata
    public var workflows: Int
    public var succeeded: Int
    public var failed: Int
    public var canceled: Int
    public var incomplete: Int
    /// From the invariant audit, not from a timeout.
    public var stuck: Int
    public var completionTime: BenchPercentiles?
    public var deciles: [BenchDecile]
    public var throughput: BenchThroughput
    /// The lower bounds of the old formula (kept under their own names in `makespan`).
    public var makespan: BenchMakespan
    /// Present when the run's step latencies are known (the bench's own mock, `llm-chain`).
    public var exactIdeal: BenchExactIdeal?
    /// Set by the runner, which sampled the processes.
    public var cpu: BenchCPU?
    /// What the bench's own mock served (requests by answer, 429s among them).
    public var mockLLM: MockLLMStats?
    /// What the workers wrote to the shard logs.
    public var shardLog: BenchShardLog?
    /// Read from the workers' metrics at the end of the run.
    public var executorLag: BenchExecutorLag?
    /// From the stores and the bench's own mock's request log.
    public var stepSplit: BenchStepSplit?
    public var workerPeakRSSBytes: Int?
    /// At most `maxChartPoints` completed workflows, evenly spread over creation order.
    public var chartPoints: [BenchChartPoint]

    /// Workflows that completed in any way.
    public var completed: Int { succeeded + failed + canceled }

    /// Builds the report; throws `BenchReportError` on inconsistent input.
    /// - Parameter idealCompletionMs: each workflow's completion time in the exact ideal schedule, by
    ///   creation index (nil: not known).
    public init(records: [BenchWorkflowRecord], metadata: BenchRunMetadata, idealCompletionMs: [Int: Double]? = nil) throws {
        try Self.validate(records: records, metadata: metadata)
        let ordered = records.sorted { $0.index < $1.index }
        self.metadata = metadata
        workflows = ordered.count
        succeeded = ordered.count(where: { $0.status == .succeeded })
        failed = ordered.count(where: { $0.status == .failed })
        canceled = ordered.count(where: { $0.status == .canceled })
        incomplete = ordered.count(where: { $0.status == .incomplete })
        stuck = metadata.stuck
        workerPeakRSSBytes = metadata.workerPeakRSSBytes

        let times = ordered.compactMap(\.completionTimeMs).map(Double.init).sorted()
        completionTime = times.isEmpty ? nil : BenchPercentiles(
            p50Ms: Self.percentile(times, 0.50), p90Ms: Self.percentile(times, 0.90),
            p99Ms: Self.percentile(times, 0.99), maxMs: times[times.count - 1],
            meanMs: times.reduce(0, +) / Double(times.count)
        )
        deciles = Self.deciles(ordered)

        let lastCompletion = ordered.compactMap(\.completedAt).max()
        let end = (incomplete > 0 ? nil : lastCompletion) ?? metadata.runEndedAt
        let measured = Double(max(1, end - metadata.runStartedAt))
        let steps = ordered.reduce(0) { $0 + $1.steps }
        throughput = BenchThroughput(
            measuredMakespanMs: measured,
            workflowsPerSecond: Double(succeeded + failed + canceled) / (measured / 1000),
            stepsPerSecond: Double(steps) / (measured / 1000),
            steps: steps
        )
        makespan = Self.makespan(measuredMs: measured, steps: steps, metadata: metadata)
        chartPoints = Self.sample(ordered)
        exactIdeal = idealCompletionMs.flatMap { Self.exactIdeal($0, ordered: ordered, measuredMs: measured,
                                                                 measuredP50: completionTime?.p50Ms, deciles: deciles) }
    }

    private static func exactIdeal(_ ideal: [Int: Double], ordered: [BenchWorkflowRecord], measuredMs: Double,
                                   measuredP50: Double?, deciles: [BenchDecile]) -> BenchExactIdeal? {
        let all = ordered.compactMap { ideal[$0.index] }
        guard all.count == ordered.count, let makespan = all.max(), makespan > 0 else { return nil }
        let p50 = percentile(all.sorted(), 0.5)
        let decileMedians = deciles.map { decile in
            median((decile.firstIndex...decile.lastIndex).compactMap { ideal[$0] }) ?? 0
        }
        return BenchExactIdeal(
            makespanMs: makespan, p50Ms: p50, decileMedianMs: decileMedians, makespanRatio: measuredMs / makespan,
            p50Ratio: measuredP50.map { p50 > 0 ? $0 / p50 : 0 },
            decileRatios: zip(deciles, decileMedians).map { decile, idealMedian in
                decile.medianCompletionMs.map { idealMedian > 0 ? $0 / idealMedian : 0 }
            },
            method: BenchExactIdeal.method)
    }

    // MARK: Computation

    private static func validate(records: [BenchWorkflowRecord], metadata: BenchRunMetadata) throws {
        if metadata.shards < 1 || metadata.slotsPerShard < 1 {
            throw BenchReportError("shards and slots per shard must be at least 1, got \(metadata.shards) × \(metadata.slotsPerShard)")
        }
        if metadata.stepsPerWorkflow < 0 || (metadata.criticalPathSteps ?? 0) < 0 {
            throw BenchReportError("step counts must not be negative")
        }
        if metadata.latencyMedianMs < 0 || metadata.latencyP99Ms < 0 {
            throw BenchReportError("latencies must not be negative")
        }
        if metadata.runEndedAt < metadata.runStartedAt {
            throw BenchReportError("the run ends (\(metadata.runEndedAt)) before it starts (\(metadata.runStartedAt))")
        }
        if metadata.submitted < 0 || metadata.stuck < 0 { throw BenchReportError("counts must not be negative") }
        var seen = Set<Int>()
        for record in records {
            if record.index < 0 { throw BenchReportError("workflow \(record.workflowId) has a negative index") }
            if !seen.insert(record.index).inserted {
                throw BenchReportError("two workflows share creation index \(record.index)")
            }
            if record.steps < 0 { throw BenchReportError("workflow \(record.workflowId) has a negative step count") }
            switch (record.status, record.completedAt) {
            case (.incomplete, .some):
                throw BenchReportError("workflow \(record.workflowId) is incomplete but has a completedAt")
            case (.succeeded, nil), (.failed, nil), (.canceled, nil):
                throw BenchReportError("workflow \(record.workflowId) is \(record.status.rawValue) but has no completedAt")
            case (_, .some(let completedAt)) where completedAt < record.createdAt:
                throw BenchReportError("workflow \(record.workflowId) completes before it was created")
            default:
                break
            }
        }
    }

    /// Nearest-rank percentile of sorted values.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count - 1, max(0, rank - 1))]
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// Ten groups of (nearly) equal size in creation order; empty groups are left out.
    private static func deciles(_ ordered: [BenchWorkflowRecord]) -> [BenchDecile] {
        let n = ordered.count
        return (0..<10).compactMap { k in
            let slice = ordered[(k * n / 10)..<((k + 1) * n / 10)]
            guard let first = slice.first, let last = slice.last else { return nil }
            let times = slice.compactMap(\.completionTimeMs).map(Double.init)
            return BenchDecile(
                decile: k + 1, firstIndex: first.index, lastIndex: last.index, workflows: slice.count,
                completed: times.count, medianCompletionMs: median(times)
            )
        }
    }

    private static func makespan(measuredMs: Double, steps: Int, metadata: BenchRunMetadata) -> BenchMakespan {
        let mean = metadata.meanStepLatencyMs
        let criticalSteps = metadata.criticalPathSteps ?? metadata.stepsPerWorkflow
        let totalStepSeconds = Double(steps) * mean / 1000
        let capacity = totalStepSeconds * 1000 / Double(metadata.slots)
        let critical = Double(criticalSteps) * mean
        let ideal = max(capacity, critical)
        return BenchMakespan(
            measuredMs: measuredMs, meanStepLatencyMs: mean, totalStepSeconds: totalStepSeconds,
            slots: metadata.slots, criticalPathSteps: criticalSteps, capacityBoundMs: capacity,
            criticalPathMs: critical, idealMs: ideal > 0 ? ideal : nil,
            ratio: ideal > 0 ? measuredMs / ideal : nil, formula: BenchMakespan.formula
        )
    }

    private static func sample(_ ordered: [BenchWorkflowRecord]) -> [BenchChartPoint] {
        let completed = ordered.filter { $0.completedAt != nil }
        let count = min(completed.count, maxChartPoints)
        guard count > 0 else { return [] }
        // Evenly strided picks keep the shape of the whole run in creation order.
        return (0..<count).map { i in
            let record = completed[i * completed.count / count]
            return BenchChartPoint(index: record.index, completionMs: Double(record.completionTimeMs ?? 0), status: record.status)
        }
    }

    // MARK: Output

    /// Writes report.json, report.txt and chart.svg into `directory` (created if missing) and
    /// returns their URLs in that order.
    @discardableResult
    public func write(to directory: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files: [(String, Data)] = [
            ("report.json", try jsonData()),
            ("report.txt", Data(text().utf8)),
            ("chart.svg", Data(BenchChart(report: self).svg().utf8)),
        ]
        return try files.map { name, data in
            let url = directory.appendingPathComponent(name)
            try data.write(to: url, options: .atomic)
            return url
        }
    }

    /// Pretty, key-sorted JSON.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
