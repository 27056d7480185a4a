import Foundation
import Logging
import ShardflowKafka

/// Reads every partition of one topic without joining a group: `shardflow tail`, the admin command's `--wait`,
/// the benchmark and the tests use it to watch what Shardflow publishes.
public final class TopicReader: Sendable {
    public let topic: String
    private let consumer: KafkaPartitionConsumer

    /// Starts reading `topic` from its beginning (`fromBeginning`) or from its end.
    public init(configuration: KafkaConfiguration, topic: String, fromBeginning: Bool,
                logger: Logger = Logger(label: "shardflow.reader")) async throws {
        try Librdkafka.requireSupportedVersion()
        self.topic = topic
        let admin = try KafkaAdmin(configuration: configuration, logger: logger)
        let partitions = try await admin.partitionCount(topic: topic)
        var options = KafkaConsumerOptions()
        options.maxBatch = 2_000
        consumer = try KafkaPartitionConsumer(configuration: configuration, options: options, logger: logger)
        let start = fromBeginning ? TopicPartitionOffset.beginning : TopicPartitionOffset.end
        try await consumer.assign((0..<partitions).map {
            TopicPartitionOffset(topic: topic, partition: Int32($0), offset: start)
        })
    }

    /// Batches of messages as they arrive; ends after `close()`.
    public func batches() -> AsyncStream<[KafkaMessage]> {
        let events = consumer.events
        return AsyncStream { continuation in
            let task = Task {
                for await event in events {
                    if case .messages(let messages) = event { continuation.yield(messages) }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public func close() async {
        await consumer.close()
    }
}
