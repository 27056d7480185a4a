import Logging
import ShardflowEngine
import ShardflowSupport
import Synchronization

/// One shard's inbound messages on their way from the consumers to its store. The consumers' loops append
/// them in offset order; the intake's own task applies them in that order, everything queued (up to
/// `batchLimit`) in one transaction.
///
/// Why a queue per shard: the consumers' loops used to wait for every shard of a fetched batch to apply
/// it, so one shard whose writer was busy held up the input of all the others (at the start of a large
/// batch of workflows the last starts were applied seconds after they arrived). Now a loop waits only
/// when a shard has `capacity` bytes of workflow messages queued (4 MiB, some 25,000 starts: 400 MiB over 100
/// shards at most, plus one fetched batch each), which bounds the memory the queues take.
/// Control messages never wait for room (they are few and small), so operators are not held up behind a
/// backlog of input, and only one loop ever waits for room.
///
/// Messages still queued when the intake closes (the shard is revoked or stops) are dropped: the store's
/// offsets say where the next owner reads again, so none is lost.
final class ShardIntake: Sendable {
    private struct State {
        var queued: [InboundMessage] = []
        var queuedBytes = 0
        var closed = false
    }

    private let shard: Shard
    private let logger: Logger
    private let capacity: Int
    private let batchLimit: Int
    private let state = Mutex(State())
    /// Wakes the intake's task: messages were appended, or the intake closed.
    private let arrived = AsyncSignal()
    /// Wakes the consumer loop waiting for room.
    private let room = AsyncSignal()

    init(shard: Shard, logger: Logger, capacity: Int = 4 << 20, batchLimit: Int = 1_000) {
        self.shard = shard
        self.logger = logger
        self.capacity = capacity
        self.batchLimit = batchLimit
    }

    /// Queues messages of one partition, in offset order. With `waitForRoom`, first waits while the queue
    /// holds `capacity` bytes or more (returns at once once the intake is closed).
    func append(_ messages: [InboundMessage], waitForRoom: Bool) async {
        guard !messages.isEmpty else { return }
        if waitForRoom {
            while state.withLock({ !$0.closed && $0.queuedBytes >= capacity }) {
                await room.wait()
                if Task.isCancelled { return }
            }
        }
        let bytes = Self.bytes(of: messages)
        let appended = state.withLock { state in
            guard !state.closed else { return false }
            state.queued.append(contentsOf: messages)
            state.queuedBytes += bytes
            return true
        }
        if appended { arrived.notify() }
    }

    private static func bytes(of messages: some Sequence<InboundMessage>) -> Int {
        messages.reduce(0) { $0 + ($1.value?.count ?? 0) + ($1.key?.count ?? 0) }
    }

    /// Messages queued and not yet applied.
    var depth: Int { state.withLock { $0.queued.count } }

    /// Stops taking messages and drops those queued; `run` returns.
    func close() {
        state.withLock { state in
            state.closed = true
            state.queued = []
            state.queuedBytes = 0
        }
        arrived.notify()
        room.notify()
    }

    /// Applies queued messages until closed or cancelled. A store error is retried (never skipped: the
    /// message would be lost); a shard closed meanwhile ends the intake.
    func run() async {
        while !Task.isCancelled {
            let batch: [InboundMessage]? = state.withLock { state in
                if state.closed { return nil }
                let taken: [InboundMessage]
                if state.queued.count <= batchLimit {
                    taken = state.queued
                    state.queued = []
                } else {
                    taken = Array(state.queued.prefix(batchLimit))
                    state.queued.removeFirst(taken.count)
                }
                state.queuedBytes -= Self.bytes(of: taken)
                return taken
            }
            guard let batch else { return }
            if batch.isEmpty {
                await arrived.wait()
                continue
            }
            room.notify()
            var pause = Duration.milliseconds(100)
            while !Task.isCancelled {
                do {
                    _ = try await shard.ingest(batch)
                    break
                } catch ShardError.closed {
                    close()
                    return
                } catch {
                    logger.error("ingest into shard \(shard.shard) failed, retrying in \(pause): \(error)")
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(5))
                }
            }
        }
    }
}
