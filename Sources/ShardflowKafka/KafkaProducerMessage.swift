/// A message to publish.
public struct KafkaProducerMessage: Sendable {
    public var topic: String
    /// The partition to write to; nil lets the partitioner choose from the key.
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]

    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
    }

    /// A message with UTF-8 text key and value.
    public init(topic: String, partition: Int32? = nil, key: String?, value: String) {
        self.init(topic: topic, partition: partition, key: key.map { Array($0.utf8) }, value: Array(value.utf8))
    }
}

/// Where a published message was stored.
public struct DeliveryReport: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}
