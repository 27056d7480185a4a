import Foundation
import GRDB
import Testing
@testable import ShardflowEngine

/// The engine core's lifecycles and typed store values.
@Suite struct EngineCoreTests {
    @Test func theShardLifecycleRefusesIllegalTransitions() throws {
        var lifecycle = ShardLifecycle(shard: 3)
        #expect(throws: ShardError.illegalTransition(shard: 3, event: "close", state: "opened")) { try lifecycle.close() }
        #expect(throws: ShardError.illegalTransition(shard: 3, event: "stopped", state: "opened")) { try lifecycle.stopped() }
        try lifecycle.start { [] }
        #expect(lifecycle.isRunning)
        #expect(throws: ShardError.illegalTransition(shard: 3, event: "start", state: "running")) { try lifecycle.start { [] } }
        guard case .drain = lifecycle.stop() else { Issue.record("a running shard drains when stopped"); return }
        guard case .none = lifecycle.stop() else { Issue.record("a second stop drains nothing"); return }
        #expect(throws: ShardError.illegalTransition(shard: 3, event: "close", state: "stopping")) { try lifecycle.close() }
        try lifecycle.stopped()
        #expect(throws: ShardError.illegalTransition(shard: 3, event: "start", state: "stopped")) { try lifecycle.start { [] } }
        guard case .closeStore = try lifecycle.close() else { Issue.record("a stopped shard closes its store"); return }
        guard case .none = try lifecycle.close() else { Issue.record("a closed shard stays closed"); return }
    }

    @Test func aStoppedShardIsNotStartedAgain() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        try shard.start()
        await shard.stop(drainTimeout: .seconds(1))
        #expect(throws: ShardError.illegalTransition(shard: 0, event: "start", state: "stopped")) { try shard.start() }
        await shard.close()
        await #expect(throws: ShardError.closed(shard: 0)) { _ = try await shard.failPendingTasks(reason: "after close") }
    }

    @Test func storeEnumsThrowOnAWordTheyDoNotKnow() throws {
        let queue = try DatabaseQueue()
        let statements = StatementCache()
        try queue.write { db in
            let connection = StoreConnection(db: db, cache: statements)
            let decoded = try connection.row("SELECT 'running'") { row in try row.decode(0, as: WorkflowStatus.self) }
            #expect(decoded == .running)
            #expect(throws: StoreDecodingError(column: "workflows.status", value: "paused")) {
                _ = try connection.row("SELECT 'paused'") { row in try row.decode(0, as: WorkflowStatus.self) }
            }
            #expect(throws: StoreDecodingError(column: "journal.kind", value: "teleport")) {
                _ = try connection.row("SELECT 'teleport'") { row in try row.decode(0, as: JournalEntry.Kind.self) }
            }
            statements.removeAll()
        }
    }

    @Test func anOutboxRowWithAnUnknownTopicIsReportedThenDeadLettered() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        try shard.transaction { tx in
            try tx.run("INSERT INTO outbox (topic, key, value, createdAt) VALUES ('gossip', 'k', x'7b7d', ?)", tx.now)
        }
        #expect(try shard.audit().undecodableRows == ["outbox.topic": 1])
        #expect(try shard.audit().isHealthy == false)
        let reader = OutboxReader(shard)
        try reader.drain()
        #expect(reader.deadLetters.count == 1)
        #expect(reader.deadLetters.first?.error.contains("unknown value \"gossip\" in outbox.topic") == true)
        #expect(try shard.audit().undecodableRows.isEmpty)
        await shard.close()
    }

    @Test func aWorkflowWhoseJournalHoldsAnUnknownKindIsFailedWithTheReasonNotMisread() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let gate = Gate()
        var registry = testRegistry()
        registry.registerStep("gated", input: Int.self, output: Int.self) { value, _ in
            await gate.wait()
            return value
        }
        registry.registerWorkflow("gated", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.run("gated", value, as: Int.self)
        }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: registry)
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("w-1", "gated", .int(1)), factory.start("w-2", "noop", .object(["steps": .int(2)]))])
        try shard.start()
        try await eventually { try shard.workflowDetail("w-1")?.journal.count == 1 }
        // A row as a newer version (or damage) might leave it, in a transaction that also evicts the kept body.
        try shard.transaction { tx in
            try tx.run("UPDATE journal SET kind = 'teleport' WHERE workflowId = 'w-1'")
            tx.executions.evicted.insert("w-1")
        }
        gate.open()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(2)
        #expect(reader.completions["w-2"]?.first?.status == .succeeded, "the shard goes on")
        let failed = try #require(reader.completions["w-1"]?.first)
        #expect(failed.status == .failed)
        #expect(failed.error?.message.contains("unknown value \"teleport\" in journal.kind") == true)
        #expect(try shard.stuckCount() == 0)
        await shard.close()
    }

    @Test func monitoringReadsUseTheirOwnConnectionWhileTheWriterHoldsATransaction() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("w-1", "noop", .object(["steps": .int(1)]))])
        // Inside a write transaction of the writer connection, the monitoring connection still reads
        // (the last committed state): it does not queue behind the writer.
        let stats = try shard.transaction { tx -> ShardStats in
            try tx.run("DELETE FROM replay_queue")
            return try shard.stats()
        }
        #expect(stats.replayQueueDepth == 1, "the monitor sees the committed row, not the open transaction's delete")
        #expect(try shard.stats().replayQueueDepth == 0)
        await shard.close()
    }
}

@Suite struct StoreMigrationTests {
    /// Shard 0's store in `directory`, migrated as far as `migration`; the caller writes what that version
    /// held, then opens the shard.
    private func oldStore(in directory: TemporaryDirectory, upTo migration: String) throws -> (path: String, queue: DatabaseQueue) {
        try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
        let path = directory.path + "/" + Shard.storeFileName(shard: 0)
        let queue = try DatabaseQueue(path: path)
        try StoreSchema.migrator().migrate(queue, upTo: migration)
        return (path, queue)
    }

    @Test func aStoreWithTheStatusIndexMigratesToTheRunningIndexAndCountsByStatusAsBefore() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // A store as v7 left it: two running workflows, three finished ones, one with a status this version
        // does not know.
        let path: String
        do {
            let (storePath, queue) = try oldStore(in: directory, upTo: "v7-shard-log")
            path = storePath
            // Finished recently, so no retention sweep could remove them.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await queue.write { db in
                try db.execute(sql: """
                    INSERT INTO shard_meta (id, shard) VALUES (1, 0);
                    INSERT INTO workflows (id, name, args, createdAt, startedAt, status, generation, completedAt) VALUES
                        ('run-1', 'sequential', '1', ?, ?, 'running', 1, NULL),
                        ('run-2', 'sequential', '1', ?, ?, 'running', 1, NULL),
                        ('ok-1', 'sequential', '1', ?, ?, 'succeeded', 2, ?),
                        ('ok-2', 'sequential', '1', ?, ?, 'succeeded', 2, ?),
                        ('bad-1', 'failing', '"x"', ?, ?, 'failed', 2, ?),
                        ('new-1', 'sequential', '1', ?, ?, 'archived', 2, ?);
                    """, arguments: [now, now, now, now, now, now, now, now, now, now, now, now, now, now, now, now])
            }
        }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        let stats = try shard.stats()
        #expect(stats.workflowsByStatus == ["running": 2, "succeeded": 2, "failed": 1, "archived": 1])
        await shard.close()

        let queue = try DatabaseQueue(path: path)
        try await queue.read { db in
            let indexes = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'workflows'")
            #expect(!indexes.contains("workflows_by_status"))
            #expect(indexes.contains("workflows_running"))
            let plan = { (sql: String) throws -> String in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
            }
            #expect(try plan("SELECT COUNT(*) FROM workflows WHERE status = 'running'").contains("COVERING INDEX workflows_running"))
            #expect(try plan("SELECT COUNT(*) FROM workflows WHERE quarantined = 1").contains("workflows_quarantined"))
            #expect(try plan("SELECT COUNT(*) FROM journal WHERE taskState = 'queued'").contains("COVERING INDEX journal_queued_fifo"))
            #expect(try plan("SELECT status, COUNT(*) FROM workflows WHERE status <> 'running' GROUP BY status")
                .contains("COVERING INDEX workflows_finished"))
            #expect(try plan("SELECT id FROM workflows WHERE status <> 'running' AND completedAt < 20 ORDER BY completedAt LIMIT 5")
                .contains("workflows_finished"))
        }
    }

    @Test func aStoreFromBeforeTasksJoinedTheJournalMigratesAndItsQueuedStepRuns() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // A store as the version before v6 left it: a workflow waiting for its first step, queued as a task.
        do {
            let (_, queue) = try oldStore(in: directory, upTo: "v5-versions-and-parking")
            try await queue.write { db in
                try db.execute(sql: """
                    INSERT INTO shard_meta (id, shard) VALUES (1, 0);
                    INSERT INTO workflows (id, name, args, createdAt, startedAt, status, generation) VALUES ('old-1', 'sequential', '3', 5, 5, 'running', 1);
                    INSERT INTO journal (workflowId, seq, kind, name, status) VALUES ('old-1', 1, 'step', 'double', 'pending');
                    INSERT INTO tasks (workflowId, stepId, name, input, createdAt, state, attempt, readyAt, enqueuedAt,
                                       maxAttempts, initialBackoffMs, multiplier, maxBackoffMs, jitter)
                    VALUES ('old-1', 1, 'double', '3', 5, 'queued', 0, 5, 5, 3, 100, 2, 1000, 0);
                    """)
            }
        }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        #expect(try shard.stats().queuedTasks == 1, "the task is the journal entry's now")
        try shard.start()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(1)
        let completion = try #require(reader.completions["old-1"]?.first)
        #expect(completion.status == .succeeded)
        #expect(completion.result == .int(24))
        #expect(try shard.audit().isHealthy)
        await shard.close()
    }
}
