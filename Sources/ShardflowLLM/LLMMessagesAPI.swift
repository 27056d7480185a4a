import Foundation

/// One turn of a conversation in the Anthropic Messages API.
public struct LLMMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func user(_ text: String) -> LLMMessage { LLMMessage(role: "user", content: text) }
    public static func assistant(_ text: String) -> LLMMessage { LLMMessage(role: "assistant", content: text) }

    private enum CodingKeys: String, CodingKey { case role, content }

    // The API accepts `content` as a string or as an array of content blocks; the text blocks are
    // joined so the mock (and the journal) can read either form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(String.self, forKey: .role)
        if let text = try? container.decode(String.self, forKey: .content) {
            content = text
        } else {
            let blocks = try container.decode([LLMContentBlock].self, forKey: .content)
            content = blocks.compactMap(\.text).joined()
        }
    }
}

/// The body of `POST /v1/messages`.
public struct LLMRequest: Codable, Sendable, Equatable {
    public var model: String
    public var system: String?
    public var messages: [LLMMessage]
    public var maxTokens: Int
    public var temperature: Double?

    public init(model: String, system: String? = nil, messages: [LLMMessage], maxTokens: Int, temperature: Double? = nil) {
        self.model = model
        self.system = system
        self.messages = messages
        self.maxTokens = maxTokens
        self.temperature = temperature
    }

    /// A single-turn request: one user message.
    public init(model: String, system: String? = nil, prompt: String, maxTokens: Int, temperature: Double? = nil) {
        self.init(model: model, system: system, messages: [.user(prompt)], maxTokens: maxTokens, temperature: temperature)
    }

    private enum CodingKeys: String, CodingKey {
        case model, system, messages, temperature
        case maxTokens = "max_tokens"
    }

    // Like message content, `system` may also arrive as an array of text blocks.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decode(String.self, forKey: .model)
        messages = try container.decode([LLMMessage].self, forKey: .messages)
        maxTokens = try container.decode(Int.self, forKey: .maxTokens)
        temperature = try container.decodeIfPresent(Double.self, forKey: .temperature)
        if let text = try? container.decodeIfPresent(String.self, forKey: .system) {
            system = text
        } else {
            system = try container.decodeIfPresent([LLMContentBlock].self, forKey: .system)?.compactMap(\.text).joined()
        }
    }

    /// Checks what the API would reject, so a bad request fails before any network call.
    public func validate() throws(LLMError) {
        if model.isEmpty { throw LLMError(kind: .invalidRequest, message: "model is empty", attempts: 0) }
        if messages.isEmpty { throw LLMError(kind: .invalidRequest, message: "messages is empty", attempts: 0) }
        if maxTokens < 1 {
            throw LLMError(kind: .invalidRequest, message: "max_tokens must be at least 1, got \(maxTokens)", attempts: 0)
        }
        if let bad = messages.first(where: { $0.role != "user" && $0.role != "assistant" }) {
            throw LLMError(kind: .invalidRequest, message: "message role must be user or assistant, got \"\(bad.role)\"", attempts: 0)
        }
    }
}

/// A block of the response's `content`; only text blocks carry `text`.
public struct LLMContentBlock: Codable, Sendable, Equatable {
    public var type: String
    public var text: String?

    public init(type: String = "text", text: String?) {
        self.type = type
        self.text = text
    }
}

/// Token accounting of one response.
public struct LLMUsage: Codable, Sendable, Equatable {
    public var inputTokens: Int
    public var outputTokens: Int

    public init(inputTokens: Int, outputTokens: Int) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }

    private enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
    }
}

/// The body of a successful `POST /v1/messages` response.
public struct LLMResponse: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var role: String
    public var model: String
    public var content: [LLMContentBlock]
    public var stopReason: String?
    public var stopSequence: String?
    public var usage: LLMUsage

    public init(
        id: String, model: String, content: [LLMContentBlock], stopReason: String?, usage: LLMUsage,
        type: String = "message", role: String = "assistant", stopSequence: String? = nil
    ) {
        self.id = id
        self.type = type
        self.role = role
        self.model = model
        self.content = content
        self.stopReason = stopReason
        self.stopSequence = stopSequence
        self.usage = usage
    }

    /// The text of every text block, in order.
    public var text: String { content.compactMap(\.text).joined() }

    private enum CodingKeys: String, CodingKey {
        case id, type, role, model, content, usage
        case stopReason = "stop_reason"
        case stopSequence = "stop_sequence"
    }
}

/// The API's error body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`.
public struct LLMErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var type: String
        public var message: String
    }

    public var type: String
    public var error: Detail

    public init(errorType: String, message: String) {
        self.type = "error"
        self.error = Detail(type: errorType, message: message)
    }
}
