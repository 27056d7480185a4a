import ShardflowSupport

/// The bounded queue between a consumer's poll thread and the application.
///
/// The poll thread blocks when the queue is full (back-pressure: librdkafka then stops fetching once
/// its own bounded queues fill). The application acknowledges an event by asking for the next one,
/// which is how a revocation waits until the application has finished with the revoked partitions.
final class EventBuffer: Sendable {
    private let lock = ConditionLock()
    private let capacity: Int
    // `nonisolated(unsafe)`: every member below is only touched while `lock` is held.
    nonisolated(unsafe) private var items: [KafkaConsumerEvent] = []
    nonisolated(unsafe) private var head = 0
    nonisolated(unsafe) private var finished = false
    nonisolated(unsafe) private var waiter: CheckedContinuation<KafkaConsumerEvent?, Never>?
    nonisolated(unsafe) private var putCount = 0
    nonisolated(unsafe) private var takenCount = 0
    nonisolated(unsafe) private var acknowledgedCount = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    private var count: Int { items.count - head }

    /// Adds an event, blocking while the buffer is full unless `force`. Returns the event's sequence
    /// number, or nil once the buffer is finished.
    @discardableResult
    func put(_ event: KafkaConsumerEvent, force: Bool = false) -> Int? {
        let (sequence, resume): (Int?, CheckedContinuation<KafkaConsumerEvent?, Never>?) = lock.withLock {
            while !force && !finished && count >= capacity { lock.wait(seconds: 0.2) }
            if finished { return (nil, nil) }
            putCount += 1
            if let waiter, count == 0 {
                self.waiter = nil
                takenCount += 1
                return (putCount, waiter)
            }
            items.append(event)
            return (putCount, nil)
        }
        resume?.resume(returning: event)
        return sequence
    }

    /// Blocks until the application asked for the event after `sequence`, the buffer is finished,
    /// or `timeout` passed. Returns whether it was acknowledged.
    func waitUntilAcknowledged(_ sequence: Int, timeout: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        return lock.withLock {
            while acknowledgedCount < sequence && !finished && clock.now < deadline { lock.wait(seconds: 0.05) }
            return acknowledgedCount >= sequence
        }
    }

    /// Drops the events not yet read (on close: their messages were never committed, so the group
    /// hands them to the next owner).
    func discardBuffered() {
        lock.withLock {
            items.removeAll()
            head = 0
            lock.broadcast()
        }
    }

    /// Ends the sequence: buffered events are still delivered, then `next()` returns nil.
    func finish() {
        let resume: CheckedContinuation<KafkaConsumerEvent?, Never>? = lock.withLock {
            finished = true
            lock.broadcast()
            defer { waiter = nil }
            return count == 0 ? waiter : nil
        }
        resume?.resume(returning: nil)
    }

    func next() async -> KafkaConsumerEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<KafkaConsumerEvent?, Never>) in
                let ready: KafkaConsumerEvent?? = lock.withLock {
                    acknowledgedCount = takenCount
                    lock.broadcast()
                    if count > 0 {
                        let event = items[head]
                        head += 1
                        if head > 1024 && head * 2 > items.count {
                            items.removeFirst(head)
                            head = 0
                        }
                        takenCount += 1
                        return .some(event)
                    }
                    if finished || Task.isCancelled { return .some(nil) }
                    waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let resume: CheckedContinuation<KafkaConsumerEvent?, Never>? = lock.withLock {
                defer { waiter = nil }
                return waiter
            }
            resume?.resume(returning: nil)
        }
    }
}

/// The events of a consumer as an AsyncSequence. Iterate it from one task.
public struct KafkaConsumerEvents: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerEvent
    let buffer: EventBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: EventBuffer
        public mutating func next() async -> KafkaConsumerEvent? {
            await buffer.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer)
    }
}
