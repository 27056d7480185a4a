import Foundation
import ShardflowJSON
import Testing
@testable import ShardflowEngine

/// Deploying new workflow code under workflows in flight: patches, versions, and parking.
@Suite struct DeployTests {
    struct Path: Codable, Sendable, Equatable { var path: String; var version: Int }

    /// Release 1: a step, a wait for `go`, a step. Release 2 adds a step behind `patched("extra")`;
    /// release 3 deletes the old branch and keeps `deprecatePatch("extra")`; release 4 deletes that call.
    static func release(_ number: Int, cache: Int = 20_000) -> WorkflowRegistry {
        var registry = testRegistry()
        registry.registerWorkflow("evolving", args: Int.self, result: Path.self) { ctx, value in
            _ = try await ctx.run("double", value, as: Int.self)
            var takesNew = false
            switch number {
            case 2: takesNew = ctx.patched("extra")
            case 3: ctx.deprecatePatch("extra"); takesNew = true
            case 4...: takesNew = true
            default: break
            }
            if takesNew { _ = try await ctx.run("noop", value, as: Int.self) }
            _ = try await ctx.waitForEvent("go")
            _ = try await ctx.run("double", value, as: Int.self)
            // Asked again, the answer stays.
            if number == 2 && ctx.patched("extra") != takesNew { throw TestFailure(message: "patched changed its answer") }
            return Path(path: takesNew ? "new" : "old", version: ctx.workflowVersion)
        }
        return registry
    }

    static func open(_ directory: TemporaryDirectory, _ registry: WorkflowRegistry,
                     configure: (inout ShardConfiguration) -> Void = { _ in }) async throws -> Shard {
        var configuration = ShardConfiguration()
        configure(&configuration)
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: registry, configuration: configuration)
        try shard.start()
        return shard
    }

    @Test("patched: a history that passed the patch point keeps the old branch, a new run takes the new one and journals a marker",
          arguments: [0, 20_000])
    func patchedKeepsInFlightWorkflowsOnTheOldPath(cache: Int) async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var factory = MessageFactory()
        let v1 = try await Self.open(directory, Self.release(1)) { $0.executionCacheCapacity = cache }
        _ = try await v1.ingest([factory.start("old-1", "evolving", .int(1))])
        try await eventually { try v1.stats().eventWaits == 1 }
        #expect(try v1.stats().eventWaits == 1)
        await v1.close()

        let v2 = try await Self.open(directory, Self.release(2)) { $0.executionCacheCapacity = cache }
        _ = try await v2.ingest([factory.start("new-1", "evolving", .int(2))])
        try await eventually { try v2.stats().eventWaits == 2 }
        _ = try await v2.deliverEvent(workflowId: "old-1", name: "go", value: .null)
        _ = try await v2.deliverEvent(workflowId: "new-1", name: "go", value: .null)
        let reader = OutboxReader(v2)
        try await reader.waitForCompletions(2)
        #expect(reader.completions["old-1"]?.first?.result == .object(["path": .string("old"), "version": .int(1)]))
        #expect(reader.completions["new-1"]?.first?.result == .object(["path": .string("new"), "version": .int(1)]))
        #expect(reader.completions["new-1"]?.first?.steps == 3)
        let newJournal = try #require(try v2.workflowDetail("new-1")).journal
        #expect(newJournal.filter { $0.kind == "patch" }.map(\.name) == ["extra"])
        #expect(newJournal.first { $0.kind == "patch" }?.stepId == -1)
        #expect(newJournal.filter { $0.kind == "step" }.map(\.stepId) == [1, 2, 4])
        #expect(try #require(try v2.workflowDetail("old-1")).journal.allSatisfy { $0.kind != "patch" })
        #expect(reader.replays.allSatisfy { $0.outcome != .parked })
        #expect(try v2.audit().isHealthy)
        await v2.close()
    }

    @Test("deprecatePatch keeps recording the marker for workers of the previous deploy; deleting it later shifts nothing")
    func deprecatedPatchesRetireWithoutShiftingOperations() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var factory = MessageFactory()
        // Started on release 2 (new branch, marker), continued on release 3, finished on release 4.
        let v2 = try await Self.open(directory, Self.release(2))
        _ = try await v2.ingest([factory.start("a", "evolving", .int(1))])
        try await eventually { try v2.stats().eventWaits == 1 }
        await v2.close()
        let v3 = try await Self.open(directory, Self.release(3))
        _ = try await v3.ingest([factory.start("b", "evolving", .int(1))])
        try await eventually { try v3.stats().eventWaits == 2 }
        #expect(try #require(try v3.workflowDetail("b")).journal.filter { $0.kind == "patch" }.map(\.name) == ["extra"])
        await v3.close()
        let v4 = try await Self.open(directory, Self.release(4))
        _ = try await v4.deliverEvent(workflowId: "a", name: "go", value: .null)
        _ = try await v4.deliverEvent(workflowId: "b", name: "go", value: .null)
        let reader = OutboxReader(v4)
        try await reader.waitForCompletions(2)
        for id in ["a", "b"] {
            #expect(reader.completions[id]?.first?.status == .succeeded, "\(String(describing: reader.completions[id]))")
            #expect(reader.completions[id]?.first?.result == .object(["path": .string("new"), "version": .int(1)]))
        }
        #expect(try v4.stats().parkedWorkflows == 0)
        await v4.close()
    }

    @Test("a determinism violation parks the workflow (journal intact, not stuck); a rollback runs it on")
    func violationParksAndRollbackResumes() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var unsafe = testRegistry()
        unsafe.registerWorkflow("evolving", args: Int.self, result: Path.self) { ctx, value in
            _ = try await ctx.run("double", value, as: Int.self)
            _ = try await ctx.run("noop", value, as: Int.self)  // added without a patch
            _ = try await ctx.waitForEvent("go")
            _ = try await ctx.run("double", value, as: Int.self)
            return Path(path: "unsafe", version: ctx.workflowVersion)
        }
        var factory = MessageFactory()
        let v1 = try await Self.open(directory, Self.release(1))
        _ = try await v1.ingest([factory.start("w", "evolving", .int(1))])
        try await eventually { try v1.stats().eventWaits == 1 }
        await v1.close()

        let bad = try await Self.open(directory, unsafe)
        _ = try await bad.deliverEvent(workflowId: "w", name: "go", value: .null)
        try await eventually { try bad.stats().parkedWorkflows == 1 }
        let stats = try bad.stats()
        #expect(stats.parkedWorkflows == 1)
        #expect(stats.workflowsByStatus["running"] == 1)
        let audit = try bad.audit()
        #expect(audit.stuckWorkflows.isEmpty)
        #expect(audit.isHealthy)
        #expect(audit.parkedWorkflows.map(\.workflowId) == ["w"])
        #expect(audit.parkedWorkflows.first?.reason.contains("determinism violation: operation 2") == true)
        let detail = try #require(try bad.workflowDetail("w"))
        #expect(detail.parkedReason?.contains("determinism violation") == true)
        #expect(detail.journal.map(\.status) == ["succeeded", "received"])
        let reader = OutboxReader(bad)
        try reader.drain()
        #expect(reader.completions.isEmpty)
        let parked = try #require(reader.replays.last)
        #expect(parked.outcome == .parked)
        #expect(parked.parkedReason?.contains("determinism violation") == true)
        // The same bad code after a restart: tried again at open, parked again, nothing else written.
        await bad.close()
        let again = try await Self.open(directory, unsafe)
        try await eventually { try OutboxReader(again).replaysAfterDrain().contains { $0.trigger == .unpark } }
        #expect(try again.stats().parkedWorkflows == 1)
        await again.close()

        let rollback = try await Self.open(directory, Self.release(1))
        let after = OutboxReader(rollback)
        try await after.waitForCompletions(1)
        #expect(after.completions["w"]?.first?.status == .succeeded)
        #expect(after.completions["w"]?.first?.result == .object(["path": .string("old"), "version": .int(1)]))
        #expect(after.replays.first?.trigger == .unpark)
        let resumed = try #require(try rollback.workflowDetail("w"))
        #expect(resumed.parkedReason == nil)
        #expect(resumed.parkedAt != nil)
        #expect(try rollback.stats().parkedWorkflows == 0)
        #expect(try rollback.audit().isHealthy)
        await rollback.close()
    }

    @Test("versions: a start names one or gets the newest, keeps it, and one this worker lacks is parked until a worker has it")
    func versionsAreKeptAndMissingOnesPark() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        func registry(versions: [Int]) -> WorkflowRegistry {
            var registry = testRegistry()
            for version in versions {
                registry.registerWorkflow("summarize", version: version, args: Int.self, result: Path.self) { ctx, value in
                    _ = try await ctx.run("double", value, as: Int.self)
                    return Path(path: "v\(version)", version: ctx.workflowVersion)
                }
            }
            return registry
        }
        var factory = MessageFactory()
        func start(_ id: String, version: Int?) -> InboundMessage {
            factory.raw(try? StartMessage(workflowId: id, workflow: "summarize", args: .int(1), version: version).contractJSON(), key: id)
        }
        let old = try await Self.open(directory, registry(versions: [1]))
        _ = try await old.ingest([start("plain-1", version: nil), start("early-2", version: 2)])
        let oldReader = OutboxReader(old)
        try await oldReader.waitForCompletions(1)
        #expect(oldReader.completions["plain-1"]?.first?.result == .object(["path": .string("v1"), "version": .int(1)]))
        try await eventually { try old.stats().parkedWorkflows == 1 }
        let early = try #require(try old.workflowDetail("early-2"))
        #expect(early.version == 2)
        #expect(early.parkedReason == "workflow summarize version 2 is not registered in this worker (it has version 1)")
        #expect(try old.audit().stuckWorkflows.isEmpty)
        await old.close()

        let new = try await Self.open(directory, registry(versions: [1, 2]))
        _ = try await new.ingest([start("plain-2", version: nil), start("pinned-1", version: 1)])
        let reader = OutboxReader(new)
        try await reader.waitForCompletions(3)
        #expect(reader.completions["early-2"]?.first?.result == .object(["path": .string("v2"), "version": .int(2)]))
        #expect(reader.completions["plain-2"]?.first?.result == .object(["path": .string("v2"), "version": .int(2)]))
        #expect(reader.completions["pinned-1"]?.first?.result == .object(["path": .string("v1"), "version": .int(1)]))
        #expect(try new.workflowDetail("plain-2")?.version == 2)
        #expect(reader.replays.filter { $0.workflowId == "plain-2" }.allSatisfy { $0.version == 2 })
        #expect(try new.stats().parkedWorkflows == 0)
        await new.close()
    }

    @Test("a claimed step this worker does not have parks its task and workflow; a worker that has it runs it")
    func unregisteredStepsPark() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var full = testRegistry()
        full.registerStep("special", input: Int.self, output: Int.self) { value, _ in value + 100 }
        full.registerWorkflow("special", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.run("special", value, as: Int.self)
        }
        var lacking = testRegistry()
        lacking.registerWorkflow("special", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.run("special", value, as: Int.self)
        }
        var factory = MessageFactory()
        // The task is queued by a worker that has the step, with its executor stopped.
        let first = try await Self.open(directory, full)
        _ = try await first.bumpEpoch()
        _ = try await first.ingest([factory.start("s", "special", .int(1))])
        try await eventually { try first.stats().queuedTasks == 1 }
        await first.close()

        let second = try await Self.open(directory, lacking)
        _ = try await second.resumeExecutors()
        try await eventually { try second.stats().parkedWorkflows == 1 }
        let detail = try #require(try second.workflowDetail("s"))
        #expect(detail.parkedReason == "step special is not registered in this worker (step 1)")
        #expect(detail.pendingTasks.map(\.state) == ["parked"])
        #expect(detail.pendingTasks.first?.attempt == 0)
        #expect(try second.stats().queuedTasks == 0)
        #expect(try second.audit().isHealthy)
        // Reopened by the same code: the step stays parked, and so does the workflow (the body asks for
        // the step it lacks).
        await second.close()
        let third = try await Self.open(directory, lacking)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try third.workflowDetail("s")?.pendingTasks.map(\.state) == ["parked"])
        #expect(try third.stats().parkedWorkflows == 1)
        await third.close()

        let fixed = try await Self.open(directory, full)
        let reader = OutboxReader(fixed)
        try await reader.waitForCompletions(1)
        #expect(reader.completions["s"]?.first?.result == .int(101))
        #expect(try fixed.workflowDetail("s")?.journal.first?.attempts == 1)
        #expect(try fixed.stats().parkedWorkflows == 0)
        await fixed.close()
    }

    @Test("a body asking for a step this worker lacks is parked even if it catches the error")
    func bodyAskingForAnUnregisteredStepParks() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var registry = testRegistry()
        registry.registerWorkflow("careless", args: Int.self, result: Int.self) { ctx, value in
            do { return try await ctx.run("missing", value, as: Int.self) } catch { return -1 }
        }
        var factory = MessageFactory()
        let shard = try await Self.open(directory, registry)
        _ = try await shard.ingest([factory.start("c", "careless", .int(1))])
        try await eventually { try shard.stats().parkedWorkflows == 1 }
        #expect(try shard.workflowDetail("c")?.parkedReason == "step missing is not registered in this worker")
        let reader = OutboxReader(shard)
        try reader.drain()
        #expect(reader.completions.isEmpty)
        await shard.close()
    }

    @Test("failParkedWorkflows fails one named parked workflow, or every parked one of the shard, answered on control-results")
    func operatorFailsParkedWorkflows() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var factory = MessageFactory()
        let shard = try await Self.open(directory, testRegistry())
        func start(_ id: String) -> InboundMessage {
            factory.raw(try? StartMessage(workflowId: id, workflow: "noop", args: .object(["steps": .int(1)]), version: 9).contractJSON(), key: id)
        }
        _ = try await shard.ingest([start("p1"), start("p2"), start("p3")])
        try await eventually { try shard.stats().parkedWorkflows == 3 }
        _ = try await shard.ingest([
            factory.control(#"{"type":"failParkedWorkflows","shard":0,"commandId":"one","workflowId":"p2","reason":"bad deploy"}"#),
            factory.control(#"{"type":"failParkedWorkflows","shard":0,"commandId":"bad","workflowId":"not valid!"}"#),
        ])
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(1)
        #expect(reader.completions.keys.sorted() == ["p2"])
        let failed = try #require(reader.completions["p2"]?.first)
        #expect(failed.status == .failed)
        #expect(failed.error?.message == "failed by operator while parked: bad deploy (parked because: workflow noop version 9 is not registered in this worker (it has version 1))")
        let one = try #require(reader.controlResults.first { $0.commandId == "one" })
        #expect(one.status == .applied)
        #expect(one.affected.workflows == 1)
        let bad = try #require(reader.controlResults.first { $0.commandId == "bad" })
        #expect(bad.status == .rejected)
        #expect(bad.error?.contains("workflowId") == true)
        _ = try await shard.ingest([factory.control(#"{"type":"failParkedWorkflows","shard":0,"commandId":"all"}"#)])
        try await reader.waitForCompletions(3)
        #expect(reader.completions.keys.sorted() == ["p1", "p2", "p3"])
        #expect(reader.controlResults.first { $0.commandId == "all" }?.affected.workflows == 2)
        #expect(try shard.stats().parkedWorkflows == 0)
        #expect(try shard.audit().isHealthy)
        await shard.close()
    }

    @Test("a step whose result is journaled replays without its code: a deploy may drop a step running workflows already ran")
    func journaledStepsNeedNoDefinition() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        func registry(withStep: Bool) -> WorkflowRegistry {
            var registry = testRegistry()
            if withStep { registry.registerStep("retired", input: Int.self, output: Int.self) { value, _ in value + 1 } }
            registry.registerWorkflow("uses-retired", args: Int.self, result: Int.self) { ctx, value in
                let first = try await ctx.run("retired", value, as: Int.self)
                _ = try await ctx.waitForEvent("go")
                return try await ctx.run("double", first, as: Int.self)
            }
            return registry
        }
        var factory = MessageFactory()
        let before = try await Self.open(directory, registry(withStep: true))
        _ = try await before.ingest([factory.start("r", "uses-retired", .int(1))])
        try await eventually { try before.stats().eventWaits == 1 }
        await before.close()
        let after = try await Self.open(directory, registry(withStep: false))
        _ = try await after.deliverEvent(workflowId: "r", name: "go", value: .null)
        let reader = OutboxReader(after)
        try await reader.waitForCompletions(1)
        #expect(reader.completions["r"]?.first?.result == .int(4))
        #expect(reader.replays.allSatisfy { $0.outcome != .parked })
        await after.close()
    }

    @Test("parking sets the workflow's queued steps aside; the next open queues them again")
    func parkingSetsQueuedStepsAside() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var v1 = testRegistry()
        v1.registerWorkflow("branches", args: Int.self, result: Int.self) { ctx, value in
            async let doubled = ctx.run("double", value, as: Int.self)
            async let go = ctx.waitForEvent("go")
            _ = try await go
            return try await doubled
        }
        var unsafe = testRegistry()
        unsafe.registerWorkflow("branches", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.run("noop", value, as: Int.self)  // operation 1 was a double: a violation
        }
        var factory = MessageFactory()
        let first = try await Self.open(directory, v1)
        _ = try await first.bumpEpoch()  // the step stays queued
        _ = try await first.ingest([factory.start("b", "branches", .int(5))])
        try await eventually { try first.stats().queuedTasks == 1 && first.stats().eventWaits == 1 }
        await first.close()
        let bad = try await Self.open(directory, unsafe)
        _ = try await bad.deliverEvent(workflowId: "b", name: "go", value: .null)
        try await eventually { try bad.stats().parkedWorkflows == 1 }
        #expect(try bad.workflowDetail("b")?.pendingTasks.map(\.state) == ["parked"])
        #expect(try bad.stats().queuedTasks == 0)
        await bad.close()
        let rollback = try await Self.open(directory, v1)
        _ = try await rollback.resumeExecutors()
        let reader = OutboxReader(rollback)
        try await reader.waitForCompletions(1)
        #expect(reader.completions["b"]?.first?.result == .int(10))
        await rollback.close()
    }

    @Test("a start parked for an unknown version has its args checked by that version before its body runs")
    func argsOfParkedStartsAreValidated() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var old = testRegistry()
        old.registerWorkflow("positive", version: 1, args: Int.self, result: Int.self) { _, value in value }
        var new = old
        new.registerWorkflow("positive", version: 2, args: Int.self, result: Int.self,
                             validate: { try InvalidArgs.require("value", $0, in: 1...100) }) { _, value in value }
        var factory = MessageFactory()
        let first = try await Self.open(directory, old)
        _ = try await first.ingest([factory.raw(try? StartMessage(workflowId: "neg", workflow: "positive", args: .int(-1), version: 2).contractJSON(), key: "neg")])
        try await eventually { try first.stats().parkedWorkflows == 1 }
        await first.close()
        let second = try await Self.open(directory, new)
        let reader = OutboxReader(second)
        try await reader.waitForCompletions(1)
        let failed = try #require(reader.completions["neg"]?.first)
        #expect(failed.status == .failed)
        #expect(failed.error?.message == "args do not match workflow positive version 2: value must be between 1 and 100, got -1")
        #expect(try second.stats().parkedWorkflows == 0)
        await second.close()
    }

    @Test("a start's version must be an integer from 1 to 1000000")
    func invalidVersionsAreDeadLettered() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var factory = MessageFactory()
        let shard = try await Self.open(directory, testRegistry())
        _ = try await shard.ingest([
            factory.raw(Array(#"{"type":"start","workflowId":"v0","workflow":"noop","args":{},"version":0}"#.utf8), key: "v0"),
            factory.raw(Array(#"{"type":"start","workflowId":"vs","workflow":"noop","args":{},"version":"2"}"#.utf8), key: "vs"),
        ])
        let reader = OutboxReader(shard)
        try reader.drain()
        #expect(reader.deadLetters.map(\.error) == Array(repeating: "field version must be an integer from 1 to 1000000", count: 2))
        await shard.close()
    }
}

extension OutboxReader {
    /// The replay events read so far, after draining the outbox.
    func replaysAfterDrain() throws -> [ReplayEvent] {
        try drain()
        return replays
    }
}
