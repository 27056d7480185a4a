import Foundation
import GRDB
import ShardflowJSON

/// Ingest: inbound messages applied in one transaction per batch, with each stream's next offset (I3).
extension Shard {
    /// Applies a batch of messages read from Kafka. Messages below a stream's stored next offset were
    /// applied already and are skipped. A message that cannot be applied becomes a dead letter (or,
    /// for a control message with a usable commandId, a `rejected` control result) in the same
    /// transaction. Control messages with no usable commandId (not JSON, not an object, no
    /// `commandId` string) are dead-lettered, since a result could not be keyed.
    public func ingest(_ messages: [InboundMessage]) async throws -> IngestSummary {
        guard !messages.isEmpty else { return IngestSummary() }
        var summary = IngestSummary()
        try transaction { tx in
            var next: [InboundMessage.Stream: Int64] = [:]
            for stream in [InboundMessage.Stream.workflows, .control] {
                if let offset = try StoreQueries.nextOffset(tx.connection, stream) { next[stream] = offset }
            }
            for message in messages {
                if let stored = next[message.stream], message.offset < stored {
                    summary.skipped += 1
                    continue
                }
                switch message.stream {
                case .workflows: try applyWorkflowMessage(tx, message, summary: &summary)
                case .control: try applyControlMessage(tx, message, summary: &summary)
                }
                next[message.stream] = message.offset + 1
            }
            for (stream, offset) in next {
                try tx.run("INSERT OR REPLACE INTO consumed_offsets (stream, nextOffset) VALUES (?, ?)", stream, offset)
                tx.effects.consumed[stream] = offset
            }
        }
        signals.lookAgain()
        return summary
    }

    private func deadLetter(_ tx: ShardTransaction, _ message: InboundMessage, reason: String,
                            summary: inout IngestSummary) throws {
        let letter = BoundedOutput.deadLetter(sourceTopic: message.topic, partition: message.partition,
                                              offset: message.offset, key: message.key, value: message.value,
                                              error: reason, at: tx.now)
        try tx.appendOutbox(topic: .deadLetters, key: letter.key, value: letter.value)
        summary.deadLetters += 1
        metrics.deadLetters.increment()
        logger.debug("dead letter at offset \(message.offset): \(reason)")
    }

    private func applyWorkflowMessage(_ tx: ShardTransaction, _ message: InboundMessage, summary: inout IngestSummary) throws {
        let decoded: WorkflowMessage
        do {
            decoded = try InboundDecoding.workflowMessage(message.value, maxBytes: configuration.maxMessageBytes)
        } catch {
            try deadLetter(tx, message, reason: error.description, summary: &summary)
            return
        }
        if let misrouted = routingProblem(decoded.workflowId, message) {
            metrics.misroutedMessages.increment()
            try deadLetter(tx, message, reason: misrouted, summary: &summary)
            return
        }
        switch decoded {
        case .start(let start):
            // An unknown name is most likely a mistake of the producer: it is answered at once. An unknown
            // version of a known workflow is a deploy in progress: the start is kept and parked until a
            // worker that has the version owns the shard.
            guard let newest = replayer.registry.newestVersion(of: start.workflow) else {
                try deadLetter(tx, message, reason: "unknown workflow \"\(start.workflow.prefix(utf8Bytes: 200))\"", summary: &summary)
                return
            }
            let version = start.version ?? newest
            let args = start.args.jsonString()
            if let definition = replayer.registry.workflow(start.workflow, version: version) {
                do {
                    try definition.validateArgs(args)
                } catch {
                    let named = (replayer.registry.versions[start.workflow]?.count ?? 0) > 1 ? "\(start.workflow) version \(version)" : start.workflow
                    try deadLetter(tx, message, reason: "args do not match workflow \(named): \(error)", summary: &summary)
                    return
                }
            }
            // I2: a workflowId the shard knows already changes nothing.
            try tx.run("""
                INSERT OR IGNORE INTO workflows (id, name, args, createdAt, startedAt, status, version)
                VALUES (?, ?, ?, ?, ?, 'running', ?)
                """, start.workflowId, start.workflow, args, start.createdAt ?? message.timestamp, tx.now, version)
            if tx.changes > 0 {
                try tx.enqueueReplay(workflowId: start.workflowId, trigger: .start)
                summary.started += 1
                metrics.workflowsStarted.increment()
            } else {
                summary.duplicateStarts += 1
            }
        case .cancel(let cancel):
            // A cancel for a workflow the shard never had (or has pruned) would change nothing: say so.
            guard try tx.loadWorkflow(cancel.workflowId) != nil else {
                try deadLetter(tx, message, reason: "cancel of workflowId \"\(cancel.workflowId)\", which this shard does not know (never started, or finished and past its retention)", summary: &summary)
                return
            }
            _ = try tx.cancel(workflowId: cancel.workflowId, reason: cancel.reason, answer: false)
            summary.canceled += 1
        case .event(let event):
            // Kept for a workflow that has not started yet (the contract), but not for one that has finished.
            if let workflow = try tx.loadWorkflow(event.workflowId), workflow.status != .running {
                try deadLetter(tx, message, reason: "event \"\(event.name)\" for workflowId \"\(event.workflowId)\", which has already completed (\(workflow.status.rawValue)); it is not kept", summary: &summary)
                return
            }
            _ = try tx.deliverEvent(workflowId: event.workflowId, name: event.name, value: event.value, answer: false)
            summary.events += 1
        }
    }

    /// Why a message about `workflowId` must not be applied in this shard, if it must not: every message
    /// about one workflow has to land in the one partition its workflowId maps to (I2), keyed by it.
    private func routingProblem(_ workflowId: String, _ message: InboundMessage) -> String? {
        let fix = "produce with key = workflowId and partitioner=murmur2_random (the Java client's default; librdkafka's default consistent_random places keys elsewhere)"
        if message.key.map({ $0 != Array(workflowId.utf8) }) ?? true {
            let got = message.key.map { "\"\(String(decoding: $0, as: UTF8.self).prefix(utf8Bytes: 200))\"" } ?? "no key"
            return "the Kafka key must be the workflowId \"\(workflowId)\" (got \(got)): \(fix)"
        }
        if let count = configuration.workflowsPartitionCount, count > 0 {
            let expected = ShardRouting.partition(ofWorkflowId: workflowId, partitionCount: count)
            if expected != message.partition {
                return "workflowId \"\(workflowId)\" belongs to partition \(expected) (murmur2 of the workflowId mod \(count) partitions) but was read from partition \(message.partition): \(fix)"
            }
        }
        return nil
    }

    private func applyControlMessage(_ tx: ShardTransaction, _ message: InboundMessage, summary: inout IngestSummary) throws {
        let fields: [String: JSONValue]
        do {
            fields = try InboundDecoding.parseObject(message.value, maxBytes: configuration.maxMessageBytes)
        } catch {
            try deadLetter(tx, message, reason: error.description, summary: &summary)
            return
        }
        guard let commandId = fields["commandId"]?.stringValue, !commandId.isEmpty,
              commandId.utf8.count <= MessageLimits.maxIdBytes else {
            let reason = fields["commandId"] == nil
                ? "missing field commandId" : "field commandId must be a string of 1 to \(MessageLimits.maxIdBytes) bytes"
            try deadLetter(tx, message, reason: reason, summary: &summary)
            return
        }
        summary.controlResults += 1
        // A repeated commandId is answered again with the stored result, and applies nothing.
        if let stored = try tx.row("SELECT result FROM control_commands WHERE commandId = ?", commandId, as: { $0[0] as [UInt8] }) {
            try tx.appendOutbox(topic: .controlResults, key: commandId, value: stored)
            return
        }
        // The type is echoed only when it is short enough to be one (a control result stays small).
        let typeText = fields["type"]?.stringValue.flatMap { $0.utf8.count <= 64 ? $0 : nil }
        var rejection: String?
        var operationResult: OperationResult?
        if fields["type"] == nil || fields["type"] == .null {
            rejection = "missing field type"
        } else if let typeText, let type = ControlCommandType(rawValue: typeText) {
            let reasonField = fields["reason"]
            if let reasonField, reasonField != .null, reasonField.stringValue == nil {
                rejection = "field reason must be a string"
            } else if let long = reasonField?.stringValue, long.utf8.count > MessageLimits.maxReasonBytes {
                rejection = "field reason is \(long.utf8.count) bytes, more than the \(MessageLimits.maxReasonBytes) byte limit"
            } else if type == .failParkedWorkflows, let field = fields["workflowId"], field != .null,
                      !(field.stringValue.map(InboundDecoding.isValidWorkflowId) ?? false) {
                rejection = "field workflowId must be 1 to 200 characters of [A-Za-z0-9._:-]"
            } else if let target = fields["shard"]?.int64Value {
                if target != Int64(message.partition) || target != Int64(shard) {
                    rejection = "wrong shard: the command targets shard \(target) but was read from partition \(message.partition) (shard \(shard))"
                } else {
                    let reason = reasonField?.stringValue ?? "no reason given"
                    switch type {
                    case .failPendingTasks: operationResult = try tx.failPendingTasks(reason: reason)
                    case .bumpEpoch: operationResult = try tx.bumpEpoch()
                    case .resumeExecutors: operationResult = try tx.resumeExecutors()
                    case .clearReplayQueue: operationResult = try tx.clearReplayQueue()
                    case .clearTaskQueue: operationResult = try tx.clearTaskQueue()
                    case .failParkedWorkflows:
                        operationResult = try tx.failParkedWorkflows(workflowId: fields["workflowId"]?.stringValue, reason: reason)
                    }
                }
            } else {
                rejection = fields["shard"] == nil ? "missing field shard" : "field shard must be an integer"
            }
        } else {
            let given = fields["type"]?.stringValue ?? fields["type"]?.jsonString() ?? ""
            rejection = "unknown type \"\(given.prefix(utf8Bytes: 100))\"" + (given.utf8.count > 100 ? " (\(given.utf8.count) bytes)" : "")
        }
        let answered = try operationResult ?? tx.result(AffectedCounts())
        let controlResult = ControlResult(
            commandId: commandId, type: typeText, shard: shard, status: rejection == nil ? .applied : .rejected,
            epoch: answered.epoch, affected: answered.affected, stuckWorkflows: answered.stuckWorkflows,
            error: rejection, at: tx.now)
        let bytes = try controlResult.contractJSON()
        try tx.run("INSERT INTO control_commands (commandId, result, appliedAt) VALUES (?, ?, ?)", commandId, bytes, tx.now)
        try tx.appendOutbox(topic: .controlResults, key: commandId, value: bytes)
    }
}
