import Foundation
import Synchronization
import Testing
@testable import ShardflowEngine

/// A gate steps wait at until the test opens it.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let openNow = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if openNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

@Suite struct ExecutorTests {
    @Test func bumpEpochLetsInFlightStepsFinishAndRecordThenClaimsNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let gate = Gate()
        var registry = testRegistry()
        registry.registerStep("slow", input: Int.self, output: Int.self) { value, _ in
            await gate.wait()
            return value
        }
        registry.registerWorkflow("slow", args: Int.self, result: Int.self) { ctx, value in
            let first = try await ctx.run("slow", value, as: Int.self)
            return try await ctx.run("noop", first, as: Int.self)
        }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: registry,
                                         configuration: ShardConfiguration(maxConcurrency: 5, claimLimit: 5))
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest((0..<8).map { factory.start("s-\($0)", "slow", .int(Int64($0))) })
        try await eventually { try shard.stats().runningTasks == 5 }
        #expect(try shard.stats().runningTasks == 5)
        let bumped = try await shard.bumpEpoch()
        #expect(bumped.epoch == 1)
        gate.open()
        // The 5 in-flight steps record; their next steps and the 3 never-claimed ones stay queued.
        try await eventually { try shard.stats().queuedTasks == 8 && shard.stats().runningTasks == 0 }
        let stats = try shard.stats()
        #expect(stats.queuedTasks == 8)
        #expect(stats.runningTasks == 0)
        #expect(stats.executorState == .stopped)
        let recorded = try (0..<8).filter { try shard.workflowDetail("s-\($0)")?.journal.first?.status == "succeeded" }
        #expect(recorded.count == 5)
        // New starts still queue while the executor is stopped.
        _ = try await shard.ingest([factory.start("s-late", "slow", .int(9))])
        try await eventually { try shard.stats().queuedTasks == 9 }
        #expect(try shard.stats().queuedTasks == 9)
        _ = try await shard.resumeExecutors()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(9)
        #expect(reader.completions.count == 9)
        #expect(try shard.audit().isHealthy)
        await shard.close()
    }

    @Test func aFullOutboxStopsClaimingUntilItDrains() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry(),
                                         configuration: ShardConfiguration(outboxHighWater: 5))
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest((0..<20).map { factory.start("o-\($0)", "noop", .object(["steps": .int(3)])) })
        // Nobody publishes: the shard settles with work queued and the outbox above the bound.
        try await eventually {
            let stats = try shard.stats()
            return stats.runningTasks == 0 && stats.replayQueueDepth == 0 && stats.queuedTasks > 0
        }
        let stalled = try shard.stats()
        #expect(stalled.queuedTasks > 0)
        #expect(stalled.outboxDepth > 5)
        #expect(stalled.workflowsByStatus["running", default: 0] > 0)
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(20)
        #expect(reader.completions.count == 20)
        await shard.close()
    }
}
