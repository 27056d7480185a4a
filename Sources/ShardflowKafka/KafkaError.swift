import Crdkafka

/// An error reported by librdkafka (or by this module around it), with librdkafka's error code.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// librdkafka's `rd_kafka_resp_err_t` value: negative codes are local to the client, positive
    /// ones are Kafka protocol errors returned by a broker.
    public let code: Int32
    /// librdkafka's symbolic name of the code, e.g. `UNKNOWN_TOPIC_OR_PART` or `_MSG_TIMED_OUT`.
    public let name: String
    /// A human readable explanation.
    public let message: String

    public init(code: Int32, name: String, message: String) {
        self.code = code
        self.name = name
        self.message = message
    }

    init(_ error: rd_kafka_resp_err_t, message: String? = nil) {
        code = error.rawValue
        name = String(cString: rd_kafka_err2name(error))
        self.message = message ?? String(cString: rd_kafka_err2str(error))
    }

    /// The error carried by an `rd_kafka_error_t`, which this consumes.
    init(consuming error: OpaquePointer) {
        self.init(rd_kafka_error_code(error), message: String(cString: rd_kafka_error_string(error)))
        rd_kafka_error_destroy(error)
    }

    public var description: String { "KafkaError \(name) (\(code)): \(message)" }

    /// The client was closed before the operation could run.
    static let closed = KafkaError(RD_KAFKA_RESP_ERR__DESTROY, message: "the Kafka client is closed")

    static func invalidArgument(_ message: String) -> KafkaError {
        KafkaError(RD_KAFKA_RESP_ERR__INVALID_ARG, message: message)
    }

    /// Whether publishing the same message again can never succeed: it is too large for the client or
    /// the topic, malformed, or names an invalid topic. (An unknown topic, a missing permission or a
    /// broker away can each be fixed while the message waits, so they are not permanent.)
    public var isPermanentForMessage: Bool {
        let permanent: [rd_kafka_resp_err_t] = [
            RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
            RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG, RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
            RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__BAD_MSG,
        ]
        return permanent.contains { $0.rawValue == code }
    }

    /// Whether `code` is `RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS`.
    public var isTopicAlreadyExists: Bool { code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue }
}
