import Foundation
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka

/// Publishes operator commands and collects their answers from the control-results topic.
public struct ControlClient: Sendable {
    public let configuration: KafkaConfiguration
    public let topics: ShardflowTopics

    public init(configuration: KafkaConfiguration, topics: ShardflowTopics) {
        self.configuration = configuration
        self.topics = topics
    }

    /// The shard count: the partitions of the workflows topic.
    public func shardCount() async throws -> Int {
        try await KafkaAdmin(configuration: configuration).partitionCount(topic: topics.workflows)
    }

    /// Publishes one command per shard (ids `<idPrefix>-<shard>`), and with `wait` collects every answer (up to
    /// `timeout`), ordered by shard. Answers not received in time are missing from the result.
    /// - Parameter workflowId: the one workflow a `failParkedWorkflows` command is about (nil: all of a shard's).
    public func send(_ type: ControlCommandType, shards: [Int], reason: String?, idPrefix: String,
                     wait: Bool, timeout: Duration = .seconds(60), workflowId: String? = nil) async throws -> [ControlResult] {
        let commands = shards.map {
            ControlCommand(type: type, shard: $0, commandId: "\(idPrefix)-\($0)", reason: reason, workflowId: workflowId)
        }
        let reader = wait
            ? try await TopicReader(configuration: configuration, topic: topics.controlResults, fromBeginning: true)
            : nil
        let client = try WorkflowClient(configuration: configuration, topics: topics)
        for command in commands { _ = try await client.send(command) }
        await client.close()
        guard let reader else { return [] }
        let wanted = Set(commands.map(\.commandId))
        let results = await collect(reader: reader, wanted: wanted, timeout: timeout)
        await reader.close()
        return results.sorted { $0.shard < $1.shard }
    }

    private func collect(reader: TopicReader, wanted: Set<String>, timeout: Duration) async -> [ControlResult] {
        // Closing the reader ends its stream, so a timeout returns what arrived so far.
        let deadline = Task {
            try? await Task.sleep(for: timeout)
            await reader.close()
        }
        defer { deadline.cancel() }
        var found: [String: ControlResult] = [:]
        for await batch in reader.batches() {
            for message in batch {
                guard let result = try? JSONCoding.decode(ControlResult.self, from: message.value),
                      wanted.contains(result.commandId) else { continue }
                found[result.commandId] = result
            }
            if found.count == wanted.count { break }
        }
        return Array(found.values)
    }
}
