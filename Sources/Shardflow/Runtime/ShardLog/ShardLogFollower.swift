import Foundation
import Logging
import Metrics
import ShardflowEngine
import ShardflowKafka
import Synchronization

/// Brings one shard's local store up to date from its log (`restore`), then reads the log on for the
/// shard's owner (`follow`): its own records confirmed open the outbox gate, a newer claim fences it.
struct ShardLogFollower: Sendable {
    let shard: Int
    let client: ShardLogClient
    let snapshots: ShardSnapshots
    /// Transactions between snapshots (0: none).
    let snapshotEvery: Int
    /// Where snapshot files are written and downloaded (the data directory).
    let directory: String
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
        /// The snapshot restored from, if any.
        let snapshot: ShardSnapshotFooter?
        /// The log held nothing before this worker's claim (and no snapshot was found): a shard new to
        /// the log, or one consumed before the log existed.
        var logWasEmpty: Bool { startedEmpty && snapshot == nil && recordsRead <= 1 }
        /// The local store held nothing when restoring began (a new store cannot have diverged).
        let startedEmpty: Bool
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
        var local = try restore.localState()
        let startedEmpty = local == .empty
        logger.info("shard \(shard): claimed at log offset \(claimOffset); the local store holds up to \(local.checkpoint) (last seq \(local.lastSeq))")
        var snapshot: ShardSnapshotFooter?
        if local == .empty, let footer = try await installNewestSnapshot(into: restore, before: claimOffset) {
            snapshot = footer
            local = try restore.localState()
        }
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
            snapshot = try await installNewestSnapshot(into: restore, before: claimOffset)
            reader = ShardLogReader(local: try restore.localState(), ownClaim: claim.nonce)
            var fresh = reader
            var result: Outcome = .incomplete
            try await client.readAlone(shard: shard, after: reader.checkpoint.offset) { batch in
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
            if case .diverged(let reason) = outcome {
                throw ShardError.io("shard \(shard): its log does not restore even on an empty store: \(reason)")
            }
            throw ShardError.io("shard \(shard): its log ended before this worker's claim was read back (\(outcome))")
        }
        try restore.finish(at: reader.checkpoint)
        return Restored(restore: restore, epoch: epoch, reader: reader, stream: stream, leftover: leftover, recordsRead: reader.recordsRead,
                        changesApplied: reader.changesApplied, duration: ContinuousClock.now - started, discarded: discarded,
                        snapshot: snapshot, startedEmpty: startedEmpty)
    }

    /// Puts the shard's newest snapshot in place of an empty store, if there is one from before this
    /// worker's claim. Any failure leaves the store empty (the whole log is read instead).
    private func installNewestSnapshot(into restore: ShardRestore, before claimOffset: Int64) async throws -> ShardSnapshotFooter? {
        let file = URL(fileURLWithPath: directory).appendingPathComponent("shard-\(shard).snapshot-in").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let footer: ShardSnapshotFooter?
        do {
            footer = try await snapshots.fetchNewest(shard: shard, to: file)
        } catch {
            logger.warning("shard \(shard): cannot read its snapshots (\(error)); restoring from the whole log")
            return nil
        }
        guard let footer, footer.covers.offset < claimOffset else { return nil }
        try restore.install(snapshot: file, covers: footer.covers)
        logger.info("shard \(shard): snapshot of \(footer.size) bytes installed, covering the log up to \(footer.covers)")
        return footer
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
        do {
            try restore.apply(changes)
        } catch ShardError.logDoesNotReplay(_, let reason) {
            // Nothing of the batch was applied; the store did not hold what the log's writer had.
            return (.diverged(reason), [])
        }
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
        let age = Gauge(label: "shardflow_snapshot_age_seconds", dimensions: [("shard", String(self.shard))])
        let progress = SnapshotProgress(seq: restored.snapshot?.covers.seq ?? 0, at: restored.snapshot?.at)
        /// A snapshot file taken, waiting for the read-back of the transaction it ends with.
        var taken: (file: String, lastSeq: Int64)?
        var iterator = restored.stream.makeAsyncIterator()
        while true {
            let next: [KafkaMessage]?
            if batches.isEmpty { next = await iterator.next() } else { next = batches.removeFirst() }
            guard let batch = next else { break }
            var confirmed: Int64?
            for message in batch {
                switch reader.read(offset: message.offset, value: message.value) {
                case .confirmed(let seq):
                    confirmed = seq
                    if let snapshot = taken, snapshot.lastSeq == seq {
                        // The file holds exactly the log's history up to here: publish it.
                        taken = nil
                        publish(snapshot.file, covers: reader.checkpoint, progress: progress)
                    }
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
                unconfirmed.record(max(0, shard.loggedSeq - confirmed))
            }
            let last = progress.last
            if let at = last.at { age.record(Double(max(0, Int64(Date().timeIntervalSince1970 * 1000) - at)) / 1000) }
            if snapshotEvery > 0, taken == nil, !last.busy, reader.seq - last.seq >= Int64(snapshotEvery) {
                taken = takeSnapshot(of: shard)
                if let snapshot = taken, snapshot.lastSeq <= reader.seq {
                    // Nothing committed beyond what was read back: the file covers the reader's position.
                    taken = nil
                    publish(snapshot.file, covers: reader.checkpoint, progress: progress)
                }
            }
            if ContinuousClock.now - written > .seconds(5) {
                try? shard.recordLogCheckpoint(reader.checkpoint)
                written = ContinuousClock.now
            }
            if Task.isCancelled { break }
        }
        return .stopped
    }

    /// Writes the store's copy to a file (the shard goes on meanwhile).
    private func takeSnapshot(of shard: Shard) -> (file: String, lastSeq: Int64)? {
        let file = URL(fileURLWithPath: directory).appendingPathComponent("shard-\(self.shard).snapshot-out").path
        do {
            let copy = try shard.writeSnapshot(to: file)
            return (file, copy.lastSeq)
        } catch {
            logger.warning("shard \(self.shard): cannot write a snapshot: \(error)")
            return nil
        }
    }

    /// Publishes a snapshot file in the background (the follower reads on meanwhile).
    private func publish(_ file: String, covers: ShardLogPosition, progress: SnapshotProgress) {
        progress.started()
        Task {
            defer { try? FileManager.default.removeItem(atPath: file) }
            do {
                let footer = try await snapshots.publish(shard: shard, file: file, covers: covers)
                Counter(label: "shardflow_snapshots_total", dimensions: [("shard", String(shard))]).increment()
                logger.info("shard \(shard): snapshot of \(footer.size) bytes published, covering the log up to \(covers)")
                progress.finished(footer)
            } catch {
                logger.warning("shard \(shard): publishing a snapshot failed: \(error)")
                progress.finished(nil)
            }
        }
    }
}

/// The last snapshot of a shard (the seq it covers, when it was taken) and whether one is being published.
final class SnapshotProgress: Sendable {
    private let state: Mutex<(seq: Int64, at: Int64?, busy: Bool)>

    init(seq: Int64, at: Int64?) { state = Mutex((seq, at, false)) }

    var last: (seq: Int64, at: Int64?, busy: Bool) { state.withLock { $0 } }
    func started() { state.withLock { $0.busy = true } }
    func finished(_ footer: ShardSnapshotFooter?) {
        state.withLock { state in
            state.busy = false
            if let footer {
                state.seq = footer.covers.seq
                state.at = footer.at
            }
        }
    }
}
