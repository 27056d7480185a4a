import Foundation
import ShardflowJSON

/// The error of a failed workflow: `{"message": "...", "step": "name or null"}`.
public struct WorkflowErrorInfo: Sendable, Equatable, Codable {
    public var message: String
    public var step: String?

    public init(message: String, step: String?) {
        self.message = message
        self.step = step
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message, forKey: .message)
        try container.encode(step, forKey: .step)  // null when absent, as the contract shows
    }
}

/// How a workflow ended.
public enum CompletionStatus: String, Sendable, Codable {
    case succeeded, failed, canceled
}

// Outbound messages are decoded with Codable (clients, tests) and encoded only by `contractJSON()`
// (ContractWriter.swift), which writes the contract's field order and its explicit nulls.

/// `shardflow.completions` (key = workflowId).
public struct CompletionEvent: Sendable, Equatable, Decodable {
    public var eventId: String
    public var workflowId: String
    public var workflow: String
    public var shard: Int
    public var status: CompletionStatus
    public var result: JSONValue?
    public var error: WorkflowErrorInfo?
    public var createdAt: Int64
    public var completedAt: Int64
    public var steps: Int

    public init(eventId: String, workflowId: String, workflow: String, shard: Int, status: CompletionStatus,
                result: JSONValue?, error: WorkflowErrorInfo?, createdAt: Int64, completedAt: Int64, steps: Int) {
        self.eventId = eventId
        self.workflowId = workflowId
        self.workflow = workflow
        self.shard = shard
        self.status = status
        self.result = result
        self.error = error
        self.createdAt = createdAt
        self.completedAt = completedAt
        self.steps = steps
    }
}

/// What triggered a replay.
public enum ReplayTrigger: String, Sendable, Codable, CaseIterable {
    /// `unpark`: a parked workflow tried again when its shard was opened (by a worker that may now run it).
    case start, step, event, timer, cancel, `operator`, unpark
}

/// `shardflow.replays` (key = workflowId).
public struct ReplayEvent: Sendable, Equatable, Decodable {
    public struct Consumed: Sendable, Equatable, Codable {
        public var stepId: Int
        public var name: String
        public var status: String
        public var attempts: Int
        public init(stepId: Int, name: String, status: String, attempts: Int) {
            self.stepId = stepId
            self.name = name
            self.status = status
            self.attempts = attempts
        }
    }

    public struct Scheduled: Sendable, Equatable, Codable {
        public var stepId: Int
        public var name: String
        public init(stepId: Int, name: String) {
            self.stepId = stepId
            self.name = name
        }
    }

    /// `parked`: the body could not run on this worker (see `parkedReason`); the workflow stays running.
    public enum Outcome: String, Sendable, Codable { case waiting, completed, parked }

    public var eventId: String
    public var workflowId: String
    public var workflow: String
    public var shard: Int
    public var generation: Int
    public var at: Int64
    public var trigger: ReplayTrigger
    public var consumed: [Consumed]
    public var scheduled: [Scheduled]
    public var outcome: Outcome
    /// Set when `consumed` lists only the first of this many entries (a replay too large to publish whole).
    public var consumedCount: Int?
    /// Set when `scheduled` lists only the first of this many entries.
    public var scheduledCount: Int?
    /// The workflow version the replay ran (absent from workers before versions).
    public var version: Int?
    /// Why the workflow is parked, when `outcome` is `parked`.
    public var parkedReason: String?

    public init(eventId: String, workflowId: String, workflow: String, shard: Int, generation: Int, at: Int64,
                trigger: ReplayTrigger, consumed: [Consumed], scheduled: [Scheduled], outcome: Outcome) {
        self.eventId = eventId
        self.workflowId = workflowId
        self.workflow = workflow
        self.shard = shard
        self.generation = generation
        self.at = at
        self.trigger = trigger
        self.consumed = consumed
        self.scheduled = scheduled
        self.outcome = outcome
    }
}

/// Counts of what an operation touched.
public struct AffectedCounts: Sendable, Equatable, Codable {
    public var tasks: Int
    public var workflows: Int
    public var replayEntries: Int
    public init(tasks: Int = 0, workflows: Int = 0, replayEntries: Int = 0) {
        self.tasks = tasks
        self.workflows = workflows
        self.replayEntries = replayEntries
    }
}

/// `shardflow.control-results` (key = commandId).
public struct ControlResult: Sendable, Equatable, Decodable {
    public enum Status: String, Sendable, Codable { case applied, rejected }

    public var commandId: String
    /// The command's type as received (null when the message had none).
    public var type: String?
    public var shard: Int
    public var status: Status
    public var epoch: Int64
    public var affected: AffectedCounts
    public var stuckWorkflows: Int
    public var error: String?
    public var at: Int64

    public init(commandId: String, type: String?, shard: Int, status: Status, epoch: Int64,
                affected: AffectedCounts, stuckWorkflows: Int, error: String?, at: Int64) {
        self.commandId = commandId
        self.type = type
        self.shard = shard
        self.status = status
        self.epoch = epoch
        self.affected = affected
        self.stuckWorkflows = stuckWorkflows
        self.error = error
        self.at = at
    }
}

/// `shardflow.dead-letters` (key = the original key).
public struct DeadLetter: Sendable, Equatable, Decodable {
    public enum ValueEncoding: String, Sendable, Codable { case utf8, base64 }

    public var sourceTopic: String
    public var partition: Int
    public var offset: Int64
    public var key: String?
    public var value: String?
    public var valueEncoding: ValueEncoding
    public var error: String
    public var at: Int64
    /// The value is only a prefix of the original (it would not fit in an outbound message).
    public var truncated: Bool?
    /// The original value's size in bytes, when truncated.
    public var valueBytes: Int?
    /// The original value's SHA-256 (lowercase hex), when truncated.
    public var valueSha256: String?
    /// The key is only the first `MessageLimits.maxDeadLetterKeyBytes` bytes of the original.
    public var keyTruncated: Bool?

    public init(sourceTopic: String, partition: Int, offset: Int64, key: String?, value: String?,
                valueEncoding: ValueEncoding, error: String, at: Int64, truncated: Bool? = nil, valueBytes: Int? = nil,
                valueSha256: String? = nil, keyTruncated: Bool? = nil) {
        self.sourceTopic = sourceTopic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.valueEncoding = valueEncoding
        self.error = error
        self.at = at
        self.truncated = truncated
        self.valueBytes = valueBytes
        self.valueSha256 = valueSha256
        self.keyTruncated = keyTruncated
    }
}

extension Encodable {
    /// The contract's bytes for this message (compact, sorted keys).
    public func contractJSON() throws -> [UInt8] {
        try JSONCoding.encodeBytes(self)
    }
}
