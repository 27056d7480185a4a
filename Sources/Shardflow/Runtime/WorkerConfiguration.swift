import Foundation
import ShardflowEngine
import ShardflowKafka

/// Everything a worker process is configured with (see docs/configuration.md).
public struct WorkerConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var topics: ShardflowTopics
    /// The consumer group sharing the shards.
    public var groupID: String
    /// Where the shard stores live (`shard-007.sqlite`, ...).
    public var dataDirectory: String
    public var shard: ShardConfiguration
    /// On revoke and shutdown: how long in-flight steps may take to finish before they go back to the queue.
    public var drainTimeout: Duration
    /// On shutdown: how long to keep publishing the outbox after the shards stopped.
    public var flushTimeout: Duration
    /// How long to wait for a shard's previous owner (another process on this host) to release its store.
    public var shardOpenTimeout: Duration
    /// Start a shard from an empty store even when the group has consumed its input before its log began
    /// (a store from before the shard log, in another data directory). Off by default: that would run the
    /// shard's workflows again.
    public var adoptMissingStores = false
    /// An owner writes a snapshot of a shard's store to `<prefix>.shard-snapshots` after this many
    /// transactions since the last one (0: never), so a new owner restores the snapshot and the log after it.
    public var snapshotEvery = 10_000

    public init(kafka: KafkaConfiguration, topics: ShardflowTopics = ShardflowTopics(), groupID: String = "shardflow",
                dataDirectory: String, shard: ShardConfiguration = ShardConfiguration(),
                drainTimeout: Duration = .seconds(30), flushTimeout: Duration = .seconds(10),
                shardOpenTimeout: Duration = .seconds(120)) {
        self.kafka = kafka
        self.topics = topics
        self.groupID = groupID
        self.dataDirectory = dataDirectory
        self.shard = shard
        self.drainTimeout = drainTimeout
        self.flushTimeout = flushTimeout
        self.shardOpenTimeout = shardOpenTimeout
    }
}
