import Foundation
import Logging
import Metrics
import ShardflowEngine
import ShardflowKafka

/// Brings one shard's local store up to date from its log (`restore`), then reads the log on for the
/// shard's owner (`follow`): its own records confirmed open the outbox gate, a newer claim fences it.
struct ShardLogFollower: Sendable {
    let shard: Int
    let client: ShardLogClient
    let logger: Logger

    /// A store restored and claimed: the epoch it writes in, and the reader and stream to follow on.
    struct Restored: Sendable {
        let restore: ShardRestore
        let epoch: Int64
        let reader: ShardLogReader
        let stream: AsyncStream<[KafkaMessage]>
        /// Records of the last batch read that come after the claim: the first ones to follow.
        let leftover: [KafkaMessage]
        /// Log records read and changes applied, and how long it took.
        let recordsRead: Int
        let changesApplied: Int
        let duration: Duration
        let discarded: Bool
    }

    /// What restoring reports while it runs: the last offset read and the claim's offset (the end).
    typealias Progress = @Sendable (_ read: Int64, _ end: Int64) -> Void

    /// Claims the shard in its log, then applies the log from the store's checkpoint up to the claim. A
    /// store that diverged (ahead of the log, or holding a lost epoch's transactions) is discarded and
    /// restored from the log's beginning. Throws if the broker cannot be reached (the caller retries).
    func restore(_ restore: ShardRestore, owner: String, progress: Progress) async throws -> Restored {
        let started = ContinuousClock.now
        let (claim, claimOffset) = try await client.claim(shard: shard, owner: owner,
                                                          now: Int64(Date().timeIntervalSince1970 * 1000))
        let local = try restore.localState()
        logger.info("shard \(shard): claimed at log offset \(claimOffset); the local store holds up to \(local.checkpoint) (last seq \(local.lastSeq))")
        var reader = ShardLogReader(local: local, ownClaim: claim.nonce)
        var stream = try await client.read(shard: shard, after: local.checkpoint.offset)
        var discarded = false
        var (outcome, leftover) = try await consume(stream, reader: &reader, restore: restore, claimOffset: claimOffset,
                                                    progress: progress)
        if case .diverged(let reason) = outcome {
            logger.warning("shard \(shard): the local store is discarded and restored from the log: \(reason)")
            discarded = true
            await client.stopReading(shard: shard)
            try restore.discard()
            reader = ShardLogReader(local: .empty, ownClaim: claim.nonce)
            var fresh = reader
            var result: Outcome = .incomplete
            try await client.readAlone(shard: shard) { batch in
                result = try apply(batch, reader: &fresh, restore: restore, claimOffset: claimOffset, progress: progress).outcome
                if case .incomplete = result { return true }
                return false
            }
            reader = fresh
            outcome = result
            leftover = []
            stream = try await client.read(shard: shard, after: reader.checkpoint.offset)
        }
        guard case .restored(let epoch) = outcome else {
            await client.stopReading(shard: shard)
            throw ShardError.io("shard \(shard): its log ended before this worker's claim was read back (\(outcome))")
        }
        try restore.finish(at: reader.checkpoint)
        return Restored(restore: restore, epoch: epoch, reader: reader, stream: stream, leftover: leftover, recordsRead: reader.recordsRead,
                        changesApplied: reader.changesApplied, duration: ContinuousClock.now - started, discarded: discarded)
    }

    enum Outcome: Sendable {
        case incomplete
        case restored(epoch: Int64)
        case diverged(String)
    }

    private func consume(_ stream: AsyncStream<[KafkaMessage]>, reader: inout ShardLogReader, restore: ShardRestore,
                         claimOffset: Int64, progress: Progress) async throws -> (Outcome, [KafkaMessage]) {
        for await batch in stream {
            let (outcome, rest) = try apply(batch, reader: &reader, restore: restore, claimOffset: claimOffset, progress: progress)
            if case .incomplete = outcome { continue }
            return (outcome, rest)
        }
        return (.incomplete, [])
    }

    /// Reads one batch up to the end of restoring; applies its changes in one transaction. Returns the
    /// batch's records after the end.
    private func apply(_ batch: [KafkaMessage], reader: inout ShardLogReader, restore: ShardRestore, claimOffset: Int64,
                       progress: Progress) throws -> (outcome: Outcome, rest: [KafkaMessage]) {
        var changes: [ShardLogChange] = []
        var outcome: Outcome = .incomplete
        var end = batch.count
        for (index, message) in batch.enumerated() {
            switch reader.read(offset: message.offset, value: message.value) {
            case .apply(let change): changes.append(change)
            case .restored(let epoch, _): outcome = .restored(epoch: epoch)
            case .diverged(let reason): outcome = .diverged(reason)
            case .unreadable(let offset, let error): logger.error("shard \(shard): log record at offset \(offset) skipped: \(error)")
            case .none, .confirmed, .fenced: break
            }
            if case .incomplete = outcome { continue }
            end = index + 1
            break
        }
        if case .diverged = outcome { return (outcome, []) }
        try restore.apply(changes)
        if end > 0 { progress(batch[end - 1].offset, claimOffset) }
        return (outcome, Array(batch[end...]))
    }

    /// Why following ended.
    enum Ending: Sendable {
        /// Another worker claimed the shard.
        case fenced(ShardLogClaim)
        /// This owner's own record is missing or out of order: its store is ahead of the log.
        case diverged(String)
        /// Cancelled (the shard settles) or the log's consumer closed.
        case stopped
    }

    /// Reads the log on after the owner's claim: each of the owner's records read back valid is
    /// confirmed to the shard (its outbox messages may go out), and the checkpoint is written every few
    /// seconds and at the end, so a later open of this store reads on from there.
    func follow(_ shard: Shard, from restored: Restored) async -> Ending {
        var reader = restored.reader
        var written = ContinuousClock.now
        let unconfirmed = Gauge(label: "shardflow_shard_log_unconfirmed_transactions", dimensions: [("shard", String(self.shard))])
        defer { try? shard.recordLogCheckpoint(reader.checkpoint) }
        var batches = restored.leftover.isEmpty ? [] : [restored.leftover]
        var iterator = restored.stream.makeAsyncIterator()
        while true {
            let next: [KafkaMessage]?
            if batches.isEmpty { next = await iterator.next() } else { next = batches.removeFirst() }
            guard let batch = next else { break }
            var confirmed: Int64?
            for message in batch {
                switch reader.read(offset: message.offset, value: message.value) {
                case .confirmed(let seq): confirmed = seq
                case .fenced(let claim):
                    if let confirmed { shard.confirmLog(through: confirmed) }
                    return .fenced(claim)
                case .diverged(let reason): return .diverged(reason)
                case .unreadable(let offset, let error): logger.error("shard \(self.shard): log record at offset \(offset) skipped: \(error)")
                case .none, .apply, .restored: break
                }
            }
            if let confirmed {
                shard.confirmLog(through: confirmed)
                unconfirmed.record(max(0, (try? shard.localLogState().lastSeq) ?? confirmed) - confirmed)
            }
            if ContinuousClock.now - written > .seconds(5) {
                try? shard.recordLogCheckpoint(reader.checkpoint)
                written = ContinuousClock.now
            }
            if Task.isCancelled { break }
        }
        return .stopped
    }
}
