import GRDB
import Foundation
import ShardflowJSON
import Testing
@testable import ShardflowEngine

@Suite struct RetentionTests {
    @Test func finishedWorkflowsLeaveTheStoreAfterTheRetentionAndRunningOnesStay() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualEngineClock()
        var configuration = ShardConfiguration(retention: .seconds(3600))
        configuration.retentionSweepInterval = .seconds(3600)  // the test sweeps by hand
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry(),
                                         configuration: configuration, clock: clock)
        try shard.start()
        var factory = MessageFactory()
        let early = EventMessage(workflowId: "ghost", name: "approval", value: .null)
        _ = try await shard.ingest((0..<3).map { factory.start("done-\($0)", "noop", .object(["steps": .int(2)])) }
            + [factory.start("waiting", "waiter", .int(0)), factory.raw(try early.contractJSON(), key: early.workflowId),
               factory.control(#"{"type":"resumeExecutors","shard":0,"commandId":"cmd-1"}"#)])
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(3)
        try await eventually { try shard.stats().eventWaits == 1 }
        func count(_ table: String) throws -> Int64 {
            // GRDB's own API: engine statements are static, and the table name varies here.
            try shard.store.read { connection in try Int64.fetchOne(connection.db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
        }
        #expect(try count("control_commands") == 1)
        #expect(try count("events") == 1)

        clock.advance(by: .seconds(1800))
        #expect(try shard.pruneFinished(limit: 500) == 0, "not yet past the retention")
        #expect(try shard.workflowDetail("done-0") != nil)

        clock.advance(by: .seconds(1801))
        #expect(try shard.pruneFinished(limit: 2) == 2, "one batch at a time")
        #expect(try shard.pruneFinished(limit: 2) == 1)
        #expect(try shard.pruneFinished(limit: 2) == 0)
        for index in 0..<3 { #expect(try shard.workflowDetail("done-\(index)") == nil) }
        #expect(try count("journal WHERE workflowId LIKE 'done-%'") == 0)
        #expect(try shard.workflowDetail("waiting")?.status == "running")
        #expect(try shard.stats().workflowsByStatus == ["running": 1])
        #expect(try count("control_commands") == 1, "a repeated commandId is answered from it, however late")
        #expect(try count("events") == 1, "an event waits for its workflow to start, however long")
        #expect(try shard.audit().isHealthy)

        // A new start with a pruned id is a new workflow (the store no longer knows the old one).
        _ = try await shard.ingest([factory.start("done-0", "noop", .object(["steps": .int(1)]))])
        try await eventually {
            try reader.drain()
            return reader.completions["done-0"]?.count == 2
        }
        #expect(reader.completions["done-0"]?.count == 2)
        await shard.close()
    }

    @Test func noRetentionKeepsEverything() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualEngineClock()
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry(),
                                         configuration: ShardConfiguration(retention: nil), clock: clock)
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("kept", "noop", .object(["steps": .int(1)]))])
        try await OutboxReader(shard).waitForCompletions(1)
        clock.advance(by: .seconds(400 * 24 * 3600))
        #expect(try shard.pruneFinished(limit: 500) == 0)
        #expect(try shard.workflowDetail("kept")?.status == "succeeded")
        await shard.close()
    }
}
