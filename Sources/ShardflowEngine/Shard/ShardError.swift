/// Failures of a shard's store and lifecycle.
public enum ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another owner (this process or another) holds the shard's lock; retry once it releases it.
    case locked(shard: Int, lockPath: String)
    case closed(shard: Int)
    case shardMismatch(expected: Int, stored: Int)
    case io(String)
    /// A lifecycle event the shard's state does not allow (e.g. `start` after `stop`).
    case illegalTransition(shard: Int, event: String, state: String)
    /// A transaction read from the shard's log failed to replay on the local store: the store's rows are
    /// not the ones the log's writer had (the restore discards the store and reads the log again).
    case logDoesNotReplay(shard: Int, reason: String)

    public var description: String {
        switch self {
        case .locked(let shard, let path): return "shard \(shard) is locked by another owner (\(path))"
        case .closed(let shard): return "shard \(shard) is closed"
        case .shardMismatch(let expected, let stored): return "store belongs to shard \(stored), not shard \(expected)"
        case .io(let message): return message
        case .illegalTransition(let shard, let event, let state): return "shard \(shard) cannot \(event) while \(state)"
        case .logDoesNotReplay(let shard, let reason): return "shard \(shard): its log does not replay on the local store: \(reason)"
        }
    }
}
