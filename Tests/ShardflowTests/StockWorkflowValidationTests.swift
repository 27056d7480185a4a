import Foundation
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowLLM
import Testing

/// Args that would make a stock workflow trap (a negative count) or run away (an absurd one) are refused at
/// ingest with the reason, before any code runs.
@Suite struct StockWorkflowValidationTests {
    struct NoLLM: LLMCompleting {
        func complete(_ request: LLMRequest) async throws -> LLMCompletion { throw CancellationError() }
    }

    @Test func absurdArgsAreDeadLetteredWithTheReason() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sf-stock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var registry = WorkflowRegistry()
        StockWorkflows.register(in: &registry, llm: NoLLM(), model: "m")
        let shard = try await Shard.open(directory: directory, shard: 0, registry: registry)
        let cases: [(String, String, JSONValue, String)] = [
            ("n1", "noop", .object(["steps": .int(-1)]), "steps must be between 0 and 1000, got -1"),
            ("n2", "noop", .object(["steps": .int(1_000_000_000)]), "steps must be between 0 and 1000"),
            ("n3", "noop", .object(["steps": .int(1), "stepDelayMs": .int(-5)]), "stepDelayMs must be between 0"),
            ("c1", "llm-chain", .object(["steps": .int(-3)]), "steps must be between 0 and 1000, got -3"),
            ("c2", "llm-chain", .object(["steps": .int(1), "maxTokens": .int(0)]), "maxTokens must be between 1"),
            ("f1", "fanout", .object(["branches": .int(-1)]), "branches must be between 0 and 100, got -1"),
            ("a1", "approval", .object(["timeoutSeconds": .int(-1)]), "timeoutSeconds must be between 0"),
            ("a2", "approval", .object(["event": .string("")]), "event must be 1 to 200 bytes"),
        ]
        let messages = try cases.enumerated().map { offset, item in
            InboundMessage(stream: .workflows, topic: "shardflow.workflows", partition: 0, offset: Int64(offset),
                           key: Array(item.0.utf8),
                           value: try StartMessage(workflowId: item.0, workflow: item.1, args: item.2).contractJSON(),
                           timestamp: 1_795_900_000_000)
        }
        let summary = try await shard.ingest(messages)
        #expect(summary.started == 0)
        #expect(summary.deadLetters == cases.count)
        let letters = try shard.pendingOutbox(limit: 100).map { try JSONDecoder().decode(DeadLetter.self, from: Data($0.value)) }
        for (letter, item) in zip(letters, cases) {
            #expect(letter.key == item.0)
            #expect(letter.error.contains("args do not match workflow \(item.1)"), "\(letter.error)")
            #expect(letter.error.contains(item.3), "\(item.0): \(letter.error)")
        }
        await shard.close()
    }
}

/// The LLM step's errors say whether the engine's retry policy applies.
@Suite struct LLMStepFailureTests {
    @Test func clientErrorsArePermanentAndServerErrorsRetryable() {
        func retryable(_ status: Int) -> Bool? {
            let error: any Error = LLMError(kind: .httpStatus, status: status, message: "", attempts: 1)
            return (error as? any StepFailureClassifying)?.isRetryable
        }
        #expect([400, 401, 403, 404].allSatisfy { retryable($0) == false })
        #expect([429, 500, 529].allSatisfy { retryable($0) == true })
    }
}
