import Crdkafka
import Logging
import ServiceLifecycle
import Synchronization

/// Tuning shared by both consumers.
public struct KafkaConsumerOptions: Sendable {
    /// Events buffered before the poll thread waits for the application (back-pressure).
    public var bufferCapacity: Int = 64
    /// Messages per `.messages` batch at most.
    public var maxBatch: Int = 500
    /// How long a revocation waits for the application to ask for the next event.
    public var revokeTimeout: Duration = .seconds(30)
    /// Group consumers only: partitions arrive paused (`.assigned`), paused on the poll thread before any
    /// of their messages can be read, so an application that must first position a partition (restore
    /// state, then `seek`) can go on handling events meanwhile, revokes included, and `resume` it once
    /// ready. Nothing of such a partition is read before the resume.
    public var startsAssignedPartitionsPaused: Bool = false

    public init(bufferCapacity: Int = 64, maxBatch: Int = 500, revokeTimeout: Duration = .seconds(30),
                startsAssignedPartitionsPaused: Bool = false) {
        self.bufferCapacity = bufferCapacity
        self.maxBatch = maxBatch
        self.revokeTimeout = revokeTimeout
        self.startsAssignedPartitionsPaused = startsAssignedPartitionsPaused
    }
}

/// A consumer-group member: subscribe, then read `events`. Offsets are committed only when asked
/// (`enable.auto.commit=false`); without a committed offset a partition starts at its beginning
/// (`auto.offset.reset=earliest`). Any property can be overridden.
public final class KafkaConsumer: Sendable, Service {
    private let core: ConsumerCore
    public let groupID: String
    private let subscription = Mutex<[String]>([])

    /// Messages and group events, in order, with back-pressure. Ends after `close()`.
    public var events: KafkaConsumerEvents { KafkaConsumerEvents(buffer: core.buffer) }

    public init(configuration: KafkaConfiguration, groupID: String, options: KafkaConsumerOptions = KafkaConsumerOptions(), logger: Logger = Logger(label: "shardflow.kafka.consumer")) throws {
        guard !groupID.isEmpty else { throw KafkaError.invalidArgument("a consumer group id must not be empty") }
        self.groupID = groupID
        core = try ConsumerCore(
            configuration: configuration, extraDefaults: ["group.id": groupID], logger: logger,
            bufferCapacity: options.bufferCapacity, maxBatch: options.maxBatch, revokeTimeout: options.revokeTimeout,
            pausesAssignedPartitions: options.startsAssignedPartitionsPaused)
    }

    /// Joins the group for these topics (replacing an earlier subscription).
    public func subscribe(topics: [String]) throws {
        guard !topics.isEmpty else { throw KafkaError.invalidArgument("subscribe needs at least one topic") }
        let list = PartitionList.make(topics.map { TopicPartition(topic: $0, partition: -1) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = rd_kafka_subscribe(core.client.handle, list)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code) }
        subscription.withLock { $0 = topics }
    }

    /// Leaves the group and joins it again with the same topics: every partition is revoked (as
    /// `.revoked`) and the group assigns them anew (as `.assigned`), for a member that must reopen
    /// what it owns.
    public func rejoin() throws {
        let topics = subscription.withLock { $0 }
        guard !topics.isEmpty else { throw KafkaError.invalidArgument("rejoin needs a subscription") }
        let code = rd_kafka_unsubscribe(core.client.handle)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code) }
        try subscribe(topics: topics)
    }

    /// Commits these offsets (each the next offset to read) for the group; waits for the broker's answer.
    public func commit(_ offsets: [TopicPartitionOffset]) async throws {
        try await core.commit(offsets)
    }

    /// The group's committed offsets of these partitions (negative when none). A cancelled caller stops
    /// waiting at once (the broker may hold the answer back until a rebalance completes).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) async throws -> [TopicPartitionOffset] {
        try await core.committed(partitions, timeout: timeout)
    }

    /// The last known high watermark (the offset the next produced message gets) of an assigned partition,
    /// from the fetcher's cache: no broker round trip, so it is cheap enough for a lag gauge. Nil until the
    /// partition has been fetched.
    public func cachedHighWatermark(topic: String, partition: Int32) -> Int64? {
        var low: Int64 = -1
        var high: Int64 = -1
        let code = rd_kafka_get_watermark_offsets(core.client.handle, topic, partition, &low, &high)
        return code == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// Moves the read position of an assigned partition (a paused one too: it is read from there once
    /// resumed). A cancelled caller stops waiting at once, and a seek not yet begun is not made.
    public func seek(topic: String, partition: Int32, offset: Int64, timeout: Duration = .seconds(10)) async throws {
        try await core.seek([TopicPartitionOffset(topic: topic, partition: partition, offset: offset)], timeout: timeout)
    }

    /// Stops fetching these (assigned) partitions until `resume`.
    public func pause(_ partitions: [TopicPartition]) throws { try core.pause(partitions) }

    public func resume(_ partitions: [TopicPartition]) throws { try core.resume(partitions) }

    /// Leaves the group cleanly, then ends `events`. Stop handling events first: messages not yet
    /// read are dropped (uncommitted, so the group redelivers them); only the last `.revoked` is kept.
    public func close() async { await core.close() }

    /// Runs until graceful shutdown, then closes.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// A consumer of partitions chosen by the application (no group membership, no commits): for
/// inputs whose offsets are kept elsewhere, e.g. in the application's own database.
public final class KafkaPartitionConsumer: Sendable, Service {
    private let core: ConsumerCore

    public var events: KafkaConsumerEvents { KafkaConsumerEvents(buffer: core.buffer) }

    public init(configuration: KafkaConfiguration, options: KafkaConsumerOptions = KafkaConsumerOptions(), logger: Logger = Logger(label: "shardflow.kafka.partition-consumer")) throws {
        // librdkafka's consumer API needs a group id even when it never joins or commits.
        let group = "shardflow-manual-\(UInt64.random(in: 0...UInt64.max))"
        core = try ConsumerCore(
            configuration: configuration, extraDefaults: ["group.id": group], logger: logger,
            bufferCapacity: options.bufferCapacity, maxBatch: options.maxBatch, revokeTimeout: options.revokeTimeout)
    }

    /// Starts reading these partitions at these offsets, keeping the partitions already assigned.
    public func assign(_ partitions: [TopicPartitionOffset]) async throws {
        guard !partitions.isEmpty else { return }
        try await core.blocking { rk in
            let list = PartitionList.make(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if let failure = rd_kafka_incremental_assign(rk, list) { throw KafkaError(consuming: failure) }
        }
    }

    /// Stops reading these partitions.
    public func unassign(_ partitions: [TopicPartition]) async throws {
        guard !partitions.isEmpty else { return }
        try await core.blocking { rk in
            let list = PartitionList.make(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if let failure = rd_kafka_incremental_unassign(rk, list) { throw KafkaError(consuming: failure) }
        }
    }

    /// The partitions currently assigned.
    public func assignment() async throws -> [TopicPartition] {
        try await core.blocking { rk in
            var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            let code = rd_kafka_assignment(rk, &list)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code) }
            guard let list else { return [] }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            return PartitionList.entries(list).map(\.topicPartition)
        }
    }

    public func seek(topic: String, partition: Int32, offset: Int64, timeout: Duration = .seconds(10)) async throws {
        try await core.seek([TopicPartitionOffset(topic: topic, partition: partition, offset: offset)], timeout: timeout)
    }

    /// Asks the broker for a partition's low and high watermarks. (Some brokers answer the high one as
    /// the last batch's base offset + 1: a record written alone is then still the one below it.)
    public func watermarks(topic: String, partition: Int32, timeout: Duration = .seconds(10)) async throws -> (low: Int64, high: Int64) {
        let ms = timeout.int32Milliseconds
        return try await core.blocking { rk in
            var low: Int64 = -1
            var high: Int64 = -1
            let code = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, ms)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code) }
            return (low, high)
        }
    }

    public func pause(_ partitions: [TopicPartition]) throws { try core.pause(partitions) }

    public func resume(_ partitions: [TopicPartition]) throws { try core.resume(partitions) }

    public func close() async { await core.close() }

    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
