/// What an LLM step returns; journaled as the step's output, hence Codable.
public struct LLMCompletion: Codable, Sendable, Equatable {
    public var id: String
    public var text: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var model: String
    public var stopReason: String?
    /// HTTP attempts it took, 1 when the first one succeeded.
    public var attempts: Int

    public init(
        id: String, text: String, inputTokens: Int, outputTokens: Int, model: String, stopReason: String?, attempts: Int
    ) {
        self.id = id
        self.text = text
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.model = model
        self.stopReason = stopReason
        self.attempts = attempts
    }

    public init(response: LLMResponse, attempts: Int) {
        self.init(
            id: response.id, text: response.text, inputTokens: response.usage.inputTokens,
            outputTokens: response.usage.outputTokens, model: response.model, stopReason: response.stopReason,
            attempts: attempts
        )
    }
}

/// Anything that answers an `LLMRequest`: the real client, or a stand-in in tests.
public protocol LLMCompleting: Sendable {
    func complete(_ request: LLMRequest) async throws -> LLMCompletion
}
