import ShardflowKafka

/// Creates every topic of the contract, idempotently, and checks the shard topics agree.
public enum TopicSetup {
    public struct Created: Sendable {
        public var topics: [TopicMetadata]
    }

    public struct MismatchError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates the inbound topics with `partitions` partitions (one per shard) and the outbound ones with the
    /// same count (they are keyed, so more partitions means more parallel consumers downstream). Topics that
    /// already exist are left as they are; a control topic whose partition count differs from the workflows
    /// topic is an error, since partition p of one must be shard p of the other.
    @discardableResult
    public static func createAll(admin: KafkaAdmin, topics: ShardflowTopics, partitions: Int,
                                 replicationFactor: Int = 1) async throws -> Created {
        try await admin.createTopics(topics.all.map {
            NewTopic(name: $0, partitions: partitions, replicationFactor: replicationFactor)
        })
        let all = try await admin.listTopics()
        let ours = topics.all.compactMap { name in all.first { $0.name == name } }
        let workflows = ours.first { $0.name == topics.workflows }?.partitionCount
        for other in [topics.control, topics.shardLog, topics.shardSnapshots] {
            let count = ours.first { $0.name == other }?.partitionCount
            if let workflows, let count, workflows != count {
                throw MismatchError(description: "\(topics.workflows) has \(workflows) partitions but \(other) has \(count): partition p must exist for every shard p")
            }
        }
        return Created(topics: ours)
    }
}
