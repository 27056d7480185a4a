import Foundation
@testable import ShardflowEngine
import ShardflowJSON
import Testing

/// Kept workflow bodies (the sticky cache): the journal stays the truth, so a run with the cache
/// publishes what a run without it publishes, and every way of losing a kept body ends in a replay.
@Suite struct ExecutionCacheTests {
    /// What one workflow published, without the shard-wide event ids (those depend on interleaving).
    struct Published: Equatable {
        var status: CompletionStatus
        var result: JSONValue?
        var steps: Int
        var replays: [String]
    }

    func runMix(cacheCapacity: Int) async throws -> (published: [String: Published], counters: ExecutionCache.Counters) {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // One step at a time, so every result is its own round in both runs.
        let configuration = ShardConfiguration(maxConcurrency: 1, claimLimit: 1, executionCacheCapacity: cacheCapacity)
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry(),
                                         configuration: configuration)
        var factory = MessageFactory()
        var starts = (0..<3).map { factory.start("seq-\($0)", "sequential", .int($0)) }
        starts += (0..<3).map { factory.start("par-\($0)", "parallel", .int($0)) }
        starts += (0..<3).map { factory.start("noop-\($0)", "noop", .object(["steps": .int(4)])) }
        starts.append(factory.start("fail-0", "failing", .string("boom")))
        _ = try await shard.ingest(starts)
        try shard.start()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(starts.count)
        #expect(try shard.audit().isHealthy)
        let counters = shard.replayer.cacheCounters
        await shard.close()
        var published: [String: Published] = [:]
        for (id, events) in reader.completions {
            #expect(events.count == 1)
            guard let completion = events.first else { continue }
            let replays = reader.replays.filter { $0.workflowId == id }.map { event in
                "g\(event.generation) \(event.trigger) consumed \(event.consumed.map { "\($0.stepId):\($0.name):\($0.status)" }) "
                    + "scheduled \(event.scheduled.map { "\($0.stepId):\($0.name)" }) \(event.outcome)"
            }
            published[id] = Published(status: completion.status, result: completion.result, steps: completion.steps,
                                      replays: replays)
        }
        return (published, counters)
    }

    @Test func keptBodiesPublishExactlyWhatReplaysFromTheJournalPublish() async throws {
        let replayed = try await runMix(cacheCapacity: 0)
        let kept = try await runMix(cacheCapacity: 100)
        #expect(replayed.published.count == 10)
        #expect(kept.published == replayed.published)
        #expect(replayed.counters.hits == 0)
        #expect(kept.counters.hits > 0)
        #expect(replayed.published["fail-0"]?.status == .failed)
        #expect(replayed.published["par-1"]?.result == .array([.int(2), .int(4), .int(3), .int(18)]))
    }

    @Test func evictedBodiesAreReplayedFromTheJournal() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry(),
                                         configuration: ShardConfiguration(executionCacheCapacity: 2))
        var factory = MessageFactory()
        _ = try await shard.ingest((0..<30).map { factory.start("ev-\($0)", "noop", .object(["steps": .int(4)])) })
        try shard.start()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(30)
        let counters = shard.replayer.cacheCounters
        #expect(counters.evictions > 0)
        #expect(counters.misses > 30)  // every start, plus the evicted ones
        #expect(shard.replayer.cachedExecutions <= 2)
        #expect(reader.completions.count == 30)
        #expect(reader.completions.values.allSatisfy { $0.count == 1 && $0[0].status == .succeeded && $0[0].steps == 4 })
        #expect(try shard.audit().isHealthy)
        await shard.close()
        #expect(shard.replayer.cachedExecutions == 0)
    }

    @Test func aStopWithKeptBodiesLosesNothingAndTheReopenedShardReplays() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var factory = MessageFactory()
        var completions: [String: Int] = [:]
        var generations: [String: [Int]] = [:]
        func collect(_ reader: OutboxReader) {
            for (id, events) in reader.completions { completions[id, default: 0] += events.count }
            for event in reader.replays { generations[event.workflowId, default: []].append(event.generation) }
        }

        let first = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        _ = try await first.ingest((0..<20).map { factory.start("kept-\($0)", "noop", .object(["steps": .int(6)])) })
        try first.start()
        try await eventually { first.replayer.cachedExecutions > 0 }
        #expect(first.replayer.cachedExecutions > 0)
        let firstReader = OutboxReader(first)
        try firstReader.drain()
        await first.close(drainTimeout: .zero)
        #expect(first.replayer.cachedExecutions == 0)
        collect(firstReader)

        let second = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        try second.start()
        let secondReader = OutboxReader(second)
        try await secondReader.waitForCompletions(20 - completions.count)
        collect(secondReader)
        #expect(second.replayer.cacheCounters.misses > 0)
        #expect(completions.count == 20)
        #expect(completions.values.allSatisfy { $0 == 1 })
        // No generation published twice or skipped: the kept bodies' progress was all in the journal.
        #expect(generations.values.allSatisfy { $0 == Array(1...$0.count) })
        #expect(try second.audit().isHealthy)
        #expect(try second.stats().workflowsByStatus == ["succeeded": 20])
        await second.close()
    }

    func waitingExecution(_ id: String) -> WorkflowExecution {
        let registry = testRegistry()
        let definition = registry.workflows["sequential"]!
        let context = WorkflowContext(workflowId: id, workflowName: "sequential", registry: registry,
                                      defaultRetry: .standard, journal: [], startedAt: 0)
        let execution = WorkflowExecution(definition: definition, context: context, args: "1")
        guard case .waiting(let commands) = execution.replay(rounds: [], hasPendingEntries: false) else {
            Issue.record("the body should wait for its first step")
            return execution
        }
        #expect(commands.count == 1)
        return execution
    }

    func entry(_ execution: WorkflowExecution, _ id: String, createdAt: Int64 = 0) -> ExecutionCache.Entry {
        ExecutionCache.Entry(execution: execution,
                             workflow: WorkflowRow(id: id, name: "sequential", args: "1", createdAt: createdAt, startedAt: 0,
                                                         status: .running, generation: 1, version: 1),
                             generation: 1)
    }

    @Test func aFullCacheKeepsTheEarliestCreatedBodiesTheFifoQueueNeedsFirst() async throws {
        let cache = ExecutionCache(capacity: 2)
        let a = waitingExecution("a"), b = waitingExecution("b"), c = waitingExecution("c"), d = waitingExecution("d")
        cache.keep([("a", entry(a, "a", createdAt: 10)), ("b", entry(b, "b", createdAt: 20))])
        // Newer than every kept one: it would run last, so it is the one dropped.
        cache.keep([("c", entry(c, "c", createdAt: 30))])
        #expect(c.isFinished)
        #expect(!a.isFinished && !b.isFinished)
        // Older than "b": "b" makes room, however recently it was kept.
        let taken = try #require(cache.take("b"))
        cache.keep([("b", taken)])
        cache.keep([("d", entry(d, "d", createdAt: 15))])
        #expect(b.isFinished)
        #expect(!a.isFinished && !d.isFinished)
        #expect(cache.count == 2)
        #expect(cache.counters.evictions == 2)
        #expect(cache.take("a") != nil && cache.take("d") != nil)
        cache.removeAll()
        a.terminate()
        d.terminate()
    }

    @Test func startsArrivingFasterThanWorkflowsFinishDoNotPushOutTheBodiesNeededNext() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // Room for 50 bodies, 10 slots, and new starts keep arriving while a backlog waits: 600 workflows of
        // 4 steps. Each start's first run offers a body to a full cache.
        let configuration = ShardConfiguration(maxConcurrency: 10, claimLimit: 10, executionCacheCapacity: 50)
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry(),
                                         configuration: configuration)
        var factory = MessageFactory()
        var submitted = 0
        func submit(_ count: Int) async throws {
            _ = try await shard.ingest((submitted..<submitted + count).map {
                factory.start("many-\($0)", "noop", .object(["steps": .int(4)]))
            })
            submitted += count
        }
        try await submit(100)
        try shard.start()
        let reader = OutboxReader(shard)
        for round in 1...10 {
            try await submit(50)
            try await reader.waitForCompletions(30 * round)
        }
        try await reader.waitForCompletions(600)
        let counters = shard.replayer.cacheCounters
        // 600 first runs and 2,400 results: a workflow whose body was dropped while it waited misses once,
        // and from then on its body is kept while it runs (a cache that dropped running bodies would miss on
        // most of the 2,400).
        #expect(counters.misses < 1_500, "hits \(counters.hits), misses \(counters.misses)")
        #expect(counters.hits > 1_500, "hits \(counters.hits), misses \(counters.misses)")
        #expect(reader.completions.count == 600)
        #expect(reader.completions.values.allSatisfy { $0.count == 1 && $0[0].status == .succeeded && $0[0].steps == 4 })
        #expect(try shard.audit().isHealthy)
        await shard.close()
    }

    @Test func theCacheEvictsTheLeastRecentlyKeptAndEndsWhatItDrops() async throws {
        let cache = ExecutionCache(capacity: 2)
        let a = waitingExecution("a"), b = waitingExecution("b"), c = waitingExecution("c")
        cache.keep([("a", entry(a, "a")), ("b", entry(b, "b"))])
        // Taking and keeping again makes "a" the most recent, so "b" goes first.
        let taken = try #require(cache.take("a"))
        cache.keep([("a", taken)])
        cache.keep([("c", entry(c, "c"))])
        #expect(cache.count == 2)
        #expect(cache.counters.evictions == 1)
        #expect(b.isFinished)
        #expect(!a.isFinished && !c.isFinished)
        #expect(cache.take("b") == nil)
        cache.evict("c")
        #expect(c.isFinished)
        cache.removeAll()
        #expect(a.isFinished)
        #expect(cache.count == 0)
    }

    @Test func aResumedBodyContinuesWhereItWaited() async throws {
        let execution = waitingExecution("r")
        let first = JournalEntry(seq: 1, kind: .step, name: "double", status: .succeeded, output: "2", error: nil,
                                 attempts: 1, round: 2, completedAt: 10)
        guard case .waiting(let commands) = execution.resume(with: [first]) else {
            Issue.record("the body should wait for its second step")
            return
        }
        #expect(commands == [.step(seq: 2, name: "double", input: "2", retry: .standard)])
        #expect(execution.context.now == 10)
        execution.terminate()
        #expect(execution.isFinished)
    }
}
