import Foundation
import Logging
import ShardflowEngine
import ShardflowKafka

/// Rebuilds a shard's store from its log in Kafka alone, without its owner and without claiming it (for
/// `shardflow check --from-log`): into a scratch directory, so the usual audit can run on it, and so a local
/// copy can be compared with what the log holds.
public enum ShardLogAudit {
    /// What the log held when it was read.
    public struct Result: Sendable {
        public var shard: Int
        /// The last valid transaction and the epoch in force at the end.
        public var position: ShardLogPosition
        public var recordsRead: Int
        public var transactionsApplied: Int
    }

    /// Reads shard `shard`'s log from its beginning to the end it has now and applies the valid history to a
    /// new store in `directory`. Claims and zombies' records count as they do for an owner.
    public static func restore(shard: Int, kafka: KafkaConfiguration, topics: ShardflowTopics, into directory: String,
                               logger: Logger) async throws -> Result {
        let consumer = try KafkaPartitionConsumer(configuration: kafka, options: KafkaConsumerOptions(maxBatch: 2_000),
                                                  logger: logger)
        defer { Task { await consumer.close() } }
        let partition = Int32(shard)
        let (low, high) = try await consumer.watermarks(topic: topics.shardLog, partition: partition)
        let restore = try ShardRestore(directory: directory, shard: shard, logger: logger)
        defer { restore.close() }
        // No claim of its own: the reader stays in its restoring phase and applies every valid change.
        var reader = ShardLogReader(local: .empty, ownClaim: 0)
        guard high > max(low, 0) else {
            return Result(shard: shard, position: reader.checkpoint, recordsRead: 0, transactionsApplied: 0)
        }
        try await consumer.assign([TopicPartitionOffset(topic: topics.shardLog, partition: partition,
                                                        offset: TopicPartitionOffset.beginning)])
        // The end is the batch holding offset high - 1 (a broker may report the high watermark as the last
        // batch's base offset + 1; the whole batch arrives in one piece).
        reading: for await event in consumer.events {
            guard case .messages(let messages) = event else { continue }
            var changes: [ShardLogChange] = []
            for message in messages {
                if case .apply(let change) = reader.read(offset: message.offset, value: message.value) { changes.append(change) }
            }
            try restore.apply(changes)
            if let last = messages.last, last.offset >= high - 1 { break reading }
        }
        try restore.finish(at: reader.checkpoint)
        return Result(shard: shard, position: reader.checkpoint, recordsRead: reader.recordsRead,
                      transactionsApplied: reader.changesApplied)
    }
}
