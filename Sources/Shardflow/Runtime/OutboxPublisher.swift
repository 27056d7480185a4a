import Logging
import ShardflowEngine
import ShardflowKafka

/// Moves one shard's outbox to Kafka: reads rows in id order, publishes them through the idempotent producer,
/// and deletes a row only after its delivery report says it is stored. While the broker is away deliveries
/// fail, rows stay, and the loop retries with a growing pause: nothing is lost. A crash between delivery and
/// deletion publishes the row again with the same `eventId`, which consumers dedupe on (I2).
struct OutboxPublisher: Sendable {
    let shard: Shard
    let producer: KafkaProducer
    let topics: ShardflowTopics
    let logger: Logger
    var batchSize = 2_000
    /// After the outbox runs dry, rows are let accumulate this long before the next read: fewer, larger
    /// batches (one read, one produce batch and one delete transaction each) for a few milliseconds of latency.
    var linger: Duration = .milliseconds(10)

    /// Runs until cancelled.
    func run() async {
        var pause = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                let published = try await publishOnce()
                pause = .milliseconds(100)
                if published < batchSize {
                    if published == 0 { await shard.waitForOutbox() }
                    try? await Task.sleep(for: linger)
                }
            } catch is CancellationError {
                return
            } catch {
                if case ShardError.closed = error { return }
                logger.warning("outbox publishing failed, retrying in \(pause): \(error)")
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(30))
            }
        }
    }

    /// Publishes until the outbox is empty or `deadline` passes (shutdown flush), waiting for the shard
    /// log to confirm rows not yet let out. Returns the rows left.
    func flush(until deadline: ContinuousClock.Instant) async -> Int {
        while ContinuousClock.now < deadline {
            do {
                if try await publishOnce() == 0 {
                    let depth = try shard.stats().outboxDepth
                    if depth == 0 { return 0 }
                    try? await Task.sleep(for: .milliseconds(5))
                }
            } catch ShardError.closed {
                return -1
            } catch {
                logger.warning("outbox flush failed: \(error)")
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        return (try? shard.stats().outboxDepth) ?? -1
    }

    /// One batch; returns how many rows were delivered and deleted. Throws when any delivery failed, after
    /// deleting the ones that succeeded.
    private func publishOnce() async throws -> Int {
        let rows = try shard.pendingOutbox(limit: batchSize)
        guard !rows.isEmpty else { return 0 }
        let messages = rows.map { row in
            KafkaProducerMessage(topic: topic(of: row.topic), key: Array(row.key.utf8), value: row.value)
        }
        let results = await producer.sendAll(messages)
        var delivered: [Int64] = []
        delivered.reserveCapacity(rows.count)
        var firstError: KafkaError?
        var refused: [(OutboxRecord, KafkaError)] = []
        for (row, result) in zip(rows, results) {
            switch result {
            case .success: delivered.append(row.id)
            case .failure(let error) where error.isPermanentForMessage: refused.append((row, error))
            case .failure(let error): firstError = firstError ?? error
            }
        }
        try shard.acknowledgeOutbox(ids: delivered)
        // Publishing these again can never succeed: each becomes a dead letter, so nothing loops.
        for (row, error) in refused {
            _ = try shard.replaceRefusedOutboxRow(id: row.id, topicName: topic(of: row.topic), error: error.description)
        }
        if let firstError { throw firstError }
        return delivered.count + refused.count
    }

    private func topic(of outbox: OutboxTopic) -> String {
        switch outbox {
        case .completions: topics.completions
        case .replays: topics.replays
        case .controlResults: topics.controlResults
        case .deadLetters: topics.deadLetters
        }
    }
}
