import Crdkafka
import Logging
import ShardflowSupport

/// What both consumers share: the librdkafka handle, its poll thread, the event buffer and the
/// blocking-call thread.
final class ConsumerCore: Sendable {
    static let defaultProperties: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": "false",
        "allow.auto.create.topics": "false",
    ]

    let client: NativeClient
    let buffer: EventBuffer
    let executor: BlockingExecutor
    private let loop: ConsumerPollLoop
    private let stopPolling = OnceFlag()
    private let pollThread: DedicatedThread

    init(configuration: KafkaConfiguration, extraDefaults: [String: String], logger: Logger, bufferCapacity: Int, maxBatch: Int, revokeTimeout: Duration,
         pausesAssignedPartitions: Bool = false) throws {
        let buffer = EventBuffer(capacity: bufferCapacity)
        self.buffer = buffer
        let relay = RebalanceRelay()
        let callbacks = ClientCallbacks(
            logger: logger,
            configuration: configuration,
            onError: { error in buffer.put(.error(error), force: true) },
            onRebalance: { rk, error, list in relay.loop?.rebalance(rk, error, list) }
        )
        var defaults = Self.defaultProperties
        for (key, value) in extraDefaults { defaults[key] = value }
        let client = try NativeClient(type: RD_KAFKA_CONSUMER, configuration: configuration, defaults: defaults, callbacks: callbacks)
        self.client = client
        let loop = ConsumerPollLoop(client: client, buffer: buffer, logger: logger, maxBatch: max(1, maxBatch), revokeTimeout: revokeTimeout,
                                    pausesAssignedPartitions: pausesAssignedPartitions)
        self.loop = loop
        relay.loop = loop
        executor = BlockingExecutor(name: "kafka-cons-io", refusal: KafkaError.closed)
        rd_kafka_poll_set_consumer(client.handle)
        let stop = stopPolling
        pollThread = DedicatedThread(name: "kafka-consumer") {
            while !stop.isSet { loop.pollOnce() }
        }
    }

    func commit(_ offsets: [TopicPartitionOffset]) async throws {
        guard !offsets.isEmpty else { return }
        let client = client
        try await executor.run {
            guard !client.isDestroyed else { throw KafkaError.closed }
            let list = PartitionList.make(offsets)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let code = rd_kafka_commit(client.handle, list, 0)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code) }
            if let failure = PartitionList.firstError(list) { throw failure }
        }
    }

    /// The group's committed offsets of these partitions (`TopicPartitionOffset.stored`-like negative values when none).
    func committed(_ partitions: [TopicPartition], timeout: Duration) async throws -> [TopicPartitionOffset] {
        let client = client
        let ms = timeout.int32Milliseconds
        return try await executor.runUnlessCancelled {
            guard !client.isDestroyed else { throw KafkaError.closed }
            let list = PartitionList.make(partitions)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let code = rd_kafka_committed(client.handle, list, ms)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code) }
            return PartitionList.entries(list)
        }
    }

    func seek(_ offsets: [TopicPartitionOffset], timeout: Duration) async throws {
        let client = client
        let ms = timeout.int32Milliseconds
        try await executor.runUnlessCancelled {
            guard !client.isDestroyed else { throw KafkaError.closed }
            let list = PartitionList.make(offsets)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if let failure = rd_kafka_seek_partitions(client.handle, list, ms) { throw KafkaError(consuming: failure) }
            if let failure = PartitionList.firstError(list) { throw failure }
        }
    }

    func pause(_ partitions: [TopicPartition]) throws {
        try withList(partitions) { rd_kafka_pause_partitions(client.handle, $0) }
    }

    func resume(_ partitions: [TopicPartition]) throws {
        try withList(partitions) { rd_kafka_resume_partitions(client.handle, $0) }
    }

    func withList(_ partitions: [TopicPartition], _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> rd_kafka_resp_err_t) throws {
        guard !client.isDestroyed else { throw KafkaError.closed }
        let list = PartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let code = body(list)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code) }
        if let failure = PartitionList.firstError(list) { throw failure }
    }

    /// Runs a librdkafka call on the blocking thread.
    func blocking<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        let client = client
        return try await executor.run {
            guard !client.isDestroyed else { throw KafkaError.closed }
            return try body(client.handle)
        }
    }

    /// Leaves the group, ends the event sequence and frees the client. Events not yet read are
    /// dropped except the final `.revoked`. Safe to call more than once.
    func close() async {
        _ = try? await executor.run { [self] in closeNow() }
        executor.shutdown()
    }

    func closeNow() {
        guard loop.closing.setOnce() else { return }
        stopPolling.setOnce()
        pollThread.join()
        loop.closeConsumer()
        buffer.finish()
        client.destroy()
    }

    deinit {
        closeNow()
        executor.shutdown()
    }
}

/// Lets the rebalance callback, created before the poll loop exists, reach it without a retain cycle.
///
/// `@unchecked Sendable`: `loop` is written once, before the poll thread starts, and only read
/// afterwards (by rebalance callbacks, on the thread serving the consumer queue).
private final class RebalanceRelay: @unchecked Sendable {
    weak var loop: ConsumerPollLoop?
}

/// The consumer's poll loop: turns librdkafka's messages and rebalance callbacks into events.
///
/// Rebalancing: the consumer uses the group's eager protocol (librdkafka's default
/// `range,roundrobin`; cooperative-sticky is handled too if configured). On revocation the poll
/// thread publishes `.revoked`, then waits, bounded by `revokeTimeout`, until the application asks
/// for the next event; only then does it give the partitions up. So an application that handles
/// `.revoked` in its event loop (finishing and committing that work) never loses or duplicates
/// messages across a handover. Waiting on the poll thread is safe: commits and other blocking calls
/// run on a separate thread, and the group's rebalance timeout (`max.poll.interval.ms`) is longer.
///
/// `@unchecked Sendable`: `pending` is only touched by the thread currently serving the consumer
/// queue (the poll thread, or the closing thread after the poll thread has ended); the rest is
/// immutable or itself Sendable.
final class ConsumerPollLoop: @unchecked Sendable {
    let client: NativeClient
    let buffer: EventBuffer
    let logger: Logger
    let maxBatch: Int
    let revokeTimeout: Duration
    let pausesAssignedPartitions: Bool
    let closing = OnceFlag()
    private var pending: [KafkaMessage] = []

    init(client: NativeClient, buffer: EventBuffer, logger: Logger, maxBatch: Int, revokeTimeout: Duration,
         pausesAssignedPartitions: Bool) {
        self.client = client
        self.buffer = buffer
        self.logger = logger
        self.maxBatch = maxBatch
        self.revokeTimeout = revokeTimeout
        self.pausesAssignedPartitions = pausesAssignedPartitions
    }

    /// Leaves the group; the rebalance callback runs here one last time, without waiting. Messages
    /// not yet read are dropped (never committed, the group redelivers them); the final `.revoked`
    /// is kept.
    func closeConsumer() {
        pending = []
        buffer.discardBuffered()
        rd_kafka_consumer_close(client.handle)
        pending = []
    }


    func pollOnce() {
        guard let first = rd_kafka_consumer_poll(client.handle, 100) else { return }
        take(first)
        while pending.count < maxBatch, let next = rd_kafka_consumer_poll(client.handle, 0) { take(next) }
        flushPending()
    }

    private func take(_ message: UnsafeMutablePointer<rd_kafka_message_t>) {
        defer { rd_kafka_message_destroy(message) }
        let m = message.pointee
        if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return }
            flushPending()
            var text = String(cString: rd_kafka_err2str(m.err))
            if let payload = m.payload, m.len > 0 {
                text += ": " + String(decoding: UnsafeRawBufferPointer(start: payload, count: m.len), as: UTF8.self)
            }
            buffer.put(.error(KafkaError(m.err, message: text)))
            return
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        pending.append(KafkaMessage(
            topic: String(cString: rd_kafka_topic_name(m.rkt)),
            partition: m.partition,
            offset: m.offset,
            key: m.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: m.key_len)) },
            value: m.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? [],
            timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp))
    }

    private func flushPending() {
        guard !pending.isEmpty else { return }
        buffer.put(.messages(pending), force: closing.isSet)
        pending = []
    }

    fileprivate func rebalance(_ rk: OpaquePointer, _ error: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let partitions = PartitionList.entries(list).map(\.topicPartition)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        flushPending()
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let failure = rd_kafka_incremental_assign(rk, list) { report(KafkaError(consuming: failure)) }
            } else {
                let code = rd_kafka_assign(rk, list)
                if code != RD_KAFKA_RESP_ERR_NO_ERROR { report(KafkaError(code)) }
            }
            if pausesAssignedPartitions {
                // Here, on the thread that polls, before the next poll: pausing bumps the partitions' fetch
                // version, so nothing fetched for them before it reaches the application either.
                let code = rd_kafka_pause_partitions(rk, list)
                if code != RD_KAFKA_RESP_ERR_NO_ERROR { report(KafkaError(code)) }
            }
            logger.debug("partitions assigned", metadata: ["count": "\(partitions.count)"])
            buffer.put(.assigned(partitions), force: closing.isSet)
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let sequence = buffer.put(.revoked(partitions), force: true)
            if let sequence, !closing.isSet, !buffer.waitUntilAcknowledged(sequence, timeout: revokeTimeout) {
                logger.warning("revoked partitions handed over before the application acknowledged", metadata: ["count": "\(partitions.count)"])
            }
            if cooperative {
                if let failure = rd_kafka_incremental_unassign(rk, list) { report(KafkaError(consuming: failure)) }
            } else {
                rd_kafka_assign(rk, nil)
            }
            logger.debug("partitions revoked", metadata: ["count": "\(partitions.count)"])
        default:
            report(KafkaError(error))
            if cooperative {
                if let failure = rd_kafka_incremental_unassign(rk, list) { rd_kafka_error_destroy(failure) }
            } else {
                rd_kafka_assign(rk, nil)
            }
        }
    }

    private func report(_ error: KafkaError) {
        buffer.put(.error(error), force: true)
    }
}
