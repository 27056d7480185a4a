import Foundation
import Synchronization
import Testing
@testable import ShardflowEngine

@Suite struct OperationsTests {
    @Test func failPendingTasksOnFiveHundredQueuedTasksFailsEveryWorkflowAndLeavesNoneStuck() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        _ = try await shard.bumpEpoch()
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest((0..<500).map { factory.start("w-\($0)", "noop", .object(["steps": .int(2)])) })
        try await eventually { try shard.stats().queuedTasks == 500 }
        #expect(try shard.stats().queuedTasks == 500)
        #expect(try shard.stats().executorState == .stopped)
        let result = try await shard.failPendingTasks(reason: "broker outage")
        #expect(result.affected == AffectedCounts(tasks: 500, workflows: 500, replayEntries: 500))
        #expect(result.stuckWorkflows == 0)
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(500)
        #expect(reader.completions.count == 500)
        #expect(reader.completions.values.allSatisfy {
            $0.count == 1 && $0[0].status == .failed && $0[0].error == WorkflowErrorInfo(message: "failed by operator: broker outage", step: "noop")
        })
        #expect(try shard.audit().stuckWorkflows.isEmpty)
        await shard.close()
    }

    @Test func bumpEpochStopsClaimingAndResumeFinishesEverything() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        try shard.start()
        let bumped = try await shard.bumpEpoch()
        #expect(bumped.epoch == 1)
        var factory = MessageFactory()
        _ = try await shard.ingest((0..<20).map { factory.start("b-\($0)", "noop", .object(["steps": .int(3)])) })
        try await eventually { try shard.stats().queuedTasks == 20 }
        #expect(try shard.stats().queuedTasks == 20)
        #expect(try shard.stats().runningTasks == 0)
        let resumed = try await shard.resumeExecutors()
        #expect(resumed.epoch == 1)
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(20)
        #expect(reader.completions.count == 20)
        #expect(try shard.stats().executorState == .running)
        await shard.close()
    }

    @Test func clearingQueuesReportsAndAuditNamesTheStuckWorkflows() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("stuck-1", "noop", .object(["steps": .int(1)])),
                                    factory.start("stuck-2", "noop", .object(["steps": .int(1)]))])
        let cleared = try await shard.clearReplayQueue()
        #expect(cleared.affected.replayEntries == 2)
        #expect(cleared.stuckWorkflows == 2)
        #expect(try shard.audit().stuckWorkflows == ["stuck-1", "stuck-2"])
        #expect(try shard.audit().isHealthy == false)
        let inspector = try ShardInspector(directory: directory.path, shard: 0)
        #expect(try inspector.audit().stuckWorkflows == ["stuck-1", "stuck-2"])
        #expect(try inspector.workflow("stuck-1")?.status == "running")
        await shard.close()
    }

    @Test func auditorFindsAPlantedStuckWorkflow() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("planted", "noop", .object(["steps": .int(1)])),
                                    factory.start("fine", "waiter", .int(0))])
        _ = try shard.replayQueued()
        #expect(try shard.audit().isHealthy)
        let cleared = try await shard.clearTaskQueue()
        #expect(cleared.affected.tasks == 1)
        #expect(cleared.stuckWorkflows == 1)
        #expect(try shard.audit().stuckWorkflows == ["planted"])
        await shard.close()
    }

    @Test func aSecondOwnerIsFencedByTheLock() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 5, registry: testRegistry())
        await #expect(throws: ShardError.self) {
            _ = try await Shard.open(directory: directory.path, shard: 5, registry: testRegistry())
        }
        await shard.close()
        let again = try await Shard.open(directory: directory.path, shard: 5, registry: testRegistry())
        #expect(again.shard == 5)
        await again.close()
    }

    @Test func tasksAreClaimedInFifoOrderOverAThousandShuffledWorkflows() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let order = Mutex<[String]>([])
        var registry = testRegistry()
        registry.registerStep("record", input: String.self, output: Int.self) { id, _ in
            order.withLock { $0.append(id) }
            return 0
        }
        registry.registerWorkflow("fifo", args: String.self, result: Int.self) { ctx, id in
            try await ctx.run("record", id, as: Int.self)
        }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: registry,
                                         configuration: ShardConfiguration(maxConcurrency: 1, claimLimit: 1))
        var factory = MessageFactory()
        let createdAt = (0..<1000).map { Int64($0) * 7 }.shuffled()
        _ = try await shard.ingest(createdAt.enumerated().map { index, time in
            factory.start("f-\(index)", "fifo", .string("f-\(index)"), createdAt: 1_000_000 + time)
        })
        while try shard.replayQueued() > 0 {}
        #expect(try shard.stats().queuedTasks == 1000)
        try shard.start()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(1000, limit: .seconds(40))
        let expected = createdAt.enumerated().sorted { $0.element < $1.element }.map { "f-\($0.offset)" }
        #expect(order.withLock { $0 } == expected)
        await shard.close()
    }

    @Test func everyWorkflowCompletesExactlyOnceAcrossRepeatedCloseAndReopen() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var factory = MessageFactory()
        var completions: [String: Set<String>] = [:]
        var published = 0
        for round in 0..<12 {
            let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
            if round < 4 {
                _ = try await shard.ingest((0..<50).map { factory.start("r\(round)-\($0)", "parallel", .int($0)) })
            }
            try shard.start()
            // Stop at a different point each round: after a varying number of scheduler turns.
            for _ in 0..<(round * 3) { await Task.yield() }
            let reader = OutboxReader(shard)
            try reader.drain()
            for (id, events) in reader.completions {
                for event in events { completions[id, default: []].insert(event.eventId) }
                published += events.count
            }
            await shard.close(drainTimeout: round % 2 == 0 ? .zero : .seconds(1))
        }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        try shard.start()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(200 - completions.count)
        for (id, events) in reader.completions {
            for event in events { completions[id, default: []].insert(event.eventId) }
            published += events.count
        }
        #expect(completions.count == 200)
        #expect(published == 200)
        #expect(completions.values.allSatisfy { $0.count == 1 })
        #expect(try shard.audit().isHealthy)
        #expect(try shard.stats().workflowsByStatus == ["succeeded": 200])
        await shard.close()
    }
}
