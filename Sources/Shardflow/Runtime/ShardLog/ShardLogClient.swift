import Logging
import Metrics
import ShardflowEngine
import ShardflowKafka
import ShardflowSupport
import Synchronization

/// The worker's side of the shard logs (`<prefix>.shard-log`, partition p for shard p): one producer
/// writes claims and transaction records, one consumer reads the partitions of the shards this worker
/// restores or owns and hands each shard its own stream, in offset order.
final class ShardLogClient: Sendable {
    let topic: String
    let producer: KafkaProducer
    private let configuration: KafkaConfiguration
    private let consumer: KafkaPartitionConsumer
    private let logger: Logger
    private let routes = Mutex<[Int32: AsyncStream<[KafkaMessage]>.Continuation]>([:])

    /// `configuration` is the worker's, as it is: the broker answers a fetch as soon as records arrive, and
    /// a shorter `fetch.wait.max.ms` only polls an idle partition more often (on a broker over object
    /// storage, each poll is a listing).
    init(topic: String, configuration: KafkaConfiguration, producer: KafkaProducer, logger: Logger) throws {
        self.topic = topic
        self.producer = producer
        self.logger = logger
        self.configuration = configuration
        consumer = try KafkaPartitionConsumer(configuration: configuration,
                                              options: KafkaConsumerOptions(bufferCapacity: 256, maxBatch: 2_000),
                                              logger: logger)
    }

    /// Routes what the consumer reads to the shards' streams; runs until the consumer closes.
    func run() async {
        for await event in consumer.events {
            switch event {
            case .messages(let messages):
                let byPartition = Dictionary(grouping: messages, by: \.partition)
                let targets = routes.withLock { routes in byPartition.keys.map { ($0, routes[$0]) } }
                for (partition, continuation) in targets {
                    continuation?.yield(byPartition[partition] ?? [])
                }
            case .error(let error):
                logger.warning("shard-log consumer: \(error)")
            case .assigned, .revoked:
                break
            }
        }
        routes.withLock { routes in
            for continuation in routes.values { continuation.finish() }
            routes.removeAll()
        }
    }

    /// Appends a claim of `shard` and returns it with the offset the broker stored it at.
    func claim(shard: Int, owner: String, now: Int64) async throws -> (claim: ShardLogClaim, offset: Int64) {
        let claim = ShardLogClaim(owner: owner, at: now)
        let report = try await producer.send(KafkaProducerMessage(
            topic: topic, partition: Int32(shard), key: nil, value: ShardLogRecord.claim(claim).encoded()))
        return (claim, report.offset)
    }

    /// Starts reading shard `shard`'s partition after `offset` (-1: from its beginning). One stream per
    /// shard at a time; `stopReading` ends it.
    func read(shard: Int, after offset: Int64) async throws -> AsyncStream<[KafkaMessage]> {
        let (stream, continuation) = AsyncStream<[KafkaMessage]>.makeStream()
        let partition = Int32(shard)
        let previous = routes.withLock { routes in
            defer { routes[partition] = continuation }
            return routes[partition]
        }
        previous?.finish()
        if previous != nil { try? await consumer.unassign([TopicPartition(topic: topic, partition: partition)]) }
        try await consumer.assign([TopicPartitionOffset(topic: topic, partition: partition,
                                                        offset: offset < 0 ? TopicPartitionOffset.beginning : offset + 1)])
        return stream
    }

    /// Stops reading shard `shard`'s partition and ends its stream.
    func stopReading(shard: Int) async {
        let partition = Int32(shard)
        let continuation = routes.withLock { $0.removeValue(forKey: partition) }
        guard let continuation else { return }
        continuation.finish()
        do {
            try await consumer.unassign([TopicPartition(topic: topic, partition: partition)])
        } catch {
            logger.warning("shard \(shard): cannot stop reading its log: \(error)")
        }
    }

    /// Reads a partition after `offset` (-1: from its beginning) with a consumer of its own (a restore from
    /// scratch after a divergence: the shared consumer may still hold records of the reading before it).
    /// `body` gets each batch and returns whether to go on.
    func readAlone(shard: Int, after offset: Int64, _ body: ([KafkaMessage]) async throws -> Bool) async throws {
        let alone = try KafkaPartitionConsumer(configuration: configuration, options: KafkaConsumerOptions(maxBatch: 2_000),
                                               logger: logger)
        try await alone.assign([TopicPartitionOffset(topic: topic, partition: Int32(shard),
                                                     offset: offset < 0 ? TopicPartitionOffset.beginning : offset + 1)])
        defer { Task { await alone.close() } }
        for await event in alone.events {
            switch event {
            case .messages(let messages): if try await !body(messages) { return }
            case .error(let error): logger.warning("shard \(shard): reading its log: \(error)")
            case .assigned, .revoked: break
            }
        }
    }

    /// A partition's watermarks, asked through the shared consumer (no assignment needed).
    func watermarks(topic: String, partition: Int32) async throws -> (low: Int64, high: Int64) {
        try await consumer.watermarks(topic: topic, partition: partition)
    }

    func close() async {
        await consumer.close()
    }
}

/// Takes a shard's committed transactions to its log partition, in order. The engine hands each over
/// right after its commit; a task sends them in batches (one produce round trip per batch, however many
/// transactions committed meanwhile). A batch that is not stored whole is sent again from its first
/// failed record, with a growing pause, before anything after it: the log keeps the commit order, and
/// the copies this may write are ignored by readers (their seq was read already).
final class ShardLogAppender: ShardLogSink {
    private let shard: Int
    private let client: ShardLogClient
    private let logger: Logger
    private let pending = Mutex<[ShardLogChange]>([])
    private let wake = AsyncSignal()
    private let bytesWritten: Counter
    private let recordsWritten: Counter

    init(shard: Int, client: ShardLogClient, logger: Logger) {
        self.shard = shard
        self.client = client
        self.logger = logger
        bytesWritten = Counter(label: "shardflow_shard_log_bytes_total", dimensions: [("shard", String(shard))])
        recordsWritten = Counter(label: "shardflow_shard_log_records_total", dimensions: [("shard", String(shard))])
    }

    func append(_ change: ShardLogChange) {
        pending.withLock { $0.append(change) }
        wake.notify()
    }

    /// Sends until cancelled, then sends what is pending once more (so a settling shard's last
    /// transactions reach the log) and returns. What it could not send is lost with the process: the
    /// store is then ahead of its log, which its next open finds and repairs.
    func run() async {
        var unsent: [KafkaProducerMessage] = []
        var pause = Duration.milliseconds(100)
        while true {
            let cancelled = Task.isCancelled
            if unsent.isEmpty {
                let batch = pending.withLock { pending in
                    defer { pending.removeAll(keepingCapacity: true) }
                    return pending
                }
                unsent = batch.flatMap { ShardLogRecord.records(of: $0) }.map { record in
                    KafkaProducerMessage(topic: client.topic, partition: Int32(shard), key: nil, value: record.encoded())
                }
            }
            if unsent.isEmpty {
                if cancelled { return }
                await wake.wait()
                continue
            }
            let results = await client.producer.sendAll(unsent)
            let firstFailure = results.firstIndex { if case .failure = $0 { return true } else { return false } }
            let sent = firstFailure ?? unsent.count
            recordsWritten.increment(by: sent)
            bytesWritten.increment(by: unsent[..<sent].reduce(0) { $0 + $1.value.count })
            guard let firstFailure else {
                unsent = []
                pause = .milliseconds(100)
                continue
            }
            if case .failure(let error) = results[firstFailure] {
                logger.warning("shard \(shard): \(unsent.count - firstFailure) shard-log records not stored (\(error)); sending them again in \(pause)")
            }
            unsent = Array(unsent[firstFailure...])
            if cancelled { return }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
    }
}
