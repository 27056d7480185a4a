import Foundation
import ShardflowEngine
import ShardflowKafka

/// Publishes inbound messages (start, cancel, event, control commands) the way the contract says: workflow
/// messages keyed by workflowId with the `murmur2_random` partitioner, control commands to the partition of
/// the shard they target.
public final class WorkflowClient: Sendable {
    public let topics: ShardflowTopics
    private let producer: KafkaProducer

    public init(configuration: KafkaConfiguration, topics: ShardflowTopics) throws {
        try Librdkafka.requireSupportedVersion()
        self.topics = topics
        self.producer = try KafkaProducer(configuration: configuration)
    }

    public func start(_ message: StartMessage) async throws -> DeliveryReport {
        try await producer.send(try workflowMessage(key: message.workflowId, message))
    }

    public func cancel(_ message: CancelMessage) async throws -> DeliveryReport {
        try await producer.send(try workflowMessage(key: message.workflowId, message))
    }

    public func send(_ message: EventMessage) async throws -> DeliveryReport {
        try await producer.send(try workflowMessage(key: message.workflowId, message))
    }

    /// Publishes a control command to the partition of its shard.
    public func send(_ command: ControlCommand) async throws -> DeliveryReport {
        try await producer.send(KafkaProducerMessage(
            topic: topics.control, partition: Int32(command.shard),
            key: Array(command.commandId.utf8), value: try command.contractJSON()))
    }

    /// Publishes many starts, `batchSize` at a time, calling `progress` with the number delivered so far.
    /// Starts without `createdAt` get the time their batch is sent (never decreasing across batches).
    /// Throws the first delivery error after the batch it happened in.
    public func startAll(
        _ messages: [StartMessage], batchSize: Int = 5_000,
        progress: @Sendable (Int) -> Void = { _ in }
    ) async throws {
        var delivered = 0
        var index = 0
        var lastStamp: Int64 = 0
        while index < messages.count {
            let batch = messages[index..<min(index + batchSize, messages.count)]
            lastStamp = max(lastStamp, Int64(Date().timeIntervalSince1970 * 1000))
            let records = try batch.map { start in
                var stamped = start
                if stamped.createdAt == nil { stamped.createdAt = lastStamp }
                return try workflowMessage(key: stamped.workflowId, stamped)
            }
            let results = await producer.sendAll(records)
            for result in results {
                if case .failure(let error) = result { throw error }
            }
            delivered += batch.count
            index += batchSize
            progress(delivered)
        }
    }

    /// Publishes raw bytes to the workflows topic (tests use it to publish malformed input).
    public func publishRaw(key: String?, value: [UInt8]) async throws -> DeliveryReport {
        try await producer.send(KafkaProducerMessage(topic: topics.workflows, key: key.map { Array($0.utf8) }, value: value))
    }

    public func close() async {
        await producer.close()
    }

    private func workflowMessage(key: String, _ value: some Encodable) throws -> KafkaProducerMessage {
        KafkaProducerMessage(topic: topics.workflows, key: Array(key.utf8), value: try value.contractJSON())
    }
}
