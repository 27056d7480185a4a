import ShardflowSupport
import Foundation
import ShardflowEngine
import ShardflowSupport
import Logging
import Synchronization

/// The engine alone, without Kafka: N workflows of K no-op steps over S shards, in a temporary
/// directory, with real SQLite stores and the real replayer and executor. Outbox rows are
/// acknowledged as soon as they appear, as a publisher would.
public struct EngineBenchmark: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var shards: Int
        public var workflows: Int
        public var stepsPerWorkflow: Int
        public var elapsed: Duration
        public var stepsPerSecond: Double
        /// From a step's result to its workflow's next step being queued.
        public var p50: Duration?
        public var p99: Duration?
        public var ingestElapsed: Duration
        /// SQL statements the shards' writers ran over the whole benchmark (ingest included), per step.
        public var statementsPerStep: Double
        /// Write transactions the shards committed over the whole benchmark, per step.
        public var transactionsPerStep: Double

        public var description: String {
            func ms(_ duration: Duration?) -> String {
                guard let duration else { return "n/a" }
                return String(format: "%.2f ms", Double(duration.nanoseconds) / 1e6)
            }
            return """
                engine benchmark: \(workflows) workflows x \(stepsPerWorkflow) no-op steps over \(shards) shard(s)
                  ingest:        \(ms(ingestElapsed)) for \(workflows) starts
                  run:           \(ms(elapsed))
                  throughput:    \(String(format: "%.0f", stepsPerSecond)) steps/s
                  result -> next step queued: p50 \(ms(p50)), p99 \(ms(p99))
                  statements:    \(String(format: "%.2f", statementsPerStep)) per step (ingest and completion included), in \(String(format: "%.3f", transactionsPerStep)) transactions per step
                """
        }
    }

    public var workflows: Int
    public var stepsPerWorkflow: Int
    public var shards: Int
    public var configuration: ShardConfiguration
    /// Capture every transaction for a shard log (to a sink that confirms each at once): the capture's
    /// own cost, without Kafka.
    public var captureLog: Bool

    public init(workflows: Int = 2_000, stepsPerWorkflow: Int = 3, shards: Int = 1,
                configuration: ShardConfiguration = ShardConfiguration(), captureLog: Bool = false) {
        self.workflows = max(1, workflows)
        self.stepsPerWorkflow = max(1, stepsPerWorkflow)
        self.shards = max(1, shards)
        self.configuration = configuration
        self.captureLog = captureLog
    }

    /// A log that keeps nothing and confirms every transaction as it arrives.
    final class ConfirmingSink: ShardLogSink {
        let shard = Mutex<Shard?>(nil)
        let bytes = Mutex(0)
        func append(_ change: ShardLogChange) {
            bytes.withLock { $0 += change.redo.count }
            // Confirmed off the writer's queue, as a reader of the log would.
            let shard = shard.withLock { $0 }
            Task { shard?.confirmLog(through: change.seq) }
        }
    }

    struct NoopArgs: Codable, Sendable { var steps: Int }

    static func registry() -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.registerStep("noop", input: Int.self, output: Int.self, retry: .atMostOnce) { value, _ in value }
        registry.registerWorkflow("bench", args: NoopArgs.self, result: Int.self) { context, args in
            var value = 0
            for _ in 0..<args.steps { value = try await context.run("noop", value + 1, as: Int.self) }
            return value
        }
        return registry
    }

    public func run(logger: Logger = Logger(label: "shardflow.bench")) async throws -> Report {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shardflow-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let registry = Self.registry()
        let latency = LatencyRecorder()
        var opened: [Shard] = []
        for index in 0..<shards {
            let shard: Shard
            if captureLog {
                let sink = ConfirmingSink()
                let restore = try ShardRestore(directory: directory, shard: index, logger: logger)
                shard = try await Shard.open(restored: restore, writing: ShardLogWriting(epoch: 1, sink: sink),
                                             registry: registry, configuration: configuration)
                sink.shard.withLock { $0 = shard }
            } else {
                shard = try await Shard.open(directory: directory, shard: index, registry: registry,
                                             configuration: configuration, logger: logger)
            }
            shard.recordSchedulingLatency(into: latency)
            opened.append(shard)
        }
        let ingestStart = ContinuousClock.now
        let now = SystemEngineClock().nowMilliseconds()
        var batches = Array(repeating: [InboundMessage](), count: shards)
        for index in 0..<workflows {
            let start = StartMessage(workflowId: "bench-\(index)", workflow: "bench",
                                     args: .object(["steps": .int(Int64(stepsPerWorkflow))]), createdAt: now + Int64(index))
            let target = index % shards
            batches[target].append(InboundMessage(
                stream: .workflows, topic: "shardflow.workflows", partition: target,
                offset: Int64(batches[target].count), key: Array(start.workflowId.utf8),
                value: try start.contractJSON(), timestamp: now))
        }
        for (index, batch) in batches.enumerated() {
            for chunk in stride(from: 0, to: batch.count, by: 1000) {
                _ = try await opened[index].ingest(Array(batch[chunk..<min(chunk + 1000, batch.count)]))
            }
        }
        let ingestElapsed = ContinuousClock.now - ingestStart

        let started = ContinuousClock.now
        for shard in opened { try shard.start() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, shard) in opened.enumerated() {
                let expected = batches[index].count
                group.addTask {
                    var completed = 0
                    while completed < expected {
                        await shard.waitForOutbox()
                        let records = try shard.pendingOutbox(limit: 5000)
                        completed += records.filter { $0.topic == .completions }.count
                        try shard.acknowledgeOutbox(ids: records.map(\.id))
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let statements = opened.reduce(0) { $0 + $1.statementsExecuted }
        let transactions = opened.reduce(0) { $0 + $1.transactionsCommitted }
        for shard in opened { await shard.close(drainTimeout: .seconds(5)) }
        let steps = Double(workflows * stepsPerWorkflow)
        return Report(shards: shards, workflows: workflows, stepsPerWorkflow: stepsPerWorkflow, elapsed: elapsed,
                      stepsPerSecond: steps / (Double(elapsed.nanoseconds) / 1e9),
                      p50: latency.percentile(0.5), p99: latency.percentile(0.99), ingestElapsed: ingestElapsed,
                      statementsPerStep: Double(statements) / steps, transactionsPerStep: Double(transactions) / steps)
    }
}
