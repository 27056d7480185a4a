/// The sizes the contract sets, in one place: what the worker accepts, what it writes, and what it
/// asks of the broker. Apache Kafka's default topic `max.message.bytes` is 1,048,588 (1 MiB plus a
/// record batch's header), and the producer is configured with the same `message.max.bytes`.
public enum MessageLimits {
    /// The largest inbound message value the worker applies (1 MiB); larger ones are dead-lettered.
    public static let maxInboundBytes = 1 << 20
    /// Key plus value of any message the worker publishes: 1 MiB less 1 KiB kept for the record and
    /// batch headers, so one outbound message always fits a topic at Kafka's default limit.
    public static let maxOutboundBytes = (1 << 20) - 1024
    /// The producer's `message.max.bytes` (and the topic setting the docs ask for).
    public static let producerMessageMaxBytes = 1_048_588
    /// A start's `version`: 1 to this.
    public static let maxWorkflowVersion = 1_000_000
    /// `workflowId` and `commandId`: 1 to 200 bytes.
    public static let maxIdBytes = 200
    /// An event's `name`: 1 to 200 bytes.
    public static let maxEventNameBytes = 200
    /// A cancel's or a control command's `reason`.
    public static let maxReasonBytes = 4096
    /// A dead letter carries at most this much of the original key (the rest is cut, `keyTruncated`).
    public static let maxDeadLetterKeyBytes = 1024
}

extension String {
    /// At most `maxBytes` of UTF-8, cut at a character boundary: quoting hostile input in a reason
    /// (a "character" can be megabytes of combining marks, so `prefix(n)` bounds nothing).
    func prefix(utf8Bytes maxBytes: Int) -> String {
        let bytes = Array(utf8)
        guard bytes.count > maxBytes else { return self }
        var end = maxBytes
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
