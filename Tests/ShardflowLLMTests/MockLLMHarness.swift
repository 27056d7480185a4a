import AsyncHTTPClient
import Foundation
import ShardflowLLM
import ShardflowMockLLM

/// Starts a mock on an ephemeral port, hands a client pointed at it to `body`, then tears both down.
func withMockLLM<T: Sendable>(
    _ mock: MockLLMConfiguration = MockLLMConfiguration(port: 0, latencyMedian: .zero, latencyP99: .zero),
    client: AnthropicClientConfiguration = AnthropicClientConfiguration(
        requestTimeout: .seconds(5), maxRetries: 3, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(50)
    ),
    _ body: (MockLLMServer, AnthropicClient) async throws -> T
) async throws -> T {
    var mock = mock
    mock.port = 0
    let server = try MockLLMServer(configuration: mock)
    let port = try await server.start()
    var clientConfiguration = client
    clientConfiguration.baseURL = "http://127.0.0.1:\(port)"
    let llm = try AnthropicClient(configuration: clientConfiguration)
    do {
        let result = try await body(server, llm)
        try await llm.shutdown()
        await server.stop()
        return result
    } catch {
        try? await llm.shutdown()
        await server.stop()
        throw error
    }
}

let sampleRequest = LLMRequest(
    model: "claude-test", system: "You are terse.", prompt: "Summarize the shard journal in one line.", maxTokens: 256
)

/// Runs `operation` and returns its error as an `LLMError`, or nil if it succeeded or threw something else.
func llmError(_ operation: () async throws -> LLMCompletion) async -> LLMError? {
    do {
        _ = try await operation()
        return nil
    } catch let error as LLMError {
        return error
    } catch {
        return nil
    }
}
