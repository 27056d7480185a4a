import AsyncHTTPClient
import Foundation
import ShardflowLLM
import ShardflowMockLLM
import Testing

@Suite("Anthropic client against the mock LLM")
struct AnthropicClientTests {
    @Test("a call returns the text and token usage")
    func success() async throws {
        let (first, second) = try await withMockLLM { _, client in
            (try await client.complete(sampleRequest), try await client.complete(sampleRequest))
        }
        #expect(first.text.hasPrefix("Re: Summarize the shard journal in one | "))
        #expect(first.inputTokens > 5)
        #expect(first.outputTokens > 0)
        #expect(first.model == "claude-test")
        #expect(first.stopReason == "end_turn")
        #expect(first.attempts == 1)
        #expect(first.id.hasPrefix("msg_"))
        #expect(second.text == first.text, "the mock's text depends only on the prompt")
        #expect(second.id != first.id)
    }

    @Test("a 429 is retried no sooner than its retry-after")
    func retryAfterHonoured() async throws {
        let clock = ContinuousClock()
        let (completion, elapsed) = try await withMockLLM { server, client in
            try server.script([.status(429, retryAfter: "1")])
            let started = clock.now
            let completion = try await client.complete(sampleRequest)
            return (completion, clock.now - started)
        }
        #expect(completion.attempts == 2)
        // Correctness, not speed: the client must not come back before the server allowed it.
        #expect(elapsed >= .seconds(1))
    }

    @Test("529 overloaded is retried until it succeeds")
    func overloadedRetried() async throws {
        let (completion, stats) = try await withMockLLM { server, client in
            try server.script([.status(529), .status(529)])
            return (try await client.complete(sampleRequest), server.stats())
        }
        #expect(completion.attempts == 3)
        #expect(stats.overloaded == 2)
        #expect(stats.ok == 1)
        #expect(stats.requests == 3)
    }

    @Test("a timed-out attempt is retried and can then succeed")
    func timeoutThenSuccess() async throws {
        let client = AnthropicClientConfiguration(
            requestTimeout: .milliseconds(700), maxRetries: 3, initialBackoff: .milliseconds(10)
        )
        let (completion, stats) = try await withMockLLM(client: client) { server, client in
            try server.script([.success(after: .seconds(2))])
            return (try await client.complete(sampleRequest), server.stats())
        }
        // The first attempt cannot beat its 2 s delay; a loaded machine may need more than one retry.
        #expect(completion.attempts >= 2)
        #expect(stats.requests == completion.attempts)
    }

    @Test("attempts that all time out fail with a timeout error")
    func timeoutExhausted() async throws {
        let client = AnthropicClientConfiguration(
            requestTimeout: .milliseconds(200), maxRetries: 2, initialBackoff: .milliseconds(10)
        )
        let error = try await withMockLLM(client: client) { server, client in
            try server.script(Array(repeating: .success(after: .seconds(1)), count: 3))
            return await llmError { try await client.complete(sampleRequest) }
        }
        let failure = try #require(error)
        #expect(failure.kind == .timeout)
        #expect(failure.attempts == 3)
        #expect(failure.description.contains("timed out"))
    }

    @Test("exhausted retries report the last status, body and attempt count")
    func retriesExhausted() async throws {
        let client = AnthropicClientConfiguration(maxRetries: 2, initialBackoff: .milliseconds(5))
        let error = try await withMockLLM(client: client) { server, client in
            try server.script([.status(500), .status(503), .status(529)])
            return await llmError { try await client.complete(sampleRequest) }
        }
        let failure = try #require(error)
        #expect(failure.kind == .httpStatus)
        #expect(failure.status == 529)
        #expect(failure.attempts == 3)
        #expect(failure.bodyExcerpt?.contains("overloaded_error") == true)
        #expect(failure.description.contains("after 3 attempts: HTTP 529"))
        #expect(failure.description.contains("overloaded_error: Overloaded"))
    }

    @Test("the API key is sent as x-api-key; a rejected key fails at once and is never shown")
    func apiKey() async throws {
        let secret = "sk-test-secret-123"
        let mock = MockLLMConfiguration(port: 0, latencyMedian: .zero, latencyP99: .zero, requiredAPIKey: secret)
        let accepted = try await withMockLLM(
            mock, client: AnthropicClientConfiguration(apiKey: secret, maxRetries: 3, initialBackoff: .milliseconds(5))
        ) { _, client in try await client.complete(sampleRequest) }
        #expect(accepted.attempts == 1)

        let wrong = "sk-wrong-key-456"
        let (error, stats) = try await withMockLLM(
            mock, client: AnthropicClientConfiguration(apiKey: wrong, maxRetries: 3, initialBackoff: .milliseconds(5))
        ) { server, client in
            (await llmError { try await client.complete(sampleRequest) }, server.stats())
        }
        let failure = try #require(error)
        #expect(failure.status == 401)
        #expect(failure.attempts == 1, "4xx other than 429 is not retried")
        #expect(stats.unauthorized == 1)
        #expect(!failure.description.contains(wrong))
        #expect(!"\(AnthropicClientConfiguration(apiKey: wrong))".contains(wrong))
    }

    @Test("the mock's rate limit answers 429 with a retry-after")
    func rateLimit() async throws {
        let mock = MockLLMConfiguration(port: 0, latencyMedian: .zero, latencyP99: .zero, rateLimitRPM: 6)
        let client = AnthropicClientConfiguration(maxRetries: 0)
        let (errors, stats) = try await withMockLLM(mock, client: client) { server, client in
            var errors: [LLMError] = []
            for _ in 0..<3 {
                if let error = await llmError({ try await client.complete(sampleRequest) }) { errors.append(error) }
            }
            return (errors, server.stats())
        }
        // 6 per minute allows a burst of one, then one every 10 s: the next two are refused.
        #expect(errors.count == 2)
        #expect(errors.allSatisfy { $0.status == 429 })
        #expect(errors.first?.retryAfterSeconds.map { $0 >= 1 } == true)
        #expect(stats.rateLimited == errors.count)
        #expect(stats.ok == 3 - errors.count)
    }

    @Test("injected error rates produce 500 and 529")
    func injectedRates() async throws {
        let client = AnthropicClientConfiguration(maxRetries: 1, initialBackoff: .milliseconds(5))
        let always500 = MockLLMConfiguration(port: 0, latencyMedian: .zero, latencyP99: .zero, errorRate: 1)
        let error500 = try await withMockLLM(always500, client: client) { _, client in
            await llmError { try await client.complete(sampleRequest) }
        }
        #expect(error500?.status == 500)
        #expect(error500?.attempts == 2)
        let always529 = MockLLMConfiguration(port: 0, latencyMedian: .zero, latencyP99: .zero, overloadRate: 1)
        let error529 = try await withMockLLM(always529, client: client) { _, client in
            await llmError { try await client.complete(sampleRequest) }
        }
        #expect(error529?.status == 529)
    }

    @Test("a request the API would reject fails before any network call")
    func invalidRequest() async throws {
        let (error, stats) = try await withMockLLM { server, client in
            let bad = LLMRequest(model: "m", prompt: "hi", maxTokens: 0)
            return (await llmError { try await client.complete(bad) }, server.stats())
        }
        #expect(error?.kind == .invalidRequest)
        #expect(error?.attempts == 0)
        #expect(stats.requests == 0)
    }

    @Test("a response larger than maxResponseBytes fails at once as an invalid response, not retried")
    func oversizedResponse() async throws {
        // The mock echoes the prompt's first six words: six of 300 bytes make a body of about 2 KB.
        let longWords = Array(repeating: String(repeating: "a", count: 300), count: 6).joined(separator: " ")
        let (error, stats) = try await withMockLLM(
            client: AnthropicClientConfiguration(
                requestTimeout: .seconds(5), maxRetries: 3, initialBackoff: .milliseconds(10), maxResponseBytes: 1024
            )
        ) { server, client in
            (await llmError { try await client.complete(LLMRequest(model: "m", prompt: longWords, maxTokens: 64)) }, server.stats())
        }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.message.contains("larger than 1024 bytes") == true)
        #expect(error?.attempts == 1)
        #expect(stats.requests == 1)
    }

    @Test("a connection failure is retried, then reported as a connection error")
    func connectionRefused() async throws {
        // Bind and release a port so nothing listens on it.
        let server = try MockLLMServer(configuration: MockLLMConfiguration(port: 0))
        let port = try await server.start()
        await server.stop()
        let client = try AnthropicClient(
            configuration: AnthropicClientConfiguration(
                baseURL: "http://127.0.0.1:\(port)", requestTimeout: .milliseconds(500), maxRetries: 1,
                initialBackoff: .milliseconds(5)
            )
        )
        let error = await llmError { try await client.complete(sampleRequest) }
        try await client.shutdown()
        #expect(error?.kind == .transport || error?.kind == .timeout)
        #expect(error?.attempts == 2)
    }

    @Test("many slow calls run concurrently over the pool")
    func concurrentCalls() async throws {
        let mock = MockLLMConfiguration(port: 0, latencyMedian: .milliseconds(200), latencyP99: .milliseconds(400))
        let client = AnthropicClientConfiguration(maxRetries: 0, maxConcurrentConnections: 300)
        let (completions, stats) = try await withMockLLM(mock, client: client) { server, client in
            #expect(AnthropicClient.connectionsPerPool == 64)
            #expect(client.poolCount == 5, "300 connections are split over five pools of at most 64")
            let completions = try await withThrowingTaskGroup(of: LLMCompletion.self) { group in
                for i in 0..<300 {
                    group.addTask { try await client.complete(LLMRequest(model: "m", prompt: "call \(i)", maxTokens: 64)) }
                }
                return try await group.reduce(into: [LLMCompletion]()) { $0.append($1) }
            }
            return (completions, server.stats())
        }
        #expect(completions.count == 300)
        #expect(Set(completions.map(\.id)).count == 300)
        #expect(stats.ok == 300)
        #expect(stats.peakInFlight > 50, "slow requests overlap instead of queueing one by one")
        #expect(stats.inFlight == 0)
    }

    @Test("cancelling the caller stops the retries")
    func cancellation() async throws {
        let client = AnthropicClientConfiguration(maxRetries: 5, initialBackoff: .seconds(30), maxBackoff: .seconds(30))
        let outcome = try await withMockLLM(client: client) { server, client in
            try server.script([.status(529)])
            let call = Task { try await client.complete(sampleRequest) }
            // Let the first attempt fail so the call is waiting out its backoff.
            while server.stats().overloaded == 0 { try await Task.sleep(for: .milliseconds(10)) }
            call.cancel()
            return await call.result
        }
        switch outcome {
        case .success: Issue.record("a cancelled call completed")
        case .failure(let error): #expect(error is CancellationError)
        }
    }
}
