import AsyncHTTPClient
import Foundation
import NIOCore
import ShardflowLLM
import ShardflowMockLLM
import Testing

@Suite("Mock LLM server")
struct MockLLMServerTests {
    private func get(_ url: String) async throws -> (Int, String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    @Test("the request log has one line per answered call that names its step, written by the time the server stops")
    func requestLog() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mock-requests-\(UUID().uuidString).csv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var mock = MockLLMConfiguration(port: 0, latencyMedian: .milliseconds(20), latencyP99: .milliseconds(20))
        mock.requestLogPath = path
        var client = AnthropicClientConfiguration(requestTimeout: .seconds(5), maxRetries: 0)
        client.sendsStepIdentity = true
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        try await withMockLLM(mock, client: client) { _, llm in
            _ = try await LLMStepIdentity.$current.withValue(LLMStepIdentity(workflowId: "wf,1", stepId: 3, attempt: 2)) {
                try await llm.complete(sampleRequest)
            }
            _ = try await llm.complete(sampleRequest)  // names no step: not logged
        }
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        let entries = MockLLMRequestLog.Entry.parse(try String(contentsOfFile: path, encoding: .utf8) + "torn,line")
        #expect(entries.count == 1)
        let entry = try #require(entries.first)
        #expect(entry.workflowId == "wf,1")
        #expect(entry.stepId == 3 && entry.attempt == 2 && entry.httpTry == 1 && entry.status == 200)
        #expect(before <= entry.arrivedAtMs && entry.arrivedAtMs + 15 <= entry.answeredAtMs && entry.answeredAtMs <= after)
    }

    @Test("healthz answers ok and stats answers JSON counters")
    func healthAndStats() async throws {
        let server = try MockLLMServer(configuration: MockLLMConfiguration(port: 0, latencyMedian: .zero, latencyP99: .zero))
        let port = try await server.start()
        #expect(server.port == port)
        let (status, body) = try await get("http://127.0.0.1:\(port)/healthz")
        #expect(status == 200)
        #expect(body == "ok\n")
        try server.script([.status(500)])
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
        request.method = .POST
        request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(sampleRequest)))
        let answer = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        #expect(answer.status.code == 500)
        let (statsStatus, statsBody) = try await get("http://127.0.0.1:\(port)/stats")
        await server.stop()
        #expect(statsStatus == 200)
        let stats = try JSONDecoder().decode(MockLLMStats.self, from: Data(statsBody.utf8))
        #expect(stats.requests == 1)
        #expect(stats.serverErrors == 1)
        #expect(server.summary().contains("500: 1"))
        #expect(server.port == nil)
    }

    @Test("a body that is not a Messages request gets 400 in the API's error shape")
    func badBody() async throws {
        let server = try MockLLMServer(configuration: MockLLMConfiguration(port: 0))
        let port = try await server.start()
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: "{not json"))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        await server.stop()
        #expect(response.status.code == 400)
        let decoded = try JSONDecoder().decode(LLMErrorBody.self, from: Data(buffer: body))
        #expect(decoded.error.type == "invalid_request_error")
        #expect(server.stats().badRequests == 1)
    }

    @Test("a server starts once, and a taken port gives a clear error")
    func startErrors() async throws {
        let first = try MockLLMServer(configuration: MockLLMConfiguration(port: 0))
        let port = try await first.start()
        await #expect(throws: MockLLMServerError.self) { try await first.start() }
        let second = try MockLLMServer(configuration: MockLLMConfiguration(port: port))
        do {
            try await second.start()
            Issue.record("a second server bound the same port")
            await second.stop()
        } catch {
            #expect("\(error)".contains("cannot start the mock LLM server on 127.0.0.1:\(port)"))
        }
        await first.stop()
    }

    @Test("bad settings are refused with the setting named")
    func configurationValidation() throws {
        func message(_ configuration: MockLLMConfiguration) -> String? {
            do {
                try configuration.validate()
                return nil
            } catch {
                return error.description
            }
        }
        #expect(message(MockLLMConfiguration()) == nil)
        #expect(message(MockLLMConfiguration(port: 70_000))?.contains("port") == true)
        #expect(message(MockLLMConfiguration(latencyMedian: .seconds(2), latencyP99: .seconds(1)))?.contains("p99") == true)
        #expect(message(MockLLMConfiguration(errorRate: 1.5))?.contains("error rate") == true)
        #expect(message(MockLLMConfiguration(errorRate: 0.6, overloadRate: 0.6))?.contains("must not exceed 1") == true)
        #expect(message(MockLLMConfiguration(rateLimitRPM: -1))?.contains("rate limit") == true)
        #expect(throws: MockLLMConfigurationError.self) { try MockLLMServer(configuration: MockLLMConfiguration(port: -1)) }
        let server = try MockLLMServer(configuration: MockLLMConfiguration(port: 0))
        #expect(throws: MockLLMConfigurationError.self) { try server.script([.status(1_000)]) }
        #expect(throws: MockLLMConfigurationError.self) { try server.script([.success(after: .seconds(-1))]) }
    }

    @Test("the lognormal latency has the configured median and p99")
    func lognormalShape() {
        let latency = LognormalLatency(median: 1, p99: 4)
        var rng = SplitMix64(seed: 7)
        let draws = (0..<20_000).map { _ in latency.sample(using: &rng) }.sorted()
        let median = draws[draws.count / 2]
        let p99 = draws[Int(Double(draws.count) * 0.99)]
        #expect(abs(median - 1) < 0.05)
        #expect(abs(p99 - 4) < 0.4)
        #expect(abs(latency.mean - 1.194) < 0.001)
        #expect(LognormalLatency(median: 1, p99: 1).sample(using: &rng) == 1, "equal median and p99 is a fixed latency")
    }
}
