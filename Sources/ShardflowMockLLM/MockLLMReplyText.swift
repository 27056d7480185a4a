import ShardflowLLM

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

    /// Works on UTF-8 bytes throughout: the mock answers thousands of requests a second, and
    /// Character-based counting and splitting of long prompts cost more than the rest of a request.
    static func reply(to request: LLMRequest) -> Reply {
        // The hash of the prompt parts joined by U+001F, without building the joined string.
        var hash = fnv1aOffset
        var first = true
        for part in [request.system ?? "", request.model] + request.messages.map(\.content) {
            if !first { hash = fnv1aStep(hash, 0x1F) }
            first = false
            for byte in part.utf8 { hash = fnv1aStep(hash, byte) }
        }
        // Roughly 4 bytes per token, plus a few tokens of framing per message (as the real API counts).
        let characters = (request.system?.utf8.count ?? 0) + request.messages.reduce(0) { $0 + $1.content.utf8.count }
        let inputTokens = max(1, (characters + 3) / 4 + 3 * request.messages.count)

        var wordCount = 12 + Int(hash % 49)
        var stopReason = "end_turn"
        // About 4 tokens for every 3 words.
        if (wordCount * 4 + 2) / 3 > request.maxTokens {
            wordCount = max(1, request.maxTokens * 3 / 4)
            stopReason = "max_tokens"
        }
        let lastUser = request.messages.last(where: { $0.role == "user" })?.content ?? ""
        var text = ""
        text.reserveCapacity(wordCount * 8 + 64)
        let echo = leadingWords(of: lastUser, count: 6)
        if !echo.isEmpty { text += "Re: " + echo + " | " }
        for index in 0..<wordCount {
            hash = hash &* 0x100_0000_01B3 ^ (hash >> 29)
            if index > 0 { text += " " }
            text += vocabulary[Int(hash % UInt64(vocabulary.count))]
        }
        let outputTokens = stopReason == "max_tokens" ? request.maxTokens : max(1, (wordCount * 4 + 2) / 3)
        return Reply(text: text, inputTokens: inputTokens, outputTokens: outputTokens, stopReason: stopReason)
    }

    /// The first `count` words of `text` (split at ASCII whitespace), joined by single spaces; reads
    /// only as far as it needs.
    static func leadingWords(of text: String, count: Int) -> String {
        var words: [Substring.UTF8View] = []
        let bytes = text.utf8
        var index = bytes.startIndex
        while words.count < count {
            while index < bytes.endIndex, isWhitespace(bytes[index]) { index = bytes.index(after: index) }
            guard index < bytes.endIndex else { break }
            let start = index
            while index < bytes.endIndex, !isWhitespace(bytes[index]) { index = bytes.index(after: index) }
            words.append(text[start..<index].utf8)
        }
        return words.map { String(Substring($0)) }.joined(separator: " ")
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C
    }

    private static let fnv1aOffset: UInt64 = 0xCBF2_9CE4_8422_2325

    private static func fnv1aStep(_ hash: UInt64, _ byte: UInt8) -> UInt64 {
        (hash ^ UInt64(byte)) &* 0x100_0000_01B3
    }
}
