/// Failures of a shard's store and lifecycle.
public enum ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another owner (this process or another) holds the shard's lock; retry once it releases it.
    case locked(shard: Int, lockPath: String)
    case closed(shard: Int)
    case shardMismatch(expected: Int, stored: Int)
    case io(String)

    public var description: String {
        switch self {
        case .locked(let shard, let path): return "shard \(shard) is locked by another owner (\(path))"
        case .closed(let shard): return "shard \(shard) is closed"
        case .shardMismatch(let expected, let stored): return "store belongs to shard \(stored), not shard \(expected)"
        case .io(let message): return message
        }
    }
}
