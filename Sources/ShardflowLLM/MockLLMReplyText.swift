/// Builds the mock's answer: deterministic text derived from the prompt and plausible token counts.
enum MockLLMReplyText {
    private static let vocabulary = [
        "the", "workflow", "shard", "step", "result", "journal", "replay", "queue", "durable", "event",
        "kafka", "partition", "offset", "commit", "retry", "timer", "answer", "summary", "draft", "review",
        "model", "token", "latency", "throughput", "order", "first", "then", "finally", "because", "and",
        "each", "task", "runs", "once", "completes", "waits", "for", "an", "approval", "signal",
        "reliable", "fast", "clear", "simple", "careful", "steady", "exactly", "batch", "stream", "state",
        "store", "record", "checks", "invariant", "nothing", "is", "lost", "every", "message", "counts",
        "with", "in", "a", "of",
    ]

    struct Reply {
        var text: String
        var inputTokens: Int
        var outputTokens: Int
        var stopReason: String
    }

    static func reply(to request: LLMRequest) -> Reply {
        let promptText = ([request.system ?? "", request.model] + request.messages.map(\.content)).joined(separator: "\u{1F}")
        var hash = fnv1a(promptText)
        // Roughly 4 characters per token, plus a few tokens of framing per message (as the real API counts).
        let characters = (request.system?.count ?? 0) + request.messages.reduce(0) { $0 + $1.content.count }
        let inputTokens = max(1, (characters + 3) / 4 + 3 * request.messages.count)

        var wordCount = 12 + Int(hash % 49)
        var stopReason = "end_turn"
        // About 4 tokens for every 3 words.
        if (wordCount * 4 + 2) / 3 > request.maxTokens {
            wordCount = max(1, request.maxTokens * 3 / 4)
            stopReason = "max_tokens"
        }
        let lastUser = request.messages.last(where: { $0.role == "user" })?.content ?? ""
        let echo = lastUser.split(whereSeparator: \.isWhitespace).prefix(6).joined(separator: " ")
        var words: [String] = []
        words.reserveCapacity(wordCount)
        for _ in 0..<wordCount {
            hash = hash &* 0x100_0000_01B3 ^ (hash >> 29)
            words.append(vocabulary[Int(hash % UInt64(vocabulary.count))])
        }
        let body = words.joined(separator: " ")
        let text = echo.isEmpty ? body : "Re: \(echo) | \(body)"
        let outputTokens = stopReason == "max_tokens" ? request.maxTokens : max(1, (wordCount * 4 + 2) / 3)
        return Reply(text: text, inputTokens: inputTokens, outputTokens: outputTokens, stopReason: stopReason)
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return hash
    }
}
