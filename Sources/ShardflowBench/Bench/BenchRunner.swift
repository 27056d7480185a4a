import Foundation
import Logging
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka
import ShardflowLLM
import ShardflowMockLLM
import ShardflowSupport
import ShardflowTesting
import Synchronization

/// What `shardflow bench` runs.
public struct BenchOptions: Sendable {
    public var workflows = 20_000
    /// `llm-chain`, `fanout` or `noop`.
    public var workflow = "llm-chain"
    public var steps = 3
    /// Run `noop` steps instead of LLM calls: measures Shardflow's own overhead.
    public var noLLM = false
    public var latencyMedian: Duration = .seconds(1)
    public var latencyP99: Duration = .seconds(4)
    public var errorRate = 0.0
    public var overloadRate = 0.0
    public var rateLimitRPM = 0
    /// The workers' client-side limiter, requests per minute in all (each worker gets its share); 0: none.
    public var clientRequestsPerMinute = 0
    public var shards = 100
    public var maxConcurrency = 50
    public var claimLimit = 50
    /// Use these brokers instead of starting a local one.
    public var brokers: String?
    /// Use this Messages API instead of starting the mock.
    public var llmBaseURL: String?
    /// Worker processes to start (same group, one data directory).
    public var workerCount = 1
    /// The `shardflow` executable that runs the workers.
    public var workerExecutable: String
    public var outputDirectory: String
    /// Give up waiting when no workflow completed for this long (the audit then counts what is stuck).
    public var stallTimeout: Duration = .seconds(180)
    public var kafkaProperties: [String: String] = [:]

    public init(workerExecutable: String, outputDirectory: String) {
        self.workerExecutable = workerExecutable
        self.outputDirectory = outputDirectory
    }
}

/// Runs a benchmark end to end: a broker (local Tansu unless given), the mock LLM (its own process unless
/// given), worker processes, N workflows submitted in creation order, every completion collected from the
/// completions topic (deduplicated), the invariant audit of the stores, and the report.
public struct BenchRunner: Sendable {
    public var options: BenchOptions
    public var logger: Logger

    public init(options: BenchOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public struct Outcome: Sendable {
        public var report: BenchReport
        public var files: [URL]
    }

    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> Outcome {
        let workflow = options.noLLM ? "noop" : options.workflow
        let runId = LoadGenerator.runId(prefix: "bench")
        let output = URL(fileURLWithPath: options.outputDirectory)
        let dataDirectory = output.appendingPathComponent("data").path
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)

        // Broker.
        let broker = try await RunBroker.start(given: options.brokers, storage: .memory,
                                               properties: options.kafkaProperties, logger: logger, progress: progress)
        let brokers = broker.bootstrapServers
        let properties = broker.kafka.properties
        let kafka = broker.kafka
        let topics = ShardflowTopics(prefix: runId)
        try await TopicSetup.createAll(admin: try KafkaAdmin(configuration: kafka), topics: topics,
                                       partitions: options.shards)

        // Mock LLM: its own process, as the remote API it stands for (its CPU is measured apart).
        var mock: ChildProcess?
        var mockPort: Int?
        var llmBaseURL = options.llmBaseURL
        // With its own mock the bench knows every draw (workers identify each call's step), so it can
        // compute the exact ideal schedule of the run.
        var draws: MockLLMDraws?
        if !options.noLLM && llmBaseURL == nil {
            let mockConfiguration = MockLLMConfiguration(
                host: "127.0.0.1", port: try LocalBroker.freeLoopbackPort(), latencyMedian: options.latencyMedian,
                latencyP99: options.latencyP99, errorRate: options.errorRate, overloadRate: options.overloadRate,
                rateLimitRPM: options.rateLimitRPM)
            draws = mockConfiguration.draws
            let process = try ChildProcess(arguments: [
                options.workerExecutable, "mock-llm", "--port", String(mockConfiguration.port),
                "--latency-median", "\(options.latencyMedian.milliseconds)ms",
                "--latency-p99", "\(options.latencyP99.milliseconds)ms",
                "--error-rate", String(options.errorRate), "--overload-rate", String(options.overloadRate),
                "--rate-limit-rpm", String(options.rateLimitRPM), "--seed", String(mockConfiguration.seed),
                "--request-log", output.appendingPathComponent("mock-requests.csv").path, "--log-level", "warning",
            ], outputPath: output.appendingPathComponent("mock-llm.log").path)
            mock = process
            mockPort = mockConfiguration.port
            let deadline = ContinuousClock.now.advanced(by: .seconds(30))
            while await HealthProbe.get(port: mockConfiguration.port, path: "/healthz")?.status != 200 {
                guard ContinuousClock.now < deadline, !process.hasExited else {
                    throw BenchReportError("the mock LLM did not start (see \(output.appendingPathComponent("mock-llm.log").path))")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            llmBaseURL = "http://127.0.0.1:\(mockConfiguration.port)"
        }

        // Workers.
        var workers: [ChildProcess] = []
        var healthPorts: [Int] = []
        for index in 0..<options.workerCount {
            let port = try LocalBroker.freeLoopbackPort()
            healthPorts.append(port)
            var arguments = [options.workerExecutable, "worker", "--brokers", brokers, "--prefix", runId,
                             "--group", runId, "--data-dir", dataDirectory, "--http-port", String(port),
                             "--max-concurrency", String(options.maxConcurrency),
                             "--claim-limit", String(options.claimLimit)]
            if let llmBaseURL { arguments += ["--llm-base-url", llmBaseURL] }
            if draws != nil { arguments.append("--llm-step-identity") }
            if options.clientRequestsPerMinute > 0 {
                arguments += ["--llm-rpm", String(max(1, options.clientRequestsPerMinute / options.workerCount))]
            }
            for (key, value) in properties { arguments += ["-X", "\(key)=\(value)"] }
            workers.append(try ChildProcess(arguments: arguments,
                                            outputPath: output.appendingPathComponent("worker-\(index).log").path))
        }
        let reader = try await TopicReader(configuration: kafka, topic: topics.completions, fromBeginning: true)
        // The producer is made while the workers start: an upstream service's producer is connected already,
        // and a new idempotent one spends about half a second getting its producer id before its first
        // message goes out, which the measured completion times would count.
        let client = try WorkflowClient(configuration: kafka, topics: topics)
        // Submit once every worker has joined the group and opened its shards, so the measured completion
        // times are the system's, not a group join's.
        progress("waiting for \(options.workerCount) worker(s) to be ready")
        for port in healthPorts {
            try await HealthProbe.waitUntilReady(port: port, timeout: .seconds(120))
        }

        // Submit.
        let args: JSONValue = workflow == "fanout"
            ? .object(["branches": .int(Int64(options.steps))])
            : .object(["steps": .int(Int64(options.steps))])
        let starts = LoadGenerator.starts(workflow: workflow, args: args, count: options.workflows, idPrefix: runId)
        let index = Dictionary(uniqueKeysWithValues: starts.enumerated().map { ($1.workflowId, $0) })
        let lagAtStart = await BenchExecutorLag.Totals.read(ports: healthPorts)
        let runStartedAt = Int64(Date().timeIntervalSince1970 * 1000)
        let cpuAtStart = (workers: workers.compactMap { ProcessCPU.seconds(pid: $0.pid) }.reduce(0, +),
                          mock: mock.flatMap { ProcessCPU.seconds(pid: $0.pid) })
        progress("submitting \(options.workflows) \(workflow) workflows to \(options.shards) shards")
        try await client.startAll(starts)
        await client.close()

        // Collect completions until all are in, or nothing moves for the stall timeout.
        let collected = await collect(reader: reader, index: index, total: starts.count, progress: progress)
        let lagAtEnd = await BenchExecutorLag.Totals.read(ports: healthPorts)
        let runEndedAt = Int64(Date().timeIntervalSince1970 * 1000)
        let peakRSS = workers.compactMap { ProcessPeakMemory.peakRSSBytes(pid: $0.pid) }.max()
        let workerCPU = workers.compactMap { ProcessCPU.seconds(pid: $0.pid) }.reduce(0, +) - cpuAtStart.workers
        let mockCPU = mock.flatMap { ProcessCPU.seconds(pid: $0.pid) }.map { $0 - (cpuAtStart.mock ?? 0) }
        await reader.close()

        var logRecords = 0.0
        var logBytes = 0.0
        for port in healthPorts {
            let metrics = await HealthProbe.get(port: port, path: "/metrics")?.body ?? ""
            logRecords += PrometheusText.sum("shardflow_shard_log_records_total", in: metrics)
            logBytes += PrometheusText.sum("shardflow_shard_log_bytes_total", in: metrics)
        }

        // Stop the workers, then audit the stores they leave.
        progress("stopping workers")
        for worker in workers { await worker.terminate(timeout: .seconds(60)) }
        var stuck = 0
        var stepTimings: [StepTiming] = []
        for shard in try ShardInspector.shards(in: dataDirectory) {
            let inspector = try ShardInspector(directory: dataDirectory, shard: shard)
            stuck += try inspector.audit(concurrencyBound: options.maxConcurrency).stuckWorkflows.count
            if mock != nil { stepTimings += try inspector.stepTimings() }
        }
        var mockStats: MockLLMStats?
        if let mock, let mockPort {
            if let body = await HealthProbe.get(port: mockPort, path: "/stats")?.body,
               let stats = try? JSONCoding.decode(MockLLMStats.self, from: body) {
                progress("mock LLM: " + stats.summary())
                mockStats = stats
            }
            await mock.terminate(timeout: .seconds(10))
        }
        let mockRequests = mock == nil ? [] : MockLLMRequestLog.Entry.parse(
            (try? String(contentsOf: output.appendingPathComponent("mock-requests.csv"), encoding: .utf8)) ?? "")
        await broker.stop()

        let records = starts.enumerated().map { position, start in
            let completion = collected[start.workflowId]
            return BenchWorkflowRecord(
                index: position, workflowId: start.workflowId,
                createdAt: completion?.createdAt ?? runStartedAt, completedAt: completion?.completedAt,
                status: completion.map { BenchWorkflowStatus(completion: $0.status) } ?? .incomplete,
                steps: completion?.steps ?? 0)
        }
        let metadata = BenchRunMetadata(
            workflowKind: workflow, stepsPerWorkflow: workflow == "fanout" ? options.steps + 1 : options.steps,
            criticalPathSteps: workflow == "fanout" ? 2 : nil, shards: options.shards,
            slotsPerShard: options.maxConcurrency,
            latencyMedianMs: options.noLLM ? 0 : options.latencyMedian.timeInterval * 1000,
            latencyP99Ms: options.noLLM ? 0 : options.latencyP99.timeInterval * 1000,
            runStartedAt: runStartedAt, runEndedAt: runEndedAt, submitted: starts.count, stuck: stuck,
            workerPeakRSSBytes: peakRSS)
        var ideal: [Int: Double]?
        if let draws, workflow == "llm-chain" {
            ideal = Self.idealCompletionMs(starts: starts, steps: options.steps, shards: options.shards,
                                           slotsPerShard: options.maxConcurrency, requestsPerMinute: options.rateLimitRPM,
                                           draws: draws)
        }
        var report = try BenchReport(records: records, metadata: metadata, idealCompletionMs: ideal)
        report.cpu = BenchCPU(workerSeconds: workerCPU, mockSeconds: mockCPU, steps: report.throughput.steps)
        report.mockLLM = mockStats
        report.shardLog = BenchShardLog(records: logRecords, bytes: logBytes, steps: report.throughput.steps)
        report.executorLag = BenchExecutorLag(over: lagAtEnd - lagAtStart)
        report.stepSplit = BenchStepSplit(timings: stepTimings, requests: mockRequests)
        let files = try report.write(to: output)
        return Outcome(report: report, files: files)
    }

    /// The exact ideal of an `llm-chain` run: each workflow's steps take what the mock drew for them (the
    /// HTTP tries of injected errors included, up to the client's and the step's retries), scheduled FIFO
    /// per shard on the same slots; behind the mock's request limit when it has one.
    static func idealCompletionMs(starts: [StartMessage], steps: Int, shards: Int, slotsPerShard: Int,
                                  requestsPerMinute: Int, draws: MockLLMDraws) -> [Int: Double] {
        let tries = AnthropicClientConfiguration().maxRetries + 1
        let attempts = StockWorkflows.llmStepRetry.maxAttempts
        let workflows = starts.enumerated().map { index, start in
            let stepSeconds = (1...max(1, steps)).map { stepId -> Double in
                var seconds = 0.0
                for attempt in 1...attempts {
                    for httpTry in 1...tries {
                        let draw = draws.draw(LLMStepIdentity(workflowId: start.workflowId, stepId: stepId, attempt: attempt), httpTry: httpTry)
                        seconds += draw.latencySeconds
                        if draw.status == 200 { return seconds }
                    }
                }
                return seconds
            }
            return IdealSchedule.Workflow(index: index, shard: ShardRouting.partition(ofWorkflowId: start.workflowId, partitionCount: shards),
                                          stepSeconds: steps == 0 ? [] : stepSeconds)
        }
        return IdealSchedule.completionSeconds(workflows, slotsPerShard: slotsPerShard,
                                               requestsPerMinute: requestsPerMinute).mapValues { $0 * 1000 }
    }

    private func collect(reader: TopicReader, index: [String: Int], total: Int,
                         progress: @escaping @Sendable (String) -> Void) async -> [String: CompletionEvent] {
        let stall = options.stallTimeout
        let watchdog = WatchdogTimer(timeout: stall) { await reader.close() }
        defer { watchdog.cancel() }
        var found: [String: CompletionEvent] = [:]
        var failed = 0
        let line = BenchProgressLine(total: total)
        var lastPrint = ContinuousClock.now
        for await batch in reader.batches() {
            for message in batch {
                guard let event = try? JSONCoding.decode(CompletionEvent.self, from: message.value),
                      index[event.workflowId] != nil, found[event.workflowId] == nil else { continue }
                found[event.workflowId] = event
                if event.status != .succeeded { failed += 1 }
                watchdog.touch()
            }
            if ContinuousClock.now - lastPrint > .seconds(1) || found.count == total {
                lastPrint = ContinuousClock.now
                progress(line.format(completed: found.count, failed: failed, inFlight: total - found.count))
            }
            if found.count == total { break }
        }
        return found
    }
}

extension BenchWorkflowStatus {
    init(completion status: CompletionStatus) {
        switch status {
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .canceled: self = .canceled
        }
    }
}

/// Calls `action` once `timeout` passes without a `touch()`.
final class WatchdogTimer: Sendable {
    private let lastTouch = Mutex(ContinuousClock.now)
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(timeout: Duration, action: @escaping @Sendable () async -> Void) {
        let started = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if ContinuousClock.now - lastTouch.withLock({ $0 }) > timeout {
                    await action()
                    return
                }
            }
        }
        task.withLock { $0 = started }
    }

    func touch() { lastTouch.withLock { $0 = ContinuousClock.now } }
    func cancel() { task.withLock { $0?.cancel() } }
}

extension BenchExecutorLag.Totals {
    /// The workers' executor-lag histograms, summed (a worker that does not answer adds nothing).
    static func read(ports: [Int]) async -> Self {
        var totals = Self()
        for port in ports {
            totals.add(Self(metrics: await HealthProbe.get(port: port, path: "/metrics")?.body ?? ""))
        }
        return totals
    }
}
