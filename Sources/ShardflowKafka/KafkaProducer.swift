import Crdkafka
import Logging
import ServiceLifecycle
import ShardflowSupport
import Synchronization

/// A Kafka producer. Idempotent (`enable.idempotence=true`) and keyed with `murmur2_random` (the
/// Java client's partitioner) unless the configuration says otherwise. Delivery reports are served
/// by a dedicated poll thread and handed back as awaited results.
public final class KafkaProducer: Sendable, Service {
    /// The defaults any configuration property overrides.
    public static let defaultProperties: [String: String] = [
        "enable.idempotence": "true",
        "partitioner": "murmur2_random",
        "linger.ms": "5",
        // Apache Kafka's default topic max.message.bytes: a message the topic takes, the client sends.
        "message.max.bytes": "1048588",
    ]

    private let configuration: KafkaConfiguration
    private let logger: Logger
    private let executor: BlockingExecutor
    /// The librdkafka producer in use, its topic handles, and whether the producer is closed. The lock is
    /// held while a message is produced, so closing or replacing cannot destroy a handle in use.
    private struct State {
        var native: NativeProducer
        var closed = false
    }
    private let state: Mutex<State>

    public init(configuration: KafkaConfiguration, logger: Logger = Logger(label: "shardflow.kafka.producer")) throws {
        self.logger = logger
        self.configuration = configuration
        self.state = Mutex(State(native: try NativeProducer(configuration: configuration, logger: logger)))
        executor = BlockingExecutor(name: "kafka-prod-io", refusal: KafkaError.closed)
    }

    deinit {
        shutdownNow(flushTimeoutMs: 1000)
        executor.shutdown()
    }

    /// Publishes one message and waits for its delivery report.
    public func send(_ message: KafkaProducerMessage) async throws -> DeliveryReport {
        try await sendAll([message])[0].get()
    }

    /// Publishes all messages (enqueued back to back, so librdkafka batches them) and returns one
    /// result per message, in order, once every report has arrived.
    ///
    /// An idempotent producer that hits a fatal error (e.g. a broker that lost the producer's sequence
    /// state across a restart answers OUT_OF_ORDER_SEQUENCE_NUMBER) refuses every later message. The
    /// producer then replaces its librdkafka instance (a new producer id) and sends the failed messages
    /// once more: at least once, which the contract's eventIds and workflowIds make safe.
    public func sendAll(_ messages: [KafkaProducerMessage]) async -> [Result<DeliveryReport, KafkaError>] {
        var results = await sendOnce(messages)
        let failed = results.indices.filter { if case .failure = results[$0] { return true } else { return false } }
        guard !failed.isEmpty, replaceIfFatal() else { return results }
        let again = await sendOnce(failed.map { messages[$0] })
        for (index, result) in zip(failed, again) { results[index] = result }
        return results
    }

    private func sendOnce(_ messages: [KafkaProducerMessage]) async -> [Result<DeliveryReport, KafkaError>] {
        guard !messages.isEmpty else { return [] }
        let collector = BatchCollector(count: messages.count)
        for (index, message) in messages.enumerated() {
            await enqueue(message, target: DeliveryTarget { collector.record(index, $0) })
        }
        return await collector.wait()
    }

    /// Puts the librdkafka instance into a fatal state, as a broker that lost the producer's sequence would
    /// (librdkafka's own test hook), so tests can see the producer recover.
    func injectFatalErrorForTesting() {
        state.withLock { state in
            _ = rd_kafka_test_fatal_error(state.native.client.handle, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                          "injected by a test")
        }
    }

    /// Replaces the librdkafka instance if it is in a fatal state. Returns whether it did.
    private func replaceIfFatal() -> Bool {
        let replaced: NativeProducer? = state.withLock { state in
            guard !state.closed, let fatal = state.native.fatalError else { return nil }
            do {
                let fresh = try NativeProducer(configuration: configuration, logger: logger)
                logger.error("Kafka producer in a fatal state (\(fatal)); replaced by a new producer instance")
                let old = state.native
                state.native = fresh
                return old
            } catch {
                logger.error("Kafka producer in a fatal state (\(fatal)) and cannot be replaced: \(error)")
                return nil
            }
        }
        guard let replaced else { return false }
        // What the old instance still holds fails with a purge error; it is freed off the caller's thread.
        Task { [executor] in _ = try? await executor.run { replaced.shutdown(flushTimeoutMs: 0) } }
        return true
    }

    /// Hands the message to librdkafka; a full local queue is waited out, any other refusal
    /// resolves the target with the error.
    private func enqueue(_ message: KafkaProducerMessage, target: DeliveryTarget) async {
        let opaque = Unmanaged.passRetained(target).toOpaque()
        while true {
            let outcome: rd_kafka_resp_err_t = state.withLock { state in
                if state.closed { return RD_KAFKA_RESP_ERR__DESTROY }
                guard let topic = state.native.topic(message.topic) else { return rd_kafka_last_error() }
                let status = message.value.withUnsafeBytes { value in
                    withKey(message.key) { key in
                        rd_kafka_produce(
                            topic, message.partition ?? RD_KAFKA_PARTITION_UA_VALUE, RD_KAFKA_MSG_F_COPY,
                            UnsafeMutableRawPointer(mutating: value.baseAddress), value.count,
                            key?.baseAddress, key?.count ?? 0, opaque)
                    }
                }
                return status == 0 ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_last_error()
            }
            if outcome == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            if outcome == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                // The poll thread drains the queue as reports arrive; wait a little and retry.
                try? await Task.sleep(for: .milliseconds(1))
                continue
            }
            Unmanaged<DeliveryTarget>.fromOpaque(opaque).release()
            let error = outcome == RD_KAFKA_RESP_ERR__DESTROY ? KafkaError.closed : KafkaError(outcome)
            target.resolve(.failure(error))
            return
        }
    }

    /// Waits until every queued message is delivered or `timeout` passes. Throws `_TIMED_OUT` if messages remain.
    public func flush(timeout: Duration = .seconds(30)) async throws {
        let client = state.withLock { $0.native.client }
        let ms = timeout.int32Milliseconds
        let error = try await executor.run { client.isDestroyed ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_flush(client.handle, ms) }
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(error) }
    }

    /// Flushes (up to `flushTimeout`), fails what is still queued with `_PURGE_QUEUE`, and frees the
    /// client. Sends after this fail with `_DESTROY`.
    public func close(flushTimeout: Duration = .seconds(10)) async {
        let ms = flushTimeout.int32Milliseconds
        _ = try? await executor.run { [self] in shutdownNow(flushTimeoutMs: ms) }
        executor.shutdown()
    }

    /// Runs until graceful shutdown, then closes.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    private func shutdownNow(flushTimeoutMs: Int32) {
        let native: NativeProducer? = state.withLock { state in
            if state.closed { return nil }
            state.closed = true
            return state.native
        }
        native?.shutdown(flushTimeoutMs: flushTimeoutMs)
        logger.debug("Kafka producer closed")
    }
}

/// One librdkafka producer instance with its poll thread and topic handles.
///
/// `@unchecked Sendable`: `topics` is read and written only under the owning `KafkaProducer`'s lock
/// (`topic(_:)` is called inside it), and `shutdown` runs once, after the instance has left that state
/// (closed, or replaced), so no produce call can use a handle it destroys.
private final class NativeProducer: @unchecked Sendable {
    let client: NativeClient
    private let pollThread: DedicatedThread
    private let stopPolling = OnceFlag()
    private var topics: [String: TopicHandle] = [:]

    init(configuration: KafkaConfiguration, logger: Logger) throws {
        let callbacks = ClientCallbacks(
            logger: logger,
            configuration: configuration,
            onError: { error in logger.warning("Kafka producer error", metadata: ["error": "\(error)"]) },
            onDelivery: { DeliveryTarget.handle($0) }
        )
        let client = try NativeClient(type: RD_KAFKA_PRODUCER, configuration: configuration,
                                      defaults: KafkaProducer.defaultProperties, callbacks: callbacks)
        self.client = client
        let stop = stopPolling
        pollThread = DedicatedThread(name: "kafka-producer") {
            while !stop.isSet { rd_kafka_poll(client.handle, 100) }
        }
    }

    /// The topic handle (created on first use); nil when librdkafka refuses it.
    func topic(_ name: String) -> OpaquePointer? {
        if let known = topics[name] { return known.pointer }
        guard let created = rd_kafka_topic_new(client.handle, name, nil) else { return nil }
        topics[name] = TopicHandle(pointer: created)
        return created
    }

    /// The fatal error the instance is in, if any (an idempotent producer that lost its sequence).
    var fatalError: KafkaError? {
        let code = rd_kafka_fatal_error(client.handle, nil, 0)
        return code == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(code)
    }

    /// Flushes, fails what is still queued with `_PURGE_QUEUE`, stops polling and frees the instance.
    func shutdown(flushTimeoutMs: Int32) {
        guard !stopPolling.isSet else { return }
        rd_kafka_flush(client.handle, flushTimeoutMs)
        rd_kafka_purge(client.handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        rd_kafka_flush(client.handle, 500)  // serves the purged messages' reports
        stopPolling.setOnce()
        pollThread.join()
        rd_kafka_poll(client.handle, 0)
        for handle in topics.values { rd_kafka_topic_destroy(handle.pointer) }
        topics = [:]
        client.destroy()
    }
}

/// A librdkafka topic handle. `@unchecked Sendable`: librdkafka's topic handles may be used from any
/// thread; the producer destroys them only after marking itself closed, under its lock.
private struct TopicHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

private func withKey<T>(_ key: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> T) -> T {
    guard let key else { return body(nil) }
    return key.withUnsafeBytes { body($0) }
}

let RD_KAFKA_PARTITION_UA_VALUE: Int32 = -1
