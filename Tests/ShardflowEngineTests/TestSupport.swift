import Foundation
@testable import ShardflowEngine
import ShardflowJSON
import Testing

/// A temporary data directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("sf-engine-test-\(UUID().uuidString)").path
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

struct Count: Codable, Sendable { var steps: Int }

/// Workflows and steps the tests use.
func testRegistry() -> WorkflowRegistry {
    var registry = WorkflowRegistry()
    registry.registerStep("double", input: Int.self, output: Int.self) { value, _ in value * 2 }
    registry.registerStep("noop", input: Int.self, output: Int.self) { value, _ in value }
    registry.registerStep("fail", input: String.self, output: Int.self, retry: .atMostOnce) { message, _ in
        throw TestFailure(message: message)
    }
    registry.registerStep("flaky", input: Int.self, output: Int.self) { failures, context in
        if context.attempt <= failures { throw TestFailure(message: "attempt \(context.attempt) failed") }
        return context.attempt
    }
    registry.registerWorkflow("sequential", args: Int.self, result: Int.self) { ctx, value in
        let a = try await ctx.run("double", value, as: Int.self)
        let b = try await ctx.run("double", a, as: Int.self)
        return try await ctx.run("double", b, as: Int.self)
    }
    registry.registerWorkflow("noop", args: Count.self, result: Count.self) { ctx, args in
        for index in 0..<args.steps { _ = try await ctx.run("noop", index, as: Int.self) }
        return args
    }
    registry.registerWorkflow("parallel", args: Int.self, result: [Int].self) { ctx, value in
        async let a = ctx.run("double", value, as: Int.self)
        async let b = ctx.run("double", value + 1, as: Int.self)
        async let c = ctx.run("noop", value + 2, as: Int.self)
        let first = try await [a, b, c]
        let last = try await ctx.run("double", first.reduce(0, +), as: Int.self)
        return first + [last]
    }
    registry.registerWorkflow("failing", args: String.self, result: Int.self) { ctx, message in
        try await ctx.run("fail", message, as: Int.self)
    }
    registry.registerWorkflow("flaky", args: Int.self, result: Int.self) { ctx, failures in
        try await ctx.run("flaky", failures, as: Int.self,
                          retry: RetryPolicy(maxAttempts: 3, initialBackoff: .seconds(1), multiplier: 2, maxBackoff: .seconds(10), jitter: 0))
    }
    registry.registerWorkflow("sleeper", args: Int.self, result: Int64.self) { ctx, seconds in
        let before = ctx.now
        try await ctx.sleep(for: .seconds(seconds))
        return ctx.now - before
    }
    registry.registerWorkflow("waiter", args: Int.self, result: JSONValue.self) { ctx, timeoutSeconds in
        let value = try await ctx.waitForEvent("approval", timeout: timeoutSeconds > 0 ? .seconds(timeoutSeconds) : nil)
        return value ?? .string("timed out")
    }
    return registry
}

struct TestFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Builds inbound messages with increasing offsets.
struct MessageFactory {
    var shard = 0
    var nextWorkflowOffset: Int64 = 0
    var nextControlOffset: Int64 = 0
    var timestamp: Int64 = 1_795_900_000_000

    mutating func raw(_ value: [UInt8]?, key: String? = nil, stream: InboundMessage.Stream = .workflows,
                      partition: Int? = nil) -> InboundMessage {
        let offset: Int64
        switch stream {
        case .workflows: offset = nextWorkflowOffset; nextWorkflowOffset += 1
        case .control: offset = nextControlOffset; nextControlOffset += 1
        }
        return InboundMessage(stream: stream, topic: stream == .workflows ? "shardflow.workflows" : "shardflow.control",
                              partition: partition ?? shard, offset: offset, key: key.map { Array($0.utf8) },
                              value: value, timestamp: timestamp)
    }

    mutating func start(_ id: String, _ workflow: String, _ args: JSONValue, createdAt: Int64? = nil) -> InboundMessage {
        let message = StartMessage(workflowId: id, workflow: workflow, args: args, createdAt: createdAt)
        return raw(try? message.contractJSON(), key: id)
    }

    mutating func control(_ json: String, partition: Int? = nil) -> InboundMessage {
        raw(Array(json.utf8), stream: .control, partition: partition)
    }
}

/// Reads the outbox as a publisher would, acknowledging what it reads.
final class OutboxReader {
    let shard: Shard
    var completions: [String: [CompletionEvent]] = [:]
    var replays: [ReplayEvent] = []
    var controlResults: [ControlResult] = []
    var deadLetters: [DeadLetter] = []

    init(_ shard: Shard) { self.shard = shard }

    func drain() throws {
        while true {
            let records = try shard.pendingOutbox(limit: 1000)
            if records.isEmpty { return }
            for record in records {
                let data = Data(record.value)
                switch record.topic {
                case .completions:
                    let event = try JSONDecoder().decode(CompletionEvent.self, from: data)
                    completions[event.workflowId, default: []].append(event)
                case .replays: replays.append(try JSONDecoder().decode(ReplayEvent.self, from: data))
                case .controlResults: controlResults.append(try JSONDecoder().decode(ControlResult.self, from: data))
                case .deadLetters: deadLetters.append(try JSONDecoder().decode(DeadLetter.self, from: data))
                }
            }
            try shard.acknowledgeOutbox(ids: records.map(\.id))
        }
    }

    /// Drains until `count` distinct workflows completed (bounded so a bug fails instead of hanging).
    func waitForCompletions(_ count: Int, limit: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now.advanced(by: limit)
        while completions.count < count && ContinuousClock.now < deadline {
            try drain()
            if completions.count >= count { return }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}

/// Waits (bounded) until `condition` holds; the caller asserts the condition afterwards.
func eventually(limit: Duration = .seconds(20), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now.advanced(by: limit)
    while try !condition() && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(2))
    }
}
