import Crdkafka
import Logging
import ShardflowSupport

/// A topic to create.
public struct NewTopic: Sendable, Hashable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int

    public init(name: String, partitions: Int, replicationFactor: Int = 1) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
    }
}

/// A topic as the broker's metadata describes it.
public struct TopicMetadata: Sendable, Hashable {
    public var name: String
    public var partitionCount: Int
}

/// Topic administration and metadata. Every call runs on a dedicated thread.
public final class KafkaAdmin: Sendable {
    private let client: NativeClient
    private let executor = BlockingExecutor(name: "kafka-admin", refusal: KafkaError.closed)
    /// How long one admin or metadata request may take.
    public let requestTimeout: Duration

    public init(configuration: KafkaConfiguration, requestTimeout: Duration = .seconds(15), logger: Logger = Logger(label: "shardflow.kafka.admin")) throws {
        self.requestTimeout = requestTimeout
        let callbacks = ClientCallbacks(logger: logger, configuration: configuration, onError: { error in
            logger.debug("Kafka admin client error", metadata: ["error": "\(error)"])
        })
        // Metadata requests must never create the topic they ask about.
        client = try NativeClient(type: RD_KAFKA_PRODUCER, configuration: configuration, defaults: ["allow.auto.create.topics": "false"], callbacks: callbacks)
    }

    deinit {
        executor.shutdown()
        client.destroy()
    }

    private var timeoutMs: Int32 { requestTimeout.int32Milliseconds }

    /// Creates the topics; one that already exists counts as created (whatever its partition count).
    public func createTopics(_ topics: [NewTopic]) async throws {
        guard !topics.isEmpty else { return }
        for topic in topics where topic.name.isEmpty || topic.partitions < 1 || topic.replicationFactor < 1 {
            throw KafkaError.invalidArgument("invalid topic \"\(topic.name)\": a name, partitions >= 1 and replicationFactor >= 1 are required")
        }
        let client = client
        let timeout = timeoutMs
        try await executor.run {
            try Self.createTopicsNow(client.handle, topics, timeoutMs: timeout)
        }
    }

    private static func createTopicsNow(_ rk: OpaquePointer, _ topics: [NewTopic], timeoutMs: Int32) throws {
        var errstr = [CChar](repeating: 0, count: 512)
        var requests: [OpaquePointer?] = []
        defer { for request in requests { rd_kafka_NewTopic_destroy(request) } }
        for topic in topics {
            guard let request = rd_kafka_NewTopic_new(topic.name, Int32(clamping: topic.partitions), Int32(clamping: topic.replicationFactor), &errstr, errstr.count) else {
                throw KafkaError.invalidArgument("invalid topic \"\(topic.name)\": \(string(fromCBuffer: errstr))")
            }
            requests.append(request)
        }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errstr, errstr.count)
        let queue = rd_kafka_queue_new(rk)
        defer { rd_kafka_queue_destroy(queue) }
        requests.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(rk, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeoutMs + 5000) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, message: "CreateTopics got no answer in time")
        }
        defer { rd_kafka_event_destroy(event) }
        let topLevel = rd_kafka_event_error(event)
        if topLevel != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(topLevel, message: String(cString: rd_kafka_event_error_string(event)))
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            throw KafkaError(RD_KAFKA_RESP_ERR__FAIL, message: "CreateTopics answered with an unexpected event")
        }
        var count = 0
        let results = rd_kafka_CreateTopics_result_topics(result, &count)
        for index in 0..<count {
            let entry = results![index]
            let code = rd_kafka_topic_result_error(entry)
            if code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { continue }
            let name = String(cString: rd_kafka_topic_result_name(entry))
            let text = rd_kafka_topic_result_error_string(entry).map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(code))
            throw KafkaError(code, message: "cannot create topic \(name): \(text)")
        }
    }

    /// Every topic the cluster knows (internal ones such as `__consumer_offsets` excluded), by name.
    public func listTopics() async throws -> [TopicMetadata] {
        let client = client
        let timeout = timeoutMs
        return try await executor.run {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let error = rd_kafka_metadata(client.handle, 1, nil, &metadata, timeout)
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(error) }
            defer { rd_kafka_metadata_destroy(metadata) }
            var topics: [TopicMetadata] = []
            for index in 0..<Int(metadata.pointee.topic_cnt) {
                let topic = metadata.pointee.topics[index]
                let name = String(cString: topic.topic)
                if name.hasPrefix("__") || topic.err != RD_KAFKA_RESP_ERR_NO_ERROR { continue }
                topics.append(TopicMetadata(name: name, partitionCount: Int(topic.partition_cnt)))
            }
            return topics.sorted { $0.name < $1.name }
        }
    }

    /// The partition count of `topic`; throws `UNKNOWN_TOPIC_OR_PART` if the topic does not exist.
    public func partitionCount(topic: String) async throws -> Int {
        guard let found = try await listTopics().first(where: { $0.name == topic }) else {
            throw KafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, message: "topic \(topic) does not exist")
        }
        return found.partitionCount
    }
}
