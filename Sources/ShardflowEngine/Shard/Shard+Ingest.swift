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
        var effects = Effects()
        var summary = IngestSummary()
        try write { db in
            var next: [InboundMessage.Stream: Int64] = [:]
            for stream in [InboundMessage.Stream.workflows, .control] {
                if let offset = try StoreQueries.nextOffset(db, stream) { next[stream] = offset }
            }
            let now = clock.nowMilliseconds()
            for message in messages {
                if let stored = next[message.stream], message.offset < stored {
                    summary.skipped += 1
                    continue
                }
                switch message.stream {
                case .workflows: try applyWorkflowMessage(db, message, now: now, summary: &summary, effects: &effects)
                case .control: try applyControlMessage(db, message, now: now, summary: &summary, effects: &effects)
                }
                next[message.stream] = message.offset + 1
            }
            for (stream, offset) in next {
                try db.run("INSERT OR REPLACE INTO consumed_offsets (stream, nextOffset) VALUES (?, ?)", stream.rawValue, offset)
            }
        }
        afterOperation(effects)
        return summary
    }

    private func deadLetter(_ db: Database, _ message: InboundMessage, reason: String, now: Int64,
                            summary: inout IngestSummary, effects: inout Effects) throws {
        let letter = BoundedOutput.deadLetter(sourceTopic: message.topic, partition: message.partition,
                                              offset: message.offset, key: message.key, value: message.value,
                                              error: reason, at: now)
        try appendOutbox(db, topic: .deadLetters, key: letter.key, value: letter.value, effects: &effects)
        summary.deadLetters += 1
        metrics.deadLetters.increment()
        logger.debug("dead letter at offset \(message.offset): \(reason)")
    }

    private func applyWorkflowMessage(_ db: Database, _ message: InboundMessage, now: Int64,
                                      summary: inout IngestSummary, effects: inout Effects) throws {
        let decoded: WorkflowMessage
        do {
            decoded = try InboundDecoding.workflowMessage(message.value, maxBytes: configuration.maxMessageBytes)
        } catch {
            try deadLetter(db, message, reason: error.description, now: now, summary: &summary, effects: &effects)
            return
        }
        if let misrouted = routingProblem(decoded.workflowId, message) {
            metrics.misroutedMessages.increment()
            try deadLetter(db, message, reason: misrouted, now: now, summary: &summary, effects: &effects)
            return
        }
        switch decoded {
        case .start(let start):
            // An unknown name is most likely a mistake of the producer: it is answered at once. An unknown
            // version of a known workflow is a deploy in progress: the start is kept and parked until a
            // worker that has the version owns the shard.
            guard let newest = registry.newestVersion(of: start.workflow) else {
                try deadLetter(db, message, reason: "unknown workflow \"\(start.workflow.prefix(utf8Bytes: 200))\"", now: now,
                               summary: &summary, effects: &effects)
                return
            }
            let version = start.version ?? newest
            let args = start.args.jsonString()
            if let definition = registry.workflow(start.workflow, version: version) {
                do {
                    try definition.validateArgs(args)
                } catch {
                    let named = (registry.versions[start.workflow]?.count ?? 0) > 1 ? "\(start.workflow) version \(version)" : start.workflow
                    try deadLetter(db, message, reason: "args do not match workflow \(named): \(error)",
                                   now: now, summary: &summary, effects: &effects)
                    return
                }
            }
            // I2: a workflowId the shard knows already changes nothing.
            try db.run("""
                INSERT OR IGNORE INTO workflows (id, name, args, createdAt, startedAt, status, version)
                VALUES (?, ?, ?, ?, ?, 'running', ?)
                """, start.workflowId, start.workflow, args, start.createdAt ?? message.timestamp, now, version)
            if db.changesCount > 0 {
                try enqueueReplay(db, workflowId: start.workflowId, trigger: .start, now: now, effects: &effects)
                summary.started += 1
                metrics.workflowsStarted.increment()
            } else {
                summary.duplicateStarts += 1
            }
        case .cancel(let cancel):
            // A cancel for a workflow the shard never had (or has pruned) would change nothing: say so.
            guard try loadWorkflow(db, cancel.workflowId) != nil else {
                try deadLetter(db, message, reason: "cancel of workflowId \"\(cancel.workflowId)\", which this shard does not know (never started, or finished and past its retention)",
                               now: now, summary: &summary, effects: &effects)
                return
            }
            _ = try self.cancel(db, workflowId: cancel.workflowId, reason: cancel.reason, now: now, effects: &effects)
            summary.canceled += 1
        case .event(let event):
            // Kept for a workflow that has not started yet (the contract), but not for one that has finished.
            if let workflow = try loadWorkflow(db, event.workflowId), workflow.status != "running" {
                try deadLetter(db, message, reason: "event \"\(event.name)\" for workflowId \"\(event.workflowId)\", which has already completed (\(workflow.status)); it is not kept",
                               now: now, summary: &summary, effects: &effects)
                return
            }
            _ = try deliverEvent(db, workflowId: event.workflowId, name: event.name, value: event.value, now: now,
                                 effects: &effects)
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

    private func applyControlMessage(_ db: Database, _ message: InboundMessage, now: Int64,
                                     summary: inout IngestSummary, effects: inout Effects) throws {
        let fields: [String: JSONValue]
        do {
            fields = try InboundDecoding.parseObject(message.value, maxBytes: configuration.maxMessageBytes)
        } catch {
            try deadLetter(db, message, reason: error.description, now: now, summary: &summary, effects: &effects)
            return
        }
        guard let commandId = fields["commandId"]?.stringValue, !commandId.isEmpty,
              commandId.utf8.count <= MessageLimits.maxIdBytes else {
            let reason = fields["commandId"] == nil
                ? "missing field commandId" : "field commandId must be a string of 1 to \(MessageLimits.maxIdBytes) bytes"
            try deadLetter(db, message, reason: reason, now: now, summary: &summary, effects: &effects)
            return
        }
        summary.controlResults += 1
        // A repeated commandId is answered again with the stored result, and applies nothing.
        if let stored = try db.row("SELECT result FROM control_commands WHERE commandId = ?", commandId, as: { $0[0] as [UInt8] }) {
            try appendOutbox(db, topic: .controlResults, key: commandId, value: stored, effects: &effects)
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
                    case .failPendingTasks: operationResult = try failPendingTasks(db, reason: reason, now: now, effects: &effects)
                    case .bumpEpoch: operationResult = try bumpEpoch(db)
                    case .resumeExecutors: operationResult = try resumeExecutors(db)
                    case .clearReplayQueue: operationResult = try clearReplayQueue(db)
                    case .clearTaskQueue: operationResult = try clearTaskQueue(db)
                    case .failParkedWorkflows:
                        operationResult = try failParkedWorkflows(db, workflowId: fields["workflowId"]?.stringValue,
                                                                  reason: reason, now: now, effects: &effects)
                    }
                }
            } else {
                rejection = fields["shard"] == nil ? "missing field shard" : "field shard must be an integer"
            }
        } else {
            let given = fields["type"]?.stringValue ?? fields["type"]?.jsonString() ?? ""
            rejection = "unknown type \"\(given.prefix(utf8Bytes: 100))\"" + (given.utf8.count > 100 ? " (\(given.utf8.count) bytes)" : "")
        }
        let answered = try operationResult ?? result(db, AffectedCounts())
        let controlResult = ControlResult(
            commandId: commandId, type: typeText, shard: shard, status: rejection == nil ? .applied : .rejected,
            epoch: answered.epoch, affected: answered.affected, stuckWorkflows: answered.stuckWorkflows,
            error: rejection, at: now)
        let bytes = try controlResult.contractJSON()
        try db.run("INSERT INTO control_commands (commandId, result, appliedAt) VALUES (?, ?, ?)", commandId, bytes, now)
        try appendOutbox(db, topic: .controlResults, key: commandId, value: bytes, effects: &effects)
    }
}
