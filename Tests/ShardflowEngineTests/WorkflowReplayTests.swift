import Foundation
import Testing
@testable import ShardflowEngine

@Suite struct WorkflowReplayTests {
    func withShard(clock: any EngineClock = SystemEngineClock(), registry: WorkflowRegistry = testRegistry(),
                   _ body: (Shard, OutboxReader, inout MessageFactory) async throws -> Void) async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: registry, clock: clock)
        try shard.start()
        var factory = MessageFactory()
        let reader = OutboxReader(shard)
        try await body(shard, reader, &factory)
        await shard.close()
    }

    @Test func sequentialStepsReplayFromTheJournal() async throws {
        try await withShard { shard, reader, factory in
            _ = try await shard.ingest([factory.start("seq-1", "sequential", .int(2))])
            try await reader.waitForCompletions(1)
            let completion = try #require(reader.completions["seq-1"]?.first)
            #expect(completion.status == .succeeded)
            #expect(completion.result == .int(16))
            #expect(completion.steps == 3)
            #expect(completion.eventId == "c-0-000000001")
            #expect(reader.replays.map(\.generation) == [1, 2, 3, 4])
            #expect(reader.replays.first?.trigger == .start)
            #expect(reader.replays.last?.outcome == .completed)
            #expect(reader.replays[1].consumed.map(\.stepId) == [1])
            #expect(try shard.audit().isHealthy)
        }
    }

    @Test func parallelStepsAreScheduledTogether() async throws {
        try await withShard { shard, reader, factory in
            _ = try await shard.ingest([factory.start("par-1", "parallel", .int(1))])
            try await reader.waitForCompletions(1)
            let completion = try #require(reader.completions["par-1"]?.first)
            #expect(completion.status == .succeeded)
            #expect(completion.result == .array([.int(2), .int(4), .int(3), .int(18)]))
            #expect(reader.replays.first?.scheduled.map(\.name) == ["double", "double", "noop"])
            #expect(try shard.audit().isHealthy)
        }
    }

    @Test func aThrowingBodyFailsTheWorkflowWithTheStepName() async throws {
        try await withShard { shard, reader, factory in
            _ = try await shard.ingest([factory.start("fail-1", "failing", .string("boom"))])
            try await reader.waitForCompletions(1)
            let completion = try #require(reader.completions["fail-1"]?.first)
            #expect(completion.status == .failed)
            #expect(completion.error == WorkflowErrorInfo(message: "boom", step: "fail"))
            let json = String(decoding: try completion.contractJSON(), as: UTF8.self)
            #expect(json.contains("\"result\":null"))
        }
    }

    @Test func retriesWaitOutTheirBackoffOnTheInjectedClock() async throws {
        let clock = ManualEngineClock()
        try await withShard(clock: clock) { shard, reader, factory in
            let start = clock.nowMilliseconds()
            _ = try await shard.ingest([factory.start("flaky-1", "flaky", .int(2))])
            try await eventually { try shard.workflowDetail("flaky-1")?.pendingTasks.first?.readyAt == start + 1000 }
            let first = try #require(try shard.workflowDetail("flaky-1")?.pendingTasks.first)
            #expect(first.readyAt == start + 1000)
            #expect(first.state == "queued")
            clock.advance(by: .seconds(1))
            try await eventually { try shard.workflowDetail("flaky-1")?.pendingTasks.first?.readyAt == start + 3000 }
            #expect(try shard.workflowDetail("flaky-1")?.pendingTasks.first?.attempt == 2)
            clock.advance(by: .seconds(2))
            try await reader.waitForCompletions(1)
            let completion = try #require(reader.completions["flaky-1"]?.first)
            #expect(completion.result == .int(3))
            #expect(try shard.workflowDetail("flaky-1")?.journal.first?.attempts == 3)
        }
    }

    @Test func durableSleepFiresOnTheClock() async throws {
        let clock = ManualEngineClock()
        try await withShard(clock: clock) { shard, reader, factory in
            _ = try await shard.ingest([factory.start("sleep-1", "sleeper", .int(5))])
            try await eventually { try shard.stats().timers == 1 }
            #expect(try shard.stats().timers == 1)
            #expect(reader.completions.isEmpty)
            clock.advance(by: .seconds(5))
            try await reader.waitForCompletions(1)
            #expect(reader.completions["sleep-1"]?.first?.result == .int(5000))
            #expect(reader.replays.last?.trigger == .timer)
        }
    }

    @Test func eventsAreDeliveredBeforeOrAfterTheWaitAndTimeOut() async throws {
        let clock = ManualEngineClock()
        try await withShard(clock: clock) { shard, reader, factory in
            let early = EventMessage(workflowId: "early", name: "approval", value: .object(["ok": .bool(true)]))
            _ = try await shard.ingest([factory.raw(try early.contractJSON(), key: early.workflowId), factory.start("early", "waiter", .int(0)),
                                        factory.start("late", "waiter", .int(0)), factory.start("timeout", "waiter", .int(30))])
            try await eventually { try shard.stats().eventWaits == 2 }
            #expect(try shard.stats().eventWaits == 2)
            let result = try await shard.deliverEvent(workflowId: "late", name: "approval", value: .int(7))
            #expect(result.affected.workflows == 1)
            clock.advance(by: .seconds(30))
            try await reader.waitForCompletions(3)
            #expect(reader.completions["early"]?.first?.result == .object(["ok": .bool(true)]))
            #expect(reader.completions["late"]?.first?.result == .int(7))
            #expect(reader.completions["timeout"]?.first?.result == .string("timed out"))
            #expect(try shard.audit().isHealthy)
        }
    }

    @Test func cancelCompletesTheWorkflowOnceAsCanceled() async throws {
        try await withShard { shard, reader, factory in
            _ = try await shard.ingest([factory.start("c-1", "waiter", .int(0))])
            try await eventually { try shard.stats().eventWaits == 1 }
            let cancel = CancelMessage(workflowId: "c-1", reason: "no longer needed")
            _ = try await shard.ingest([factory.raw(try cancel.contractJSON(), key: cancel.workflowId), factory.raw(try cancel.contractJSON(), key: cancel.workflowId)])
            try await reader.waitForCompletions(1)
            try reader.drain()
            #expect(reader.completions["c-1"]?.count == 1)
            #expect(reader.completions["c-1"]?.first?.status == .canceled)
            #expect(try shard.stats().eventWaits == 0)
            #expect(try shard.audit().isHealthy)
        }
    }

    @Test func changedWorkflowCodeIsADeterminismViolation() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var before = testRegistry()
        before.registerWorkflow("evolving", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.waitForEvent("go")
            return try await ctx.run("double", value, as: Int.self)
        }
        var after = testRegistry()
        after.registerWorkflow("evolving", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.run("noop", value, as: Int.self)
        }
        var factory = MessageFactory()
        let first = try await Shard.open(directory: directory.path, shard: 0, registry: before)
        try first.start()
        _ = try await first.ingest([factory.start("evo", "evolving", .int(1))])
        try await eventually { try first.stats().eventWaits == 1 }
        #expect(try first.stats().eventWaits == 1)
        await first.close()

        // With --on-nondeterminism fail the detector's verdict is final (the default parks: see DeployTests).
        var failing = ShardConfiguration()
        failing.onNondeterminism = .fail
        let second = try await Shard.open(directory: directory.path, shard: 0, registry: after, configuration: failing)
        try second.start()
        _ = try await second.deliverEvent(workflowId: "evo", name: "go", value: .null)
        let reader = OutboxReader(second)
        try await reader.waitForCompletions(1)
        let completion = try #require(reader.completions["evo"]?.first)
        #expect(completion.status == .failed)
        #expect(completion.error?.message.contains("determinism violation") == true)
        #expect(completion.steps == 0)
        #expect(try second.audit().isHealthy)
        await second.close()
    }

    @Test func aWorkflowFailingWithAnOpenTimerLeavesNothingBehind() async throws {
        // The new code never re-issues the pending long sleep, so completion must find and remove its timer.
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualEngineClock()
        var before = testRegistry()
        before.registerWorkflow("sleeper", args: Int.self, result: Int.self) { ctx, value in
            async let long: Void = ctx.sleep(for: .seconds(3600))
            async let short: Void = ctx.sleep(for: .seconds(10))
            try await short
            try await long
            return value
        }
        var after = testRegistry()
        after.registerWorkflow("sleeper", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.run("noop", value, as: Int.self)
        }
        var factory = MessageFactory()
        let first = try await Shard.open(directory: directory.path, shard: 0, registry: before, clock: clock)
        try first.start()
        _ = try await first.ingest([factory.start("sleepy", "sleeper", .int(1))])
        try await eventually { try first.stats().timers == 2 }
        await first.close()

        // Failed, not parked, so that completion has to clean up (--on-nondeterminism fail).
        var failing = ShardConfiguration()
        failing.onNondeterminism = .fail
        let second = try await Shard.open(directory: directory.path, shard: 0, registry: after, configuration: failing, clock: clock)
        try second.start()
        let reader = OutboxReader(second)
        clock.advance(by: .seconds(10))
        try await reader.waitForCompletions(1)
        let completion = try #require(reader.completions["sleepy"]?.first)
        #expect(completion.status == .failed)
        #expect(completion.error?.message.contains("determinism violation") == true)
        #expect(completion.steps == 0)
        #expect(try second.stats().timers == 0)
        #expect(try second.audit().isHealthy)
        await second.close()
    }
}
