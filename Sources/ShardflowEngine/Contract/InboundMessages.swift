import ShardflowJSON

/// A `start` message of `shardflow.workflows`.
public struct StartMessage: Sendable, Equatable, Codable {
    public var type: String = "start"
    public var workflowId: String
    public var workflow: String
    public var args: JSONValue
    public var createdAt: Int64?
    /// The registered version to run; nil: the newest the ingesting worker has.
    public var version: Int?

    public init(workflowId: String, workflow: String, args: JSONValue, createdAt: Int64? = nil, version: Int? = nil) {
        self.workflowId = workflowId
        self.workflow = workflow
        self.args = args
        self.createdAt = createdAt
        self.version = version
    }
}

/// A `cancel` message of `shardflow.workflows`.
public struct CancelMessage: Sendable, Equatable, Codable {
    public var type: String = "cancel"
    public var workflowId: String
    public var reason: String?

    public init(workflowId: String, reason: String? = nil) {
        self.workflowId = workflowId
        self.reason = reason
    }
}

/// An `event` message of `shardflow.workflows`.
public struct EventMessage: Sendable, Equatable, Codable {
    public var type: String = "event"
    public var workflowId: String
    public var name: String
    public var value: JSONValue

    public init(workflowId: String, name: String, value: JSONValue) {
        self.workflowId = workflowId
        self.name = name
        self.value = value
    }
}

/// The operator commands of `shardflow.control`.
public enum ControlCommandType: String, Sendable, Codable, CaseIterable {
    case failPendingTasks, bumpEpoch, resumeExecutors, clearReplayQueue, clearTaskQueue
    /// Fails parked workflows on purpose: the one named by `workflowId`, or every parked one of the shard.
    case failParkedWorkflows
}

/// A message of `shardflow.control` (partition = the shard it targets).
public struct ControlCommand: Sendable, Equatable, Codable {
    public var type: ControlCommandType
    public var shard: Int
    public var commandId: String
    public var reason: String?
    /// For `failParkedWorkflows`: the one workflow to fail (nil: every parked workflow of the shard).
    public var workflowId: String?

    public init(type: ControlCommandType, shard: Int, commandId: String, reason: String? = nil, workflowId: String? = nil) {
        self.type = type
        self.shard = shard
        self.commandId = commandId
        self.reason = reason
        self.workflowId = workflowId
    }
}

/// A decoded, validated message of `shardflow.workflows`.
public enum WorkflowMessage: Sendable, Equatable {
    case start(StartMessage)
    case cancel(CancelMessage)
    case event(EventMessage)

    public var workflowId: String {
        switch self {
        case .start(let start): start.workflowId
        case .cancel(let cancel): cancel.workflowId
        case .event(let event): event.workflowId
        }
    }
}

/// Why an inbound message cannot be applied; `description` is the dead letter's `error`.
public struct InboundRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Validation of inbound messages, shared by the engine and by tools that build messages.
public enum InboundDecoding {
    /// 1 to 200 characters of `[A-Za-z0-9._:-]`.
    public static func isValidWorkflowId(_ id: String) -> Bool {
        let count = id.utf8.count
        guard count >= 1 && count <= 200 else { return false }
        return id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: ":"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// Parses the raw value as a JSON object, with the checks every inbound message shares.
    public static func parseObject(_ value: [UInt8]?, maxBytes: Int) throws(InboundRejection) -> [String: JSONValue] {
        guard let value, !value.isEmpty else { throw InboundRejection("empty value") }
        guard value.count <= maxBytes else {
            throw InboundRejection("message of \(value.count) bytes is larger than the \(maxBytes) byte limit (1 MiB)")
        }
        guard String(validating: value, as: UTF8.self) != nil else { throw InboundRejection("value is not UTF-8") }
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(value)
        } catch {
            throw InboundRejection(String(describing: error))
        }
        guard case .object(let fields) = parsed else { throw InboundRejection("value is not a JSON object") }
        return fields
    }

    static func string(_ fields: [String: JSONValue], _ name: String) throws(InboundRejection) -> String {
        guard let field = fields[name], field != .null else { throw InboundRejection("missing field \(name)") }
        guard let text = field.stringValue else { throw InboundRejection("field \(name) must be a string") }
        return text
    }

    static func optionalString(_ fields: [String: JSONValue], _ name: String) throws(InboundRejection) -> String? {
        guard let field = fields[name], field != .null else { return nil }
        guard let text = field.stringValue else { throw InboundRejection("field \(name) must be a string") }
        return text
    }

    static func workflowId(_ fields: [String: JSONValue]) throws(InboundRejection) -> String {
        let id = try string(fields, "workflowId")
        guard isValidWorkflowId(id) else {
            throw InboundRejection("invalid workflowId \"\(id.prefix(utf8Bytes: 240))\": expected 1 to 200 characters of [A-Za-z0-9._:-]")
        }
        return id
    }

    /// Decodes a message of `shardflow.workflows` (without checking that the workflow is registered).
    public static func workflowMessage(_ value: [UInt8]?, maxBytes: Int = MessageLimits.maxInboundBytes) throws(InboundRejection) -> WorkflowMessage {
        let fields = try parseObject(value, maxBytes: maxBytes)
        let type = try string(fields, "type")
        switch type {
        case "start":
            let id = try workflowId(fields)
            let workflow = try string(fields, "workflow")
            guard let args = fields["args"] else { throw InboundRejection("missing field args") }
            var createdAt: Int64?
            if let raw = fields["createdAt"], raw != .null {
                guard let millis = raw.int64Value else { throw InboundRejection("field createdAt must be an integer (milliseconds)") }
                // A negative time would jump the shard's FIFO queue ahead of every real workflow.
                guard millis >= 0 else { throw InboundRejection("field createdAt must not be negative (got \(millis))") }
                createdAt = millis
            }
            var version: Int?
            if let raw = fields["version"], raw != .null {
                guard let number = raw.int64Value, (1...Int64(MessageLimits.maxWorkflowVersion)).contains(number) else {
                    throw InboundRejection("field version must be an integer from 1 to \(MessageLimits.maxWorkflowVersion)")
                }
                version = Int(number)
            }
            return .start(StartMessage(workflowId: id, workflow: workflow, args: args, createdAt: createdAt, version: version))
        case "cancel":
            let id = try workflowId(fields)
            let reason = try optionalString(fields, "reason")
            if let reason, reason.utf8.count > MessageLimits.maxReasonBytes {
                throw InboundRejection("field reason is \(reason.utf8.count) bytes, more than the \(MessageLimits.maxReasonBytes) byte limit")
            }
            return .cancel(CancelMessage(workflowId: id, reason: reason))
        case "event":
            let id = try workflowId(fields)
            let name = try string(fields, "name")
            guard !name.isEmpty, name.utf8.count <= MessageLimits.maxEventNameBytes else {
                throw InboundRejection("field name must be 1 to \(MessageLimits.maxEventNameBytes) bytes (got \(name.utf8.count))")
            }
            return .event(EventMessage(workflowId: id, name: name, value: fields["value"] ?? .null))
        default:
            throw InboundRejection("unknown type \"\(type.prefix(utf8Bytes: 100))\"")
        }
    }
}
