import Foundation

/// Settings of an `AnthropicClient`. `description` never shows the API key.
public struct AnthropicClientConfiguration: Sendable, CustomStringConvertible {
    public static let defaultBaseURL = "https://api.anthropic.com"
    public static let apiVersion = "2023-06-01"
    public static let baseURLEnvironmentKey = "SHARDFLOW_LLM_BASE_URL"
    public static let apiKeyEnvironmentKey = "ANTHROPIC_API_KEY"

    /// Scheme, host and optional port (and path prefix); `/v1/messages` is appended.
    public var baseURL: String
    /// Sent as `x-api-key`; nil sends no key (enough for the mock server).
    public var apiKey: String?
    /// Limit for one HTTP attempt, from sending the request to the end of the response body.
    public var requestTimeout: Duration
    /// Attempts after the first; 0 disables retries.
    public var maxRetries: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    public var maxRetryAfter: Duration
    /// Connection pool size per host; set it to the number of LLM calls that may run at once.
    public var maxConcurrentConnections: Int
    /// A larger response body fails the call as an invalid response (the same request would get it again: not retried).
    public var maxResponseBytes: Int
    /// Send the `shardflow-step` header (`LLMStepIdentity`) with each call made inside an `llm` step: for a
    /// mock or proxy that keys its behaviour on the step (the benchmark's exact ideal). Off by default.
    public var sendsStepIdentity = false
    /// This client's share of the organisation's rate limits (per model and minute); calls wait for it
    /// before they open a request (see `LLMRateLimiter`). Unlimited by default.
    public var rateLimits = LLMRateLimits()

    public init(
        baseURL: String = AnthropicClientConfiguration.defaultBaseURL,
        apiKey: String? = nil,
        requestTimeout: Duration = .seconds(120),
        maxRetries: Int = 4,
        initialBackoff: Duration = .milliseconds(500),
        maxBackoff: Duration = .seconds(30),
        maxRetryAfter: Duration = .seconds(60),
        maxConcurrentConnections: Int = 50,
        maxResponseBytes: Int = 8 << 20
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.requestTimeout = requestTimeout
        self.maxRetries = maxRetries
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.maxRetryAfter = maxRetryAfter
        self.maxConcurrentConnections = maxConcurrentConnections
        self.maxResponseBytes = maxResponseBytes
    }

    /// `SHARDFLOW_LLM_BASE_URL` when set and not empty, else the public API.
    public static func baseURLFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let value = environment[baseURLEnvironmentKey]?.trimmingCharacters(in: .whitespaces), !value.isEmpty {
            return value
        }
        return defaultBaseURL
    }

    /// `ANTHROPIC_API_KEY` when set and not empty.
    public static func apiKeyFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let value = environment[apiKeyEnvironmentKey]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty
        else { return nil }
        return value
    }

    /// Defaults, with the base URL and API key taken from the environment.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> AnthropicClientConfiguration {
        AnthropicClientConfiguration(baseURL: baseURLFromEnvironment(environment), apiKey: apiKeyFromEnvironment(environment))
    }

    /// The full `/v1/messages` URL, or an `invalidConfiguration` error explaining what is wrong.
    public func messagesURL() throws(LLMError) -> String {
        func invalid(_ message: String) -> LLMError { LLMError(kind: .invalidConfiguration, message: message, attempts: 0) }
        guard let url = URL(string: baseURL), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else { throw invalid("base URL must be an http or https URL, got \"\(baseURL)\"") }
        guard let host = url.host, !host.isEmpty else { throw invalid("base URL has no host: \"\(baseURL)\"") }
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed + "/v1/messages"
    }

    /// Checks every setting; the client calls it on creation.
    public func validate() throws(LLMError) {
        func invalid(_ message: String) -> LLMError { LLMError(kind: .invalidConfiguration, message: message, attempts: 0) }
        _ = try messagesURL()
        if maxRetries < 0 { throw invalid("maxRetries must not be negative, got \(maxRetries)") }
        if requestTimeout <= .zero { throw invalid("requestTimeout must be positive") }
        if initialBackoff < .zero || maxBackoff < .zero || maxRetryAfter < .zero {
            throw invalid("backoff durations must not be negative")
        }
        if maxConcurrentConnections < 1 {
            throw invalid("maxConcurrentConnections must be at least 1, got \(maxConcurrentConnections)")
        }
        if maxResponseBytes < 1024 { throw invalid("maxResponseBytes must be at least 1024, got \(maxResponseBytes)") }
    }

    public var description: String {
        "AnthropicClientConfiguration(baseURL: \(baseURL), apiKey: \(apiKey == nil ? "none" : "set"), "
            + "requestTimeout: \(requestTimeout), maxRetries: \(maxRetries), initialBackoff: \(initialBackoff), "
            + "maxBackoff: \(maxBackoff), maxConcurrentConnections: \(maxConcurrentConnections))"
    }
}
