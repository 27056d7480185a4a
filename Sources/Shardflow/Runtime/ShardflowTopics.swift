/// The topic names of the wire contract, all derived from one prefix (default `shardflow`).
public struct ShardflowTopics: Sendable, Hashable {
    public var prefix: String

    public init(prefix: String = "shardflow") {
        self.prefix = prefix
    }

    /// Inbound workflow messages (start, cancel, event); a partition is a shard.
    public var workflows: String { "\(prefix).workflows" }
    /// Inbound operator commands; partition p targets shard p.
    public var control: String { "\(prefix).control" }
    public var completions: String { "\(prefix).completions" }
    public var replays: String { "\(prefix).replays" }
    public var controlResults: String { "\(prefix).control-results" }
    public var deadLetters: String { "\(prefix).dead-letters" }
    /// Each shard's history (partition p: shard p), written by its owner and read by the next one;
    /// the workers' own topic, not part of the wire contract.
    public var shardLog: String { "\(prefix).shard-log" }
    /// Snapshots of each shard's store (partition p: shard p), so a restore need not read the whole log.
    public var shardSnapshots: String { "\(prefix).shard-snapshots" }

    /// Topics with one partition per shard: their partition counts must match.
    public var sharded: [String] { [workflows, control, shardLog, shardSnapshots] }
    /// Outbound topics, keyed by workflowId or commandId.
    public var outbound: [String] { [completions, replays, controlResults, deadLetters] }
    public var all: [String] { sharded + outbound }

    /// Resolves a short name used on the command line (`completions`, `dead-letters`, ...).
    public func named(_ short: String) -> String? {
        switch short {
        case "workflows": workflows
        case "control": control
        case "completions": completions
        case "replays": replays
        case "control-results": controlResults
        case "dead-letters": deadLetters
        case "shard-log": shardLog
        case "shard-snapshots": shardSnapshots
        default: nil
        }
    }
}
