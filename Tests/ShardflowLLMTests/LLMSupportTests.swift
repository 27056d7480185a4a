import Foundation
import ShardflowLLM
import ShardflowSupport
import Testing

@Suite("LLM support")
struct LLMSupportTests {
    @Test("durations parse with units and reject the rest")
    func durations() {
        #expect(parseDuration("1s") == .seconds(1))
        #expect(parseDuration("250ms") == .milliseconds(250))
        #expect(parseDuration("2.5s") == .milliseconds(2_500))
        #expect(parseDuration("2m") == .seconds(120))
        #expect(parseDuration("1h") == .seconds(3_600))
        #expect(parseDuration("7d") == .seconds(604_800))
        #expect(parseDuration("0") == .zero)
        #expect(parseDuration(" 4s ") == .seconds(4))
        for bad in ["", "s", "10", "-1s", "1.2.3s", "1w", "abc", "1e3ms", "nan s"] {
            #expect(parseDuration(bad) == nil, "\(bad) should not parse")
        }
    }

    @Test("retry-after is read as seconds or as an HTTP date")
    func retryAfter() throws {
        #expect(RetryAfterHeader.parse("3") == .seconds(3))
        #expect(RetryAfterHeader.parse("0.5") == .milliseconds(500))
        #expect(RetryAfterHeader.parse("-1") == nil)
        #expect(RetryAfterHeader.parse("soon") == nil)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let later = RetryAfterHeader.format(now.addingTimeInterval(30))
        let parsed = try #require(RetryAfterHeader.parse(later, now: now))
        #expect(parsed == .seconds(30))
        #expect(RetryAfterHeader.parse(RetryAfterHeader.format(now.addingTimeInterval(-60)), now: now) == .zero)
        #expect(RetryAfterHeader.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: Date(timeIntervalSince1970: 784_111_777)) == .zero)
    }

    @Test("backoff grows exponentially with jitter, is capped, and honours retry-after")
    func backoff() {
        let policy = RetryBackoff(initial: .milliseconds(100), maximum: .seconds(1), maxRetryAfter: .seconds(10))
        func close(_ a: Duration, _ b: Duration) -> Bool { abs((a - b).timeInterval) < 1e-9 }
        #expect(close(policy.delay(afterAttempt: 1, retryAfter: nil, unitRandom: 0), .milliseconds(50)))
        #expect(close(policy.delay(afterAttempt: 1, retryAfter: nil, unitRandom: 1), .milliseconds(100)))
        #expect(close(policy.delay(afterAttempt: 3, retryAfter: nil, unitRandom: 1), .milliseconds(400)))
        #expect(close(policy.delay(afterAttempt: 30, retryAfter: nil, unitRandom: 1), .seconds(1)))
        for u in [0.0, 0.5, 0.99] {
            #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(2), unitRandom: u) >= .seconds(2))
        }
        #expect(close(policy.delay(afterAttempt: 1, retryAfter: .seconds(3_600), unitRandom: 0), .seconds(10)))
    }

    @Test("client settings are checked, and the environment supplies URL and key")
    func clientConfiguration() throws {
        let env = ["SHARDFLOW_LLM_BASE_URL": "http://127.0.0.1:8080/", "ANTHROPIC_API_KEY": "sk-env"]
        let configuration = AnthropicClientConfiguration.fromEnvironment(env)
        #expect(configuration.baseURL == "http://127.0.0.1:8080/")
        #expect(configuration.apiKey == "sk-env")
        #expect(try configuration.messagesURL() == "http://127.0.0.1:8080/v1/messages")
        #expect(AnthropicClientConfiguration.baseURLFromEnvironment([:]) == "https://api.anthropic.com")
        #expect(AnthropicClientConfiguration.apiKeyFromEnvironment(["ANTHROPIC_API_KEY": " "]) == nil)
        #expect(!configuration.description.contains("sk-env"))

        #expect(throws: LLMError.self) { try AnthropicClient(configuration: AnthropicClientConfiguration(baseURL: "ftp://x")) }
        #expect(throws: LLMError.self) { try AnthropicClient(configuration: AnthropicClientConfiguration(maxRetries: -1)) }
        #expect(throws: LLMError.self) {
            try AnthropicClient(configuration: AnthropicClientConfiguration(maxConcurrentConnections: 0))
        }
    }

    @Test("requests encode in the API's snake_case shape and content blocks decode")
    func wireShape() throws {
        let data = try JSONEncoder().encode(sampleRequest)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["max_tokens"] as? Int == 256)
        #expect(object["system"] as? String == "You are terse.")
        #expect(object["temperature"] == nil)
        let blocks = #"{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}"#
        #expect(try JSONDecoder().decode(LLMMessage.self, from: Data(blocks.utf8)).content == "ab")
        let blockSystem = #"{"model":"m","max_tokens":5,"system":[{"type":"text","text":"be brief"}],"messages":[]}"#
        #expect(try JSONDecoder().decode(LLMRequest.self, from: Data(blockSystem.utf8)).system == "be brief")
        #expect(try JSONDecoder().decode(LLMRequest.self, from: try JSONEncoder().encode(sampleRequest)) == sampleRequest)

        let response = #"""
            {"id":"msg_1","type":"message","role":"assistant","model":"m","stop_reason":"end_turn",
             "content":[{"type":"text","text":"Hello"},{"type":"tool_use","id":"t","name":"x","input":{}}],
             "usage":{"input_tokens":12,"output_tokens":3}}
            """#
        let decoded = try JSONDecoder().decode(LLMResponse.self, from: Data(response.utf8))
        let completion = LLMCompletion(response: decoded, attempts: 2)
        #expect(completion.text == "Hello")
        #expect(completion.inputTokens == 12)
        #expect(completion.outputTokens == 3)
        let journaled = try JSONDecoder().decode(LLMCompletion.self, from: try JSONEncoder().encode(completion))
        #expect(journaled == completion)
    }

    @Test("the mock stops at max_tokens like the real API")
    func maxTokens() async throws {
        let completion = try await withMockLLM { _, client in
            try await client.complete(LLMRequest(model: "m", prompt: "write a long essay", maxTokens: 4))
        }
        #expect(completion.stopReason == "max_tokens")
        #expect(completion.outputTokens == 4)
    }
}
