/// Failures of a shard's store and lifecycle.
public enum ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another owner (this process or another) holds the shard's lock; retry once it releases it.
    case locked(shard: Int, lockPath: String)
    case closed(shard: Int)
    case shardMismatch(expected: Int, stored: Int)
    case io(String)
    /// A lifecycle event the shard's state does not allow (e.g. `start` after `stop`).
    case illegalTransition(shard: Int, event: String, state: String)

    public var description: String {
        switch self {
        case .locked(let shard, let path): return "shard \(shard) is locked by another owner (\(path))"
        case .closed(let shard): return "shard \(shard) is closed"
        case .shardMismatch(let expected, let stored): return "store belongs to shard \(stored), not shard \(expected)"
        case .io(let message): return message
        case .illegalTransition(let shard, let event, let state): return "shard \(shard) cannot \(event) while \(state)"
        }
    }
}
