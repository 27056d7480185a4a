/// One committed transaction of a shard, as its log carries it: the epoch of the owner that wrote it,
/// its place in the shard's history (1, 2, 3, ... across owners) and its writes (`redo`: the statements
/// that changed rows, with their values, as `RedoCapture` encodes them).
public struct ShardLogChange: Sendable, Equatable {
    public var epoch: Int64
    public var seq: Int64
    public var redo: [UInt8]

    public init(epoch: Int64, seq: Int64, redo: [UInt8]) {
        self.epoch = epoch
        self.seq = seq
        self.redo = redo
    }
}

/// A point of a shard's log a reader can start after: the offset of the last record read, the epoch in
/// force there (claims read so far) and the last valid transaction's seq. `start` is before the first record.
public struct ShardLogPosition: Sendable, Equatable, CustomStringConvertible {
    public var offset: Int64
    public var epoch: Int64
    public var seq: Int64

    public init(offset: Int64, epoch: Int64, seq: Int64) {
        self.offset = offset
        self.epoch = epoch
        self.seq = seq
    }

    public static let start = ShardLogPosition(offset: -1, epoch: 0, seq: 0)

    public var description: String { "offset \(offset), epoch \(epoch), seq \(seq)" }
}

/// Where a local store stands against its shard's log (the `shard_log_state` row, never itself logged).
public struct ShardLogLocalState: Sendable, Equatable {
    /// A position whose history the store holds (it was read back from the log, or restored from it).
    public var checkpoint: ShardLogPosition
    /// The seq of the store's last committed transaction; above `checkpoint.seq` when it committed
    /// transactions whose records were not read back yet (they may never have reached the broker).
    public var lastSeq: Int64
    /// The epoch the store's transactions above the checkpoint were written in.
    public var writerEpoch: Int64

    public init(checkpoint: ShardLogPosition, lastSeq: Int64, writerEpoch: Int64) {
        self.checkpoint = checkpoint
        self.lastSeq = lastSeq
        self.writerEpoch = writerEpoch
    }

    public static let empty = ShardLogLocalState(checkpoint: .start, lastSeq: 0, writerEpoch: 0)
}

/// Takes a shard's committed transactions, in commit order, to its log. Called right after each
/// commit with the store's commit order held, so it must only enqueue (never wait on the broker).
public protocol ShardLogSink: Sendable {
    func append(_ change: ShardLogChange)
}

/// What a shard that writes a log is opened with: the epoch its claim opened and where its log goes.
public struct ShardLogWriting: Sendable {
    public var epoch: Int64
    public var sink: any ShardLogSink

    public init(epoch: Int64, sink: any ShardLogSink) {
        self.epoch = epoch
        self.sink = sink
    }
}
