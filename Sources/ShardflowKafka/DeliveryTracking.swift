import Crdkafka
import Synchronization

/// The per-message opaque handed to librdkafka: resolved exactly once by the delivery callback.
final class DeliveryTarget: Sendable {
    let resolve: @Sendable (Result<DeliveryReport, KafkaError>) -> Void
    init(_ resolve: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) {
        self.resolve = resolve
    }

    static func handle(_ message: UnsafePointer<rd_kafka_message_t>) {
        guard let opaque = message.pointee._private else { return }
        let target = Unmanaged<DeliveryTarget>.fromOpaque(opaque).takeRetainedValue()
        if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            let topic = String(cString: rd_kafka_topic_name(message.pointee.rkt))
            target.resolve(.success(DeliveryReport(topic: topic, partition: message.pointee.partition, offset: message.pointee.offset)))
        } else {
            target.resolve(.failure(KafkaError(message.pointee.err)))
        }
    }
}

/// Collects the reports of one `sendAll` batch and resumes its caller when the last one arrives.
final class BatchCollector: Sendable {
    private struct State {
        var results: [Result<DeliveryReport, KafkaError>?]
        var remaining: Int
        var continuation: CheckedContinuation<[Result<DeliveryReport, KafkaError>], Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    func record(_ index: Int, _ result: Result<DeliveryReport, KafkaError>) {
        let finished: (CheckedContinuation<[Result<DeliveryReport, KafkaError>], Never>, [Result<DeliveryReport, KafkaError>])? = state.withLock { state in
            state.results[index] = result
            state.remaining -= 1
            guard state.remaining == 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.results.map { $0! })
        }
        if let (continuation, all) = finished { continuation.resume(returning: all) }
    }

    func wait() async -> [Result<DeliveryReport, KafkaError>] {
        await withCheckedContinuation { continuation in
            let ready: [Result<DeliveryReport, KafkaError>]? = state.withLock { state in
                if state.remaining == 0 { return state.results.map { $0! } }
                state.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
