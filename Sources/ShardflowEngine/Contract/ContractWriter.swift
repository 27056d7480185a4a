import ShardflowJSON

/// Writes one JSON object with its fields in the contract's order (faster than the generic encoder,
/// which matters on the per-step path).
struct ContractObjectWriter {
    private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]
    private var first = true

    private mutating func key(_ name: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        JSONText.writeString(name, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func field(_ name: String, _ value: String?) {
        key(name)
        if let value { JSONText.writeString(value, into: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
    }

    mutating func field(_ name: String, _ value: Int64?) {
        key(name)
        bytes.append(contentsOf: (value.map { String($0) } ?? "null").utf8)
    }

    mutating func field(_ name: String, _ value: Int) { field(name, Int64(value)) }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func field(_ name: String, _ value: JSONValue?) {
        key(name)
        JSONText.write(value ?? .null, into: &bytes)
    }

    /// A value that is JSON text already (see `CompletionEvent.contractJSON(encodedResult:)`).
    mutating func encodedField(_ name: String, _ json: String) {
        key(name)
        bytes.append(contentsOf: json.utf8)
    }

    mutating func object(_ name: String, _ build: (inout ContractObjectWriter) -> Void) {
        key(name)
        var nested = ContractObjectWriter()
        build(&nested)
        bytes.append(contentsOf: nested.finish())
    }

    mutating func array<Element>(_ name: String, _ items: [Element], _ build: (inout ContractObjectWriter, Element) -> Void) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            var nested = ContractObjectWriter()
            build(&nested, item)
            bytes.append(contentsOf: nested.finish())
        }
        bytes.append(UInt8(ascii: "]"))
    }

    func finish() -> [UInt8] { bytes + [UInt8(ascii: "}")] }
}

extension CompletionEvent {
    /// The contract's bytes (`"result": null` and `"error": null` present when absent).
    public func contractJSON() throws -> [UInt8] {
        contractJSON(encodedResult: nil)
    }

    /// The contract's bytes, with `encodedResult` (when given) written as the result instead of `result`.
    /// - Parameter encodedResult: JSON text as `JSONCoding` wrote it (a body's result, just encoded): written
    ///   as it is, which is what parsing and writing it again would give, without the parse.
    func contractJSON(encodedResult: String?) -> [UInt8] {
        var writer = ContractObjectWriter()
        writer.field("eventId", eventId)
        writer.field("workflowId", workflowId)
        writer.field("workflow", workflow)
        writer.field("shard", shard)
        writer.field("status", status.rawValue)
        if let encodedResult {
            writer.encodedField("result", encodedResult)
        } else {
            writer.field("result", result)
        }
        if let error {
            writer.object("error") { $0.field("message", error.message); $0.field("step", error.step) }
        } else {
            writer.field("error", nil as String?)
        }
        writer.field("createdAt", createdAt)
        writer.field("completedAt", completedAt)
        writer.field("steps", steps)
        return writer.finish()
    }
}

extension ReplayEvent {
    public func contractJSON() throws -> [UInt8] {
        var writer = ContractObjectWriter()
        writer.field("eventId", eventId)
        writer.field("workflowId", workflowId)
        writer.field("workflow", workflow)
        writer.field("shard", shard)
        writer.field("generation", generation)
        writer.field("at", at)
        writer.field("trigger", trigger.rawValue)
        writer.array("consumed", consumed) { item, entry in
            item.field("stepId", entry.stepId)
            item.field("name", entry.name)
            item.field("status", entry.status)
            item.field("attempts", entry.attempts)
        }
        writer.array("scheduled", scheduled) { item, entry in
            item.field("stepId", entry.stepId)
            item.field("name", entry.name)
        }
        writer.field("outcome", outcome.rawValue)
        if let version { writer.field("version", version) }
        if let parkedReason { writer.field("parkedReason", parkedReason) }
        if consumedCount != nil || scheduledCount != nil {
            writer.field("truncated", true)
            writer.field("consumedCount", consumedCount ?? consumed.count)
            writer.field("scheduledCount", scheduledCount ?? scheduled.count)
        }
        return writer.finish()
    }
}

extension ControlResult {
    public func contractJSON() throws -> [UInt8] {
        var writer = ContractObjectWriter()
        writer.field("commandId", commandId)
        writer.field("type", type)
        writer.field("shard", shard)
        writer.field("status", status.rawValue)
        writer.field("epoch", epoch)
        writer.object("affected") {
            $0.field("tasks", affected.tasks)
            $0.field("workflows", affected.workflows)
            $0.field("replayEntries", affected.replayEntries)
        }
        writer.field("stuckWorkflows", stuckWorkflows)
        writer.field("error", error)
        writer.field("at", at)
        return writer.finish()
    }
}

extension DeadLetter {
    public func contractJSON() throws -> [UInt8] {
        var writer = ContractObjectWriter()
        writer.field("sourceTopic", sourceTopic)
        writer.field("partition", partition)
        writer.field("offset", offset)
        writer.field("key", key)
        writer.field("value", value)
        writer.field("valueEncoding", valueEncoding.rawValue)
        writer.field("error", error)
        writer.field("at", at)
        writer.field("truncated", truncated ?? false)
        if let valueBytes { writer.field("valueBytes", valueBytes) }
        if let valueSha256 { writer.field("valueSha256", valueSha256) }
        if keyTruncated == true { writer.field("keyTruncated", true) }
        return writer.finish()
    }
}
