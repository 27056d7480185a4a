import Testing
@testable import ShardflowKafka

/// What the consumers of a test saw, by consumer name.
actor ConsumptionLog {
    private(set) var values: [String: [String]] = [:]
    private(set) var assigned: [String: [[TopicPartition]]] = [:]
    private(set) var revoked: [String: [[TopicPartition]]] = [:]
    private var waiters: [(condition: @Sendable (isolated ConsumptionLog) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []

    func record(_ name: String, _ messages: [KafkaMessage]) {
        values[name, default: []] += messages.map { String(decoding: $0.value, as: UTF8.self) }
        wake()
    }

    func recordAssigned(_ name: String, _ partitions: [TopicPartition]) {
        assigned[name, default: []].append(partitions)
        wake()
    }

    func recordRevoked(_ name: String, _ partitions: [TopicPartition]) {
        revoked[name, default: []].append(partitions)
        wake()
    }

    var allValues: [String] { values.values.flatMap { $0 } }

    /// Suspends until `condition` holds (the test's overall time limit bounds a hang).
    func wait(until condition: @escaping @Sendable (isolated ConsumptionLog) -> Bool) async {
        if condition(self) { return }
        await withCheckedContinuation { waiters.append((condition, $0)) }
    }

    private func wake() {
        var still: [(condition: @Sendable (isolated ConsumptionLog) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
        for waiter in waiters {
            if waiter.condition(self) { waiter.continuation.resume() } else { still.append(waiter) }
        }
        waiters = still
    }
}

/// Reads a consumer's events until they end or the task is cancelled, committing after every batch.
func consumeAndCommit(_ consumer: KafkaConsumer, as name: String, into log: ConsumptionLog) async {
    for await event in consumer.events {
        switch event {
        case .messages(let messages):
            var latest: [TopicPartition: TopicPartitionOffset] = [:]
            for message in messages { latest[message.topicPartition] = message.nextOffset }
            do {
                try await consumer.commit(Array(latest.values))
                await log.record(name, messages)  // counted once committed
            } catch let error as KafkaError where error.name == "_DESTROY" {
                // The test closed the consumer while this batch was on its way: not committed, so not
                // counted, and nothing more to read.
                return
            } catch {
                Issue.record("commit failed for \(name): \(error)")
            }
        case .assigned(let partitions):
            await log.recordAssigned(name, partitions)
        case .revoked(let partitions):
            await log.recordRevoked(name, partitions)
        case .error:
            break  // transient client errors (e.g. a closed idle connection) are retried by librdkafka
        }
    }
}

func producePlainMessages(_ producer: KafkaProducer, topic: String, range: Range<Int>) async throws {
    let results = await producer.sendAll(range.map { KafkaProducerMessage(topic: topic, key: "key-\($0)", value: "\($0)") })
    for result in results { _ = try result.get() }
}
