import Foundation
import Logging
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka
import ShardflowTesting

/// What `shardflow bench-takeover` runs: one worker builds up shards full of in-flight workflows and
/// leaves; a second worker, on an empty data directory (another host), takes every shard over by
/// restoring it from its log; then the second worker restarts on its own directory (nothing to restore).
public struct TakeoverBenchmark: Sendable {
    public struct Options: Sendable {
        public var shards = 100
        /// `approval` workflows left waiting for their event: in flight when the shards move.
        public var inFlight = 20_000
        /// `noop` workflows of `steps` steps run to completion first: history the log holds too.
        public var completed = 0
        public var steps = 3
        /// The workers' `--snapshot-every` (0: no snapshots, so a new owner reads each whole log).
        public var snapshotEvery = 0
        public var workerExecutable: String
        public var outputDirectory: String

        public init(workerExecutable: String, outputDirectory: String) {
            self.workerExecutable = workerExecutable
            self.outputDirectory = outputDirectory
        }
    }

    /// One takeover, as the new owner saw it.
    public struct Takeover: Sendable, CustomStringConvertible {
        public var label: String
        /// From the process start to the group's assignment (joining), and from the assignment to every
        /// shard running (restoring).
        public var secondsToAssignment: Double
        public var secondsFromAssignmentToRunning: Double
        public var recordsRead: Double
        public var transactionsApplied: Double
        /// The slowest shard's restore (shards restore concurrently).
        public var slowestShardSeconds: Double
        public var runningWorkflows: Int

        public var description: String {
            String(format: "%@: assignment after %.2f s, then all shards running after %.2f s (slowest shard %.2f s); %.0f log records read, %.0f transactions applied; %d workflows running",
                   label, secondsToAssignment, secondsFromAssignmentToRunning, slowestShardSeconds, recordsRead,
                   transactionsApplied, runningWorkflows)
        }
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> [Takeover] {
        let output = URL(fileURLWithPath: options.outputDirectory)
        try? FileManager.default.removeItem(at: output)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let broker = try await RunBroker.start(given: nil, storage: .memory, properties: [:], logger: logger, progress: progress)
        let runId = LoadGenerator.runId(prefix: "takeover")
        let topics = ShardflowTopics(prefix: runId)
        try await TopicSetup.createAll(admin: try KafkaAdmin(configuration: broker.kafka), topics: topics, partitions: options.shards)
        let hostA = output.appendingPathComponent("host-a").path
        let hostB = output.appendingPathComponent("host-b").path
        func worker(_ name: String, directory: String, port: Int) throws -> ChildProcess {
            var arguments = [options.workerExecutable, "worker", "--brokers", broker.bootstrapServers, "--prefix", runId,
                             "--group", runId, "--data-dir", directory, "--http-port", String(port),
                             "--snapshot-every", String(options.snapshotEvery)]
            for (key, value) in broker.kafka.properties { arguments += ["-X", "\(key)=\(value)"] }
            return try ChildProcess(arguments: arguments, outputPath: output.appendingPathComponent("\(name).log").path)
        }

        let portA = try LocalBroker.freeLoopbackPort()
        let first = try worker("worker-a", directory: hostA, port: portA)
        try await HealthProbe.waitUntilReady(port: portA, timeout: .seconds(120))
        let client = try WorkflowClient(configuration: broker.kafka, topics: topics)
        if options.completed > 0 {
            progress("running \(options.completed) noop workflows of \(options.steps) steps to completion")
            let reader = try await TopicReader(configuration: broker.kafka, topic: topics.completions, fromBeginning: true)
            try await client.startAll(LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(Int64(options.steps))]),
                                                           count: options.completed, idPrefix: runId))
            var seen = Set<String>()
            for await batch in reader.batches() {
                for message in batch { if let key = message.key { seen.insert(String(decoding: key, as: UTF8.self)) } }
                if seen.count >= options.completed { break }
            }
            await reader.close()
        }
        progress("starting \(options.inFlight) approval workflows, left waiting")
        try await client.startAll(LoadGenerator.starts(workflow: "approval", args: .object(["timeoutSeconds": .int(86_400)]),
                                                       count: options.inFlight, idPrefix: runId))
        await client.close()
        try await waitForRunning(options.inFlight, in: hostA, progress: progress)
        progress("worker A leaves (SIGTERM)")
        _ = await first.terminate(timeout: .seconds(120))

        var takeovers: [Takeover] = []
        let portB = try LocalBroker.freeLoopbackPort()
        let second = try worker("worker-b", directory: hostB, port: portB)
        takeovers.append(try await measure("another host (empty data directory)", port: portB, directory: hostB))
        progress(takeovers[0].description)
        _ = await second.terminate(timeout: .seconds(120))
        let again = try worker("worker-b-again", directory: hostB, port: portB)
        takeovers.append(try await measure("the same host again (its stores current)", port: portB, directory: hostB))
        progress(takeovers[1].description)
        _ = await again.terminate(timeout: .seconds(120))
        await broker.stop()
        return takeovers
    }

    private func waitForRunning(_ count: Int, in directory: String, progress: @Sendable (String) -> Void) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(600))
        while ContinuousClock.now < deadline {
            let running = runningWorkflows(in: directory)
            if running >= count { return }
            try await Task.sleep(for: .seconds(1))
        }
        throw BenchReportError("worker A did not start \(count) workflows within 600 s")
    }

    private func runningWorkflows(in directory: String) -> Int {
        ((try? ShardInspector.shards(in: directory)) ?? []).reduce(0) { sum, shard in
            sum + ((try? ShardInspector(directory: directory, shard: shard).stats().workflowsByStatus["running"]) ?? 0)
        }
    }

    /// Polls the new owner's `/readyz` every 20 ms from its start: assigned once it no longer waits for
    /// the group, running once ready.
    private func measure(_ label: String, port: Int, directory: String) async throws -> Takeover {
        let started = ContinuousClock.now
        var assigned: ContinuousClock.Instant?
        let deadline = started.advanced(by: .seconds(600))
        while ContinuousClock.now < deadline {
            if let answer = await HealthProbe.get(port: port, path: "/readyz") {
                if assigned == nil, !answer.body.contains("consumer group not joined yet") { assigned = ContinuousClock.now }
                if answer.status == 200 { break }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let running = ContinuousClock.now
        guard running < deadline else { throw BenchReportError("\(label): the worker was not ready within 600 s") }
        let metrics = await HealthProbe.get(port: port, path: "/metrics")?.body ?? ""
        let assignedAt = assigned ?? running
        return Takeover(
            label: label, secondsToAssignment: (assignedAt - started).timeInterval,
            secondsFromAssignmentToRunning: (running - assignedAt).timeInterval,
            recordsRead: PrometheusText.sum("shardflow_restore_records_total", in: metrics),
            transactionsApplied: PrometheusText.sum("shardflow_restore_changes_total", in: metrics),
            slowestShardSeconds: PrometheusText.max("shardflow_restore_duration_seconds", in: metrics) ?? 0,
            runningWorkflows: runningWorkflows(in: directory))
    }
}
