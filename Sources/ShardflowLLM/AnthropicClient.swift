import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ShardflowJSON
import ShardflowSupport
import Synchronization

/// Calls the Anthropic Messages API (`POST {baseURL}/v1/messages`), retrying what may succeed on
/// another attempt: 429, 529, other 5xx, timeouts and connection failures.
public final class AnthropicClient: LLMCompleting {
    /// Connections per owned HTTPClient. AsyncHTTPClient's HTTP/1 pool does work linear in its
    /// connection count on every request, so thousands of connections in one pool burn the CPU;
    /// several smaller pools used in turn keep each operation cheap, while too many clients cost
    /// their own upkeep. Measured with `shardflow bench-llm-calls --requests 60000 --concurrency 5000
    /// --latency-median 1s` (CPU per call, client and mock): 16: ~580 µs, 32: ~580, 64: ~490,
    /// 128: ~535, 256: ~630.
    public static let connectionsPerPool = 64

    public let configuration: AnthropicClientConfiguration
    private let httpClients: [HTTPClient]
    private let nextClient = Atomic<Int>(0)
    private let ownsHTTPClient: Bool
    private let messagesURL: String
    private let backoff: RetryBackoff
    private let logger: Logger
    /// Shared by every call of this client, so by all the shards of a worker; nil when unlimited.
    public let rateLimiter: LLMRateLimiter?

    /// - Parameter httpClient: a shared client to use (the caller shuts it down); when nil the
    ///   client creates its own, holding `maxConcurrentConnections` connections per host in pools of
    ///   at most `connectionsPerPool`, and `shutdown()` closes them.
    public init(
        configuration: AnthropicClientConfiguration,
        httpClient: HTTPClient? = nil,
        logger: Logger = Logger(label: "shardflow.llm")
    ) throws(LLMError) {
        try configuration.validate()
        self.configuration = configuration
        self.messagesURL = try configuration.messagesURL()
        self.backoff = RetryBackoff(
            initial: configuration.initialBackoff, maximum: configuration.maxBackoff,
            maxRetryAfter: configuration.maxRetryAfter
        )
        self.logger = logger
        self.rateLimiter = configuration.rateLimits.isUnlimited ? nil : LLMRateLimiter(limits: configuration.rateLimits)
        if let httpClient {
            self.httpClients = [httpClient]
            self.ownsHTTPClient = false
        } else {
            let total = configuration.maxConcurrentConnections
            let pools = (total + Self.connectionsPerPool - 1) / Self.connectionsPerPool
            self.httpClients = (0..<pools).map { pool in
                // Spread the connections evenly: 300 become 150 + 150, not 256 + 44.
                let size = total / pools + (pool < total % pools ? 1 : 0)
                return HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.httpConfiguration(connections: size))
            }
            self.ownsHTTPClient = true
        }
    }

    /// The HTTPClient settings of one owned pool.
    public static func httpConfiguration(connections: Int) -> HTTPClient.Configuration {
        var http = HTTPClient.Configuration()
        http.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        http.timeout = .init(connect: .seconds(10))
        // Shardflow bootstraps no tracer: without this, every request still builds a no-op span and
        // formats its attributes (about 1.4% of a worker's CPU in `bench` at 5,000 calls in flight).
        http.tracing.tracer = nil
        return http
    }

    /// How many HTTP clients (connection pools) requests are spread over.
    public var poolCount: Int { httpClients.count }

    /// Closes the HTTP clients if this client created them; a shared one is left to its owner.
    /// Call it before dropping the client: AsyncHTTPClient insists on an explicit shutdown.
    public func shutdown() async throws {
        guard ownsHTTPClient else { return }
        for client in httpClients { try await client.shutdown() }
    }

    /// Sends the request, retrying as configured. Throws `LLMError` describing the last failure,
    /// or `CancellationError` when the task is cancelled.
    public func complete(_ request: LLMRequest) async throws -> LLMCompletion {
        try request.validate()
        let body: [UInt8]
        do {
            body = try JSONCoding.encodeBytes(request)
        } catch {
            throw LLMError(kind: .invalidRequest, message: "cannot encode request: \(error)", attempts: 0)
        }
        var attempt = 0
        let estimatedInput = LLMRateLimits.estimatedInputTokens(request)
        while true {
            attempt += 1
            // Each HTTP attempt waits for its turn under the rate limits (holding no connection meanwhile).
            try await rateLimiter?.acquire(model: request.model, inputTokens: estimatedInput, outputTokens: request.maxTokens,
                                           priority: LLMStepIdentity.current?.priority)
            let failure: LLMError
            switch await send(body: body, attempt: attempt, model: request.model) {
            case .success(let completion):
                rateLimiter?.settle(model: request.model, reservedOutputTokens: request.maxTokens,
                                    usedOutputTokens: completion.outputTokens)
                return completion
            case .failure(let error):
                failure = error
            }
            try Task.checkCancellation()
            guard failure.isRetryable, attempt <= configuration.maxRetries else { throw failure }
            let wait = backoff.delay(
                afterAttempt: attempt,
                retryAfter: failure.retryAfterSeconds.map { .seconds($0) },
                unitRandom: Double.random(in: 0..<1)
            )
            logger.debug(
                "LLM attempt failed, retrying",
                metadata: [
                    "attempt": "\(attempt)", "status": "\(failure.status.map(String.init) ?? "-")",
                    "kind": "\(failure.kind.rawValue)", "wait": "\(wait)",
                ]
            )
            try await Task.sleep(for: wait)
        }
    }

    /// One HTTP attempt; every failure comes back as a value so the loop can decide on a retry.
    private func send(body: [UInt8], attempt: Int, model: String) async -> Result<LLMCompletion, LLMError> {
        var request = HTTPClientRequest(url: messagesURL)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "anthropic-version", value: AnthropicClientConfiguration.apiVersion)
        if let apiKey = configuration.apiKey { request.headers.add(name: "x-api-key", value: apiKey) }
        if configuration.sendsStepIdentity, let identity = LLMStepIdentity.current {
            request.headers.add(name: LLMStepIdentity.headerName, value: identity.headerValue(httpTry: attempt))
        }
        request.body = .bytes(ByteBuffer(bytes: body))

        let status: Int
        let headers: HTTPHeaders
        let responseBody: ByteBuffer
        do {
            let timeout = TimeAmount.nanoseconds(configuration.requestTimeout.nanoseconds)
            let turn = nextClient.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
            let pool = httpClients[turn % httpClients.count]
            let response = try await pool.execute(request, timeout: timeout)
            status = Int(response.status.code)
            headers = response.headers
            responseBody = try await response.body.collect(upTo: configuration.maxResponseBytes)
        } catch {
            return .failure(transportError(error, attempt: attempt))
        }
        rateLimiter?.observe(model: model, headers: LLMRateLimitHeaders.parse { headers.first(name: $0) })

        guard (200...299).contains(status) else {
            let retryAfter = headers.first(name: "retry-after").flatMap { RetryAfterHeader.parse($0) }
            return .failure(
                LLMError(
                    kind: .httpStatus, status: status, message: redacted(Self.errorSummary(responseBody)),
                    bodyExcerpt: redacted(Self.excerpt(responseBody)), retryAfterSeconds: retryAfter?.timeInterval,
                    attempts: attempt
                )
            )
        }
        do {
            let decoded = try JSONCoding.decode(LLMResponse.self, from: Array(responseBody.readableBytesView))
            return .success(LLMCompletion(response: decoded, attempts: attempt))
        } catch {
            return .failure(
                LLMError(
                    kind: .invalidResponse, status: status, message: "response is not a Messages API message: \(error)",
                    bodyExcerpt: redacted(Self.excerpt(responseBody)), attempts: attempt
                )
            )
        }
    }

    private func transportError(_ error: any Error, attempt: Int) -> LLMError {
        if error is NIOTooManyBytesError {
            // The same request would get the same answer: not retried.
            return LLMError(
                kind: .invalidResponse,
                message: "the response is larger than \(configuration.maxResponseBytes) bytes (maxResponseBytes)",
                attempts: attempt
            )
        }
        if let httpError = error as? HTTPClientError {
            switch httpError {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return LLMError(
                    kind: .timeout,
                    message: "no complete response within \(configuration.requestTimeout) (\(httpError))",
                    attempts: attempt
                )
            default:
                break
            }
        }
        return LLMError(kind: .transport, message: redacted(String(describing: error)), attempts: attempt)
    }

    /// Belt and braces: a server or proxy that echoes the key must not leak it into errors or logs.
    private func redacted(_ text: String) -> String {
        guard let apiKey = configuration.apiKey, !apiKey.isEmpty else { return text }
        return text.replacingOccurrences(of: apiKey, with: "[redacted]")
    }

    static func excerpt(_ body: ByteBuffer, limit: Int = 300) -> String {
        let text = String(buffer: body)
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }

    /// `overloaded_error: Overloaded` from an API error body; empty when the body is not one.
    static func errorSummary(_ body: ByteBuffer) -> String {
        guard let parsed = try? JSONCoding.decode(LLMErrorBody.self, from: Array(body.readableBytesView)) else { return "" }
        return "\(parsed.error.type): \(parsed.error.message)"
    }
}
