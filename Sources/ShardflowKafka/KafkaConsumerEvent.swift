/// A message read from Kafka.
public struct KafkaMessage: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    /// The message timestamp in milliseconds since the Unix epoch, if the broker gave one.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], timestamp: Int64?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = timestamp
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
    /// The offset to commit once this message is processed.
    public var nextOffset: TopicPartitionOffset { TopicPartitionOffset(topic: topic, partition: partition, offset: offset + 1) }
}

/// What a consumer reports, in order.
public enum KafkaConsumerEvent: Sendable {
    /// A batch of messages (possibly of several partitions; in offset order within each partition).
    case messages([KafkaMessage])
    /// The group gave these partitions to this consumer.
    case assigned([TopicPartition])
    /// The group takes these partitions away. They are handed over only after the application asks
    /// for the next event (or `revokeTimeout` passes), so finish and commit their work first.
    case revoked([TopicPartition])
    /// A client-level error (brokers unreachable, authentication, …); librdkafka keeps retrying.
    case error(KafkaError)
}
