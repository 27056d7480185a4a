/// Reads one shard's log in offset order and says what each record means to this copy of the store: the
/// single place where the log's validity rules live (restore and the owner's read-back both use it).
///
/// Validity: a claim opens the next epoch. A change is valid when it was written in the epoch in force
/// where it lies, and its seq is the last valid seq + 1. Anything else (a zombie's change after a newer
/// claim, a change whose predecessor never arrived) is ignored by every reader alike, so all copies
/// agree on one history.
///
/// Phases, as a state machine:
/// - `restoring`: from the store's checkpoint up to the claim this worker wrote (`ownClaim`). Valid
///   changes the store lacks come back as `.apply`; the ones it holds (seq up to `local.lastSeq`) must be
///   its own, else the store `.diverged`. Reading its own claim ends the phase: `.restored(epoch)`, or
///   `.diverged` if the store holds transactions the log does not (they never reached the broker).
/// - `following`: the owner reads back what it writes. Its own next change is `.confirmed` (now durable
///   and valid: its outputs may go out); any later claim `.fenced` it (another worker owns the shard);
///   its own change with a gap before it `.diverged` (a record was lost: the store is ahead of the log);
///   a copy of one it read already is ignored.
/// - `stopped`: after `.fenced` or `.diverged`; nothing more is read.
public struct ShardLogReader: Sendable {
    public enum Phase: Sendable, Equatable { case restoring, following, stopped }

    public enum Event: Sendable, Equatable {
        /// Nothing to do: an ignored record, or a fragment of a change still incomplete.
        case none
        /// Restoring: a valid change the store lacks; apply it (in this order).
        case apply(ShardLogChange)
        /// Restoring is done: this worker's claim opened `epoch`; the store holds the shard's history.
        case restored(epoch: Int64, seq: Int64)
        /// Following: the owner's transaction `seq` is in the log, valid.
        case confirmed(seq: Int64)
        /// Following: another worker claimed the shard.
        case fenced(ShardLogClaim)
        /// The store's history and the log's differ; restore it from scratch.
        case diverged(String)
        /// A record that does not parse; skipped.
        case unreadable(offset: Int64, ShardLogRecordError)
    }

    public private(set) var phase: Phase = .restoring
    /// The epoch in force after the last record read.
    public private(set) var epoch: Int64
    /// The last valid change's seq.
    public private(set) var seq: Int64
    /// The last position with no change half read: where a later reader of this copy can start.
    public private(set) var checkpoint: ShardLogPosition
    /// Records read (all kinds) and changes returned to apply, for the restore figures.
    public private(set) var recordsRead = 0
    public private(set) var changesApplied = 0
    private let local: ShardLogLocalState
    private let ownClaim: UInt64
    private var pending: (fragment: ShardLogFragment, parts: [UInt8])?
    private var lastOffset: Int64

    /// Reads on from `local.checkpoint`, up to the claim whose nonce is `ownClaim`.
    public init(local: ShardLogLocalState, ownClaim: UInt64) {
        self.local = local
        self.ownClaim = ownClaim
        epoch = local.checkpoint.epoch
        seq = local.checkpoint.seq
        checkpoint = local.checkpoint
        lastOffset = local.checkpoint.offset
    }

    public mutating func read(offset: Int64, value: [UInt8]) -> Event {
        // A record read twice (a consumer that re-fetched) is not read again.
        guard phase != .stopped, offset > lastOffset else { return .none }
        lastOffset = offset
        recordsRead += 1
        let record: ShardLogRecord
        do {
            record = try ShardLogRecord(decoding: value)
        } catch {
            advance(to: offset)
            return .unreadable(offset: offset, error)
        }
        switch record {
        case .claim(let claim):
            pending = nil
            epoch += 1
            advance(to: offset)
            return claimed(claim)
        case .snapshotChunk, .snapshotFooter:
            // Snapshots have a topic of their own; one in the log is no change.
            if pending == nil { advance(to: offset) }
            return .none
        case .change(let fragment):
            guard let change = assemble(fragment) else {
                if pending == nil { advance(to: offset) }
                return .none
            }
            let event = changed(change)
            advance(to: offset)
            return event
        }
    }

    private mutating func advance(to offset: Int64) {
        checkpoint = ShardLogPosition(offset: offset, epoch: epoch, seq: seq)
    }

    private mutating func claimed(_ claim: ShardLogClaim) -> Event {
        switch phase {
        case .restoring:
            guard claim.nonce == ownClaim else { return .none }
            if seq < local.lastSeq {
                phase = .stopped
                return .diverged("the store holds transactions up to seq \(local.lastSeq) but the log only \(seq): they never reached the broker")
            }
            phase = .following
            return .restored(epoch: epoch, seq: seq)
        case .following:
            phase = .stopped
            return .fenced(claim)
        case .stopped:
            return .none
        }
    }

    private mutating func changed(_ change: ShardLogChange) -> Event {
        let valid = change.epoch == epoch && change.seq == seq + 1
        switch phase {
        case .restoring:
            guard valid else { return .none }
            seq = change.seq
            if change.seq <= local.lastSeq {
                // The store has a transaction with this seq: it must be this very one, written by the
                // store's own owner in its epoch (the checkpoint vouches for everything before).
                if change.seq > local.checkpoint.seq && change.epoch != local.writerEpoch {
                    phase = .stopped
                    return .diverged("the log's transaction \(change.seq) was written in epoch \(change.epoch), the store's in epoch \(local.writerEpoch)")
                }
                return .none
            }
            changesApplied += 1
            return .apply(change)
        case .following:
            // Another epoch's (a zombie's), or a copy of one already read (the appender sent a batch again
            // after a failure): ignored, as every reader ignores it.
            if change.epoch != epoch || change.seq <= seq { return .none }
            guard valid else {
                phase = .stopped
                return .diverged("this owner's transaction \(change.seq) arrived after \(seq): a record was lost")
            }
            seq = change.seq
            return .confirmed(seq: change.seq)
        case .stopped:
            return .none
        }
    }

    /// Joins fragments written back to back; a fragment out of turn drops what was pending.
    private mutating func assemble(_ fragment: ShardLogFragment) -> ShardLogChange? {
        if fragment.count == 1 {
            pending = nil
            return ShardLogChange(epoch: fragment.epoch, seq: fragment.seq, redo: fragment.bytes)
        }
        if fragment.index == 0 {
            pending = (fragment, fragment.bytes)
            return nil
        }
        guard var (first, parts) = pending, first.epoch == fragment.epoch, first.seq == fragment.seq,
              first.count == fragment.count, fragment.index == first.index + 1 else {
            pending = nil
            return nil
        }
        parts.append(contentsOf: fragment.bytes)
        first.index = fragment.index
        if fragment.index == fragment.count - 1 {
            pending = nil
            return ShardLogChange(epoch: fragment.epoch, seq: fragment.seq, redo: parts)
        }
        pending = (first, parts)
        return nil
    }
}
