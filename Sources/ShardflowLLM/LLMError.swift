/// Why an LLM call failed. After retries it describes the LAST attempt's failure and how many
/// attempts were made. It never contains the API key.
public struct LLMError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        /// The server answered with a non-2xx status (`status` is set).
        case httpStatus
        /// The attempt did not complete within the per-request timeout.
        case timeout
        /// Connecting, sending or receiving failed.
        case transport
        /// A 2xx response whose body is not a Messages API response.
        case invalidResponse
        /// The request was rejected before it was sent.
        case invalidRequest
        /// The client's configuration is unusable (bad base URL, negative retries…).
        case invalidConfiguration
    }

    public var kind: Kind
    public var status: Int?
    public var message: String
    /// The start of the last response body, for diagnosis.
    public var bodyExcerpt: String?
    /// The last `retry-after` the server sent, in seconds.
    public var retryAfterSeconds: Double?
    public var attempts: Int

    public init(
        kind: Kind, status: Int? = nil, message: String, bodyExcerpt: String? = nil,
        retryAfterSeconds: Double? = nil, attempts: Int
    ) {
        self.kind = kind
        self.status = status
        self.message = message
        self.bodyExcerpt = bodyExcerpt
        self.retryAfterSeconds = retryAfterSeconds
        self.attempts = attempts
    }

    /// Whether another attempt may succeed: 429, 529, 5xx, timeouts and connection failures.
    public var isRetryable: Bool {
        switch kind {
        case .timeout, .transport: return true
        case .httpStatus:
            guard let status else { return false }
            return status == 429 || status == 529 || (500...599).contains(status)
        case .invalidResponse, .invalidRequest, .invalidConfiguration: return false
        }
    }

    public var description: String {
        var out = "LLM call failed"
        if attempts > 0 { out += " after \(attempts) attempt\(attempts == 1 ? "" : "s")" }
        switch kind {
        case .httpStatus: out += ": HTTP \(status.map(String.init) ?? "?")"
        case .timeout: out += ": timed out"
        case .transport: out += ": connection error"
        case .invalidResponse: out += ": invalid response"
        case .invalidRequest: out += ": invalid request"
        case .invalidConfiguration: out += ": invalid configuration"
        }
        if !message.isEmpty { out += " (\(message))" }
        if let bodyExcerpt, !bodyExcerpt.isEmpty { out += "; body: \(bodyExcerpt)" }
        return out
    }
}
