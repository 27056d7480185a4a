import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import ShardflowJSON
import ShardflowLLM
import Synchronization

/// A Messages-API-compatible server for tests, the demo and the benchmark.
///
/// `POST /v1/messages` answers after a lognormal latency (a timer on an event loop, so thousands of
/// slow requests in flight cost only memory), injects 500 / 529 at the configured rates and 429 with
/// `retry-after` above the rate limit. `GET /healthz` answers `ok`; `GET /stats` the counters as JSON.
public final class MockLLMServer: Sendable {
    public let configuration: MockLLMConfiguration
    private let behaviour: MockLLMBehaviour
    private let requestLog: MockLLMRequestLog?
    private let logger: Logger
    private let lifecycle = Mutex(Lifecycle.idle)

    private enum Lifecycle {
        case idle
        case starting
        case running(port: Int, group: ServiceGroup, task: Task<Void, any Error>)
        case stopped
    }

    /// Validates the configuration; nothing is bound until `start()`.
    public init(configuration: MockLLMConfiguration, logger: Logger = Logger(label: "shardflow.mock-llm")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.behaviour = MockLLMBehaviour(configuration: configuration)
        self.requestLog = try configuration.requestLogPath.map { try MockLLMRequestLog(path: $0) }
        self.logger = logger
    }

    /// Binds and serves; returns the bound port (the ephemeral one when the configured port is 0).
    /// With `handleSignals`, SIGINT and SIGTERM shut the server down gracefully.
    @discardableResult
    public func start(handleSignals: Bool = false) async throws -> Int {
        try lifecycle.withLock { state in
            guard case .idle = state else { throw MockLLMServerError.alreadyStarted }
            state = .starting
        }
        let (bound, boundContinuation) = AsyncStream<Result<Int, any Error>>.makeStream()
        let app = Application(
            router: makeRouter(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "shardflow-mock-llm",
                // Thousands of clients may connect in the same instant when a bench starts.
                backlog: 4096
            ),
            onServerRunning: { channel in
                boundContinuation.yield(.success(channel.localAddress?.port ?? -1))
            },
            logger: logger
        )
        var groupConfiguration = ServiceGroupConfiguration(
            services: [app],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger
        )
        // Requests still sleeping when we stop get this long to finish before they are cut.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: groupConfiguration)
        let task = Task {
            defer { boundContinuation.finish() }
            do {
                try await group.run()
                boundContinuation.yield(.failure(MockLLMServerError.stoppedBeforeBinding))
            } catch {
                boundContinuation.yield(.failure(error))
                throw error
            }
        }
        var outcome: Result<Int, any Error> = .failure(MockLLMServerError.stoppedBeforeBinding)
        for await first in bound {
            outcome = first
            break
        }
        switch outcome {
        case .success(let port):
            lifecycle.withLock { $0 = .running(port: port, group: group, task: task) }
            return port
        case .failure(let error):
            lifecycle.withLock { $0 = .stopped }
            throw MockLLMServerError.cannotStart(host: configuration.host, port: configuration.port, reason: "\(error)")
        }
    }

    /// The bound port while running.
    public var port: Int? {
        lifecycle.withLock { state in
            if case .running(let port, _, _) = state { return port }
            return nil
        }
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), and returns when the server is down.
    public func stop() async {
        let running: (ServiceGroup, Task<Void, any Error>)? = lifecycle.withLock { state in
            defer { state = .stopped }
            if case .running(_, let group, let task) = state { return (group, task) }
            return nil
        }
        guard let (group, task) = running else { requestLog?.close(); return }
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        requestLog?.close()
    }

    /// Waits until the server stops (by `stop()` or, with `handleSignals`, by a signal).
    public func waitUntilStopped() async throws {
        let task: Task<Void, any Error>? = lifecycle.withLock { state in
            if case .running(_, _, let task) = state { return task }
            return nil
        }
        guard let task else { return }
        defer {
            lifecycle.withLock { $0 = .stopped }
            requestLog?.close()
        }
        try await task.value
    }

    /// Replies given, in order, to the next requests that pass the key and rate-limit checks.
    /// Throws for a status outside 200...599 or a negative delay.
    public func script(_ replies: [MockLLMScriptedReply]) throws(MockLLMConfigurationError) {
        for reply in replies {
            if !(200...599).contains(reply.status) {
                throw MockLLMConfigurationError("scripted status must be within 200...599, got \(reply.status)")
            }
            if reply.delay < .zero { throw MockLLMConfigurationError("scripted delay must not be negative") }
        }
        behaviour.script(replies)
    }

    public func stats() -> MockLLMStats { behaviour.stats() }

    public func summary() -> String { behaviour.stats().summary() }

    // MARK: Routes

    private func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let behaviour = self.behaviour
        let requiredAPIKey = configuration.requiredAPIKey
        let requestLog = self.requestLog
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/stats") { _, _ in
            Self.json(status: 200, behaviour.stats())
        }
        router.post("/v1/messages") { request, _ in
            let number = behaviour.begin()
            let arrivedAt = Date()
            let body = try? await request.body.collect(upTo: 4 << 20)
            guard let body else {
                behaviour.finish(status: 400, latencySeconds: nil)
                return Self.apiError(status: 400, "request body missing or larger than 4 MiB")
            }
            let messages: LLMRequest
            do {
                messages = try JSONCoding.decode(LLMRequest.self, from: Array(body.readableBytesView))
                try messages.validate()
            } catch let error as LLMError {
                behaviour.finish(status: 400, latencySeconds: nil)
                return Self.apiError(status: 400, error.message)
            } catch {
                behaviour.finish(status: 400, latencySeconds: nil)
                return Self.apiError(status: 400, "body is not a Messages API request: \(error)")
            }
            if let requiredAPIKey, Self.header("x-api-key", in: request.headers) != requiredAPIKey {
                behaviour.finish(status: 401, latencySeconds: nil)
                return Self.apiError(status: 401, "invalid x-api-key")
            }
            let identified = Self.header(LLMStepIdentity.headerName, in: request.headers).flatMap(LLMStepIdentity.parse)
            let decision = behaviour.decide(identified: identified, inputTokens: LLMRateLimits.estimatedInputTokens(messages),
                                            maxTokens: messages.maxTokens)
            if decision.status == 429 {
                behaviour.finish(status: 429, latencySeconds: nil)
                if let identified { requestLog?.record(identified, status: 429, arrivedAt: arrivedAt, answeredAt: Date()) }
                return Self.apiError(status: 429, "rate limit exceeded", retryAfter: decision.retryAfter,
                                     extra: decision.rateLimitHeaders)
            }
            if decision.delaySeconds > 0 {
                // A client that gives up cancels this handler; the answer is then simply not sent.
                await Self.wait(seconds: decision.delaySeconds)
            }
            guard decision.status == 200 else {
                behaviour.finish(status: decision.status, latencySeconds: decision.delaySeconds)
                if let identified { requestLog?.record(identified, status: decision.status, arrivedAt: arrivedAt, answeredAt: Date()) }
                return Self.apiError(status: decision.status, retryAfter: decision.retryAfter, extra: decision.rateLimitHeaders)
            }
            let reply = MockLLMReplyText.reply(to: messages)
            let usage = LLMUsage(inputTokens: reply.inputTokens, outputTokens: reply.outputTokens)
            let response = LLMResponse(
                id: "msg_mock_" + String(number, radix: 16), model: messages.model,
                content: [LLMContentBlock(text: reply.text)], stopReason: reply.stopReason, usage: usage
            )
            behaviour.finish(status: 200, latencySeconds: decision.delaySeconds, usage: usage)
            if let identified { requestLog?.record(identified, status: 200, arrivedAt: arrivedAt, answeredAt: Date()) }
            return Self.json(status: 200, response, extra: decision.rateLimitHeaders)
        }
        return router
    }

    /// Waits on an event-loop timer rather than `Task.sleep`, whose timers cost the mock about 100 µs
    /// of CPU each with thousands pending (`shardflow bench-llm-calls` measures the difference).
    private static func wait(seconds: Double) async {
        let timer = MultiThreadedEventLoopGroup.singleton.any()
            .scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {}
        await withTaskCancellationHandler {
            _ = try? await timer.futureResult.get()
        } onCancel: {
            timer.cancel()
        }
    }

    private static func header(_ name: String, in fields: HTTPFields) -> String? {
        fields.first { $0.name.canonicalName == name }?.value
    }

    private static func json(status: Int, _ value: some Encodable, retryAfter: String? = nil,
                             extra: [String: String] = [:]) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = retryAfter }
        for (name, value) in extra { if let field = HTTPField.Name(name) { headers[field] = value } }
        let data = (try? JSONCoding.encodeBytes(value)) ?? Array("{}".utf8)
        return Response(
            status: HTTPResponse.Status(code: status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// An error in the API's shape, with the error type the real API uses for that status.
    private static func apiError(status: Int, _ message: String? = nil, retryAfter: String? = nil,
                                 extra: [String: String] = [:]) -> Response {
        let (type, defaultMessage): (String, String) =
            switch status {
            case 400: ("invalid_request_error", "invalid request")
            case 401: ("authentication_error", "authentication failed")
            case 403: ("permission_error", "permission denied")
            case 404: ("not_found_error", "not found")
            case 429: ("rate_limit_error", "rate limit exceeded")
            case 529: ("overloaded_error", "Overloaded")
            default: ("api_error", "Internal server error")
            }
        return json(status: status, LLMErrorBody(errorType: type, message: message ?? defaultMessage), retryAfter: retryAfter,
                    extra: extra)
    }
}

public enum MockLLMServerError: Error, Sendable, CustomStringConvertible {
    case alreadyStarted
    case stoppedBeforeBinding
    case cannotStart(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .alreadyStarted: "the mock LLM server was already started (a server starts once)"
        case .stoppedBeforeBinding: "the mock LLM server stopped before it was listening"
        case .cannotStart(let host, let port, let reason): "cannot start the mock LLM server on \(host):\(port): \(reason)"
        }
    }
}
