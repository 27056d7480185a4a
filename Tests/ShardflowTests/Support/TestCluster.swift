import Foundation
import Logging
import Shardflow
import ShardflowEngine
import ShardflowKafka
import ShardflowTesting
import Synchronization
import Testing

/// The repository, located from this file, and the `shardflow` binary the test command built.
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var shardflowBinary: String {
        if let path = ProcessInfo.processInfo.environment["SHARDFLOW_BINARY"], !path.isEmpty { return path }
        return root.appendingPathComponent(".build/debug/shardflow").path
    }
}

/// A real broker (Tansu, started for the suite), topics under a fresh prefix, worker processes of the real
/// `shardflow` binary, and readers of what they publish.
final class TestCluster: Sendable {
    let broker: LocalBroker
    let topics: ShardflowTopics
    let partitions: Int
    let directory: URL
    var kafka: KafkaConfiguration { broker.configuration }

    static func start(partitions: Int = 8, name: String = "t") async throws -> TestCluster {
        let broker = try await LocalBroker.started()
        let topics = ShardflowTopics(prefix: LoadGenerator.runId(prefix: name))
        try await TopicSetup.createAll(admin: try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: broker.bootstrapServers)),
                                       topics: topics, partitions: partitions)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shardflow-test-\(topics.prefix)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return TestCluster(broker: broker, topics: topics, partitions: partitions, directory: directory)
    }

    private init(broker: LocalBroker, topics: ShardflowTopics, partitions: Int, directory: URL) {
        self.broker = broker
        self.topics = topics
        self.partitions = partitions
        self.directory = directory
    }

    var dataDirectory: String { directory.appendingPathComponent("data").path }

    /// Starts `shardflow worker` as a child process (it dies with the test process).
    func startWorker(name: String = "worker", extra: [String] = []) throws -> ChildProcess {
        let arguments = [Repository.shardflowBinary, "worker", "--brokers", broker.bootstrapServers,
                         "--prefix", topics.prefix, "--group", topics.prefix, "--data-dir", dataDirectory,
                         "--http-port", "0", "--drain-timeout", "10"]
            + LocalBroker.clientProperties.flatMap { ["-X", "\($0.key)=\($0.value)"] } + extra
        return try ChildProcess(arguments: arguments,
                                outputPath: directory.appendingPathComponent("\(name).log").path)
    }

    func client() throws -> WorkflowClient {
        try WorkflowClient(configuration: kafka, topics: topics)
    }

    func reader(_ topic: String) async throws -> TopicReader {
        try await TopicReader(configuration: kafka, topic: topic, fromBeginning: true)
    }

    /// Audits every shard store in the data directory.
    func audit() throws -> [AuditReport] {
        try ShardInspector.shards(in: dataDirectory).map {
            try ShardInspector(directory: dataDirectory, shard: $0).audit()
        }
    }

    func stop() async {
        await broker.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Collects the JSON messages of one topic in the background.
final class TopicCollector: Sendable {
    private final class MessageSink: Sendable {
        let messages = Mutex<[KafkaMessage]>([])
    }

    private let sink: MessageSink
    private let reader: TopicReader
    private let task: Task<Void, Never>

    init(reader: TopicReader) {
        self.reader = reader
        let sink = MessageSink()
        self.sink = sink
        task = Task {
            for await batch in reader.batches() {
                sink.messages.withLock { $0.append(contentsOf: batch) }
            }
        }
    }

    var all: [KafkaMessage] { sink.messages.withLock { $0 } }

    func decoded<T: Decodable>(_ type: T.Type) -> [T] {
        let decoder = JSONDecoder()
        return all.compactMap { try? decoder.decode(T.self, from: Data($0.value)) }
    }

    /// Waits until `condition` holds over the messages so far, or `timeout` passes; returns whether it held.
    @discardableResult
    func wait(timeout: Duration, until condition: ([KafkaMessage]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if condition(all) { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return condition(all)
    }

    func close() async {
        await reader.close()
        await task.value
    }
}

extension TopicCollector {
    /// Distinct completions by workflowId, with the eventIds seen for each.
    func completions() -> (byWorkflow: [String: CompletionEvent], eventIds: [String: Set<String>]) {
        var byWorkflow: [String: CompletionEvent] = [:]
        var eventIds: [String: Set<String>] = [:]
        for event in decoded(CompletionEvent.self) {
            byWorkflow[event.workflowId] = event
            eventIds[event.workflowId, default: []].insert(event.eventId)
        }
        return (byWorkflow, eventIds)
    }

    func waitForCompletions(_ ids: Set<String>, timeout: Duration) async -> Bool {
        await wait(timeout: timeout) { messages in
            let decoder = JSONDecoder()
            var seen = Set<String>()
            for message in messages {
                if let event = try? decoder.decode(CompletionEvent.self, from: Data(message.value)),
                   ids.contains(event.workflowId) { seen.insert(event.workflowId) }
            }
            return seen.count == ids.count
        }
    }
}
