import Crdkafka
import Logging
import ShardflowSupport

/// What librdkafka calls back into. One per client; librdkafka reaches it through the client's opaque.
/// The closures are set once at creation and may run on any librdkafka thread.
final class ClientCallbacks: Sendable {
    let logger: Logger
    let configuration: KafkaConfiguration
    let onError: @Sendable (KafkaError) -> Void
    let onDelivery: (@Sendable (UnsafePointer<rd_kafka_message_t>) -> Void)?
    let onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?

    init(
        logger: Logger,
        configuration: KafkaConfiguration,
        onError: @escaping @Sendable (KafkaError) -> Void,
        onDelivery: (@Sendable (UnsafePointer<rd_kafka_message_t>) -> Void)? = nil,
        onRebalance: (@Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)? = nil
    ) {
        self.logger = logger
        self.configuration = configuration
        self.onError = onError
        self.onDelivery = onDelivery
        self.onRebalance = onRebalance
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientCallbacks? {
        opaque.map { Unmanaged<ClientCallbacks>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// An `rd_kafka_t` and the callbacks it points to; `destroy()` frees both, once.
///
/// `@unchecked Sendable`: librdkafka's handle is thread-safe for every call this module makes on it;
/// `destroyed` guards the single destruction.
final class NativeClient: @unchecked Sendable {
    let handle: OpaquePointer
    private let callbacks: Unmanaged<ClientCallbacks>
    private let destroyed = OnceFlag()

    init(
        type: rd_kafka_type_t,
        configuration: KafkaConfiguration,
        defaults: [String: String],
        callbacks: ClientCallbacks
    ) throws {
        let conf = try configuration.makeNativeConfiguration(defaults: defaults, forConsumer: type == RD_KAFKA_CONSUMER)
        let retained = Unmanaged.passRetained(callbacks)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, text in
            guard let rk, let callbacks = ClientCallbacks.from(rd_kafka_opaque(rk)) else { return }
            let line = callbacks.configuration.redact(text.map { String(cString: $0) } ?? "")
            let fac = facility.map { String(cString: $0) } ?? ""
            callbacks.logger.log(level: Logger.Level(syslog: level), "librdkafka \(fac): \(line)")
        }
        rd_kafka_conf_set_error_cb(conf) { _, code, reason, opaque in
            guard let callbacks = ClientCallbacks.from(opaque) else { return }
            let text = callbacks.configuration.redact(reason.map { String(cString: $0) } ?? "")
            callbacks.onError(KafkaError(rd_kafka_resp_err_t(rawValue: code), message: text))
        }
        if callbacks.onDelivery != nil {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let callbacks = ClientCallbacks.from(opaque) else { return }
                callbacks.onDelivery?(message)
            }
        }
        if callbacks.onRebalance != nil {
            rd_kafka_conf_set_rebalance_cb(conf) { rk, error, partitions, opaque in
                guard let rk, let partitions, let callbacks = ClientCallbacks.from(opaque) else { return }
                callbacks.onRebalance?(rk, error, partitions)
            }
        }
        var errstr = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            retained.release()
            let text = string(fromCBuffer: errstr)
            throw KafkaError.invalidArgument("cannot create Kafka client: \(configuration.redact(text))")
        }
        self.handle = handle
        self.callbacks = retained
    }

    /// Destroys the handle (blocking: librdkafka stops its threads), then frees the callbacks.
    func destroy() {
        guard destroyed.setOnce() else { return }
        rd_kafka_destroy(handle)
        callbacks.release()
    }

    var isDestroyed: Bool { destroyed.isSet }
}

extension Logger.Level {
    /// librdkafka logs with syslog levels.
    init(syslog level: Int32) {
        switch level {
        case ...3: self = .error
        case 4: self = .warning
        case 5: self = .notice
        case 6: self = .info
        default: self = .debug
        }
    }
}
