import Crypto
import Foundation
import ShardflowJSON

/// Outbound messages bounded before they enter the outbox, so each fits `MessageLimits.maxOutboundBytes`
/// (key plus value) and the broker never refuses one for its size.
enum BoundedOutput {
    /// An encoded message and the Kafka key it goes under.
    struct Message {
        var key: String
        var value: [UInt8]
        var size: Int { key.utf8.count + value.count }
    }

    /// The dead letter of raw bytes: UTF-8 text as is, anything else in base64. One that would not fit
    /// carries the longest prefix of the value that does, with `truncated`, the original size and its
    /// SHA-256; a key longer than `maxDeadLetterKeyBytes` is cut (`keyTruncated`); the reason too.
    static func deadLetter(sourceTopic: String, partition: Int, offset: Int64, key rawKey: [UInt8]?, value: [UInt8]?,
                           error: String, at: Int64, limit: Int = MessageLimits.maxOutboundBytes) -> Message {
        var key = rawKey.map { String(decoding: $0, as: UTF8.self) }
        var keyTruncated = false
        if let whole = key, whole.utf8.count > MessageLimits.maxDeadLetterKeyBytes {
            key = whole.prefix(utf8Bytes: MessageLimits.maxDeadLetterKeyBytes)
            keyTruncated = true
        }
        let reason = error.prefix(utf8Bytes: MessageLimits.maxReasonBytes * 2)
        let isText = value.map { String(validating: $0, as: UTF8.self) != nil } ?? true
        let encoding: DeadLetter.ValueEncoding = isText ? .utf8 : .base64
        func encoded(_ text: String?, truncated: Bool) -> Message {
            let letter = DeadLetter(
                sourceTopic: sourceTopic, partition: partition, offset: offset, key: key, value: text,
                valueEncoding: encoding, error: reason, at: at, truncated: truncated,
                valueBytes: truncated ? value?.count : nil,
                valueSha256: truncated ? value.map(sha256Hex) : nil,
                keyTruncated: keyTruncated ? true : nil)
            return Message(key: key ?? "", value: (try? letter.contractJSON()) ?? [])
        }
        let whole = value.map { isText ? String(decoding: $0, as: UTF8.self) : Data($0).base64EncodedString() }
        let full = encoded(whole, truncated: false)
        guard full.size > limit, let value else { return full }
        // Room left for the value once everything else is written.
        let room = limit - encoded("", truncated: true).size
        let prefix: String
        if isText {
            prefix = escapedPrefix(value, maxEscapedBytes: room)
        } else {
            prefix = Data(value.prefix(max(0, room) / 4 * 3)).base64EncodedString()
        }
        return encoded(prefix, truncated: true)
    }

    /// The longest prefix of the UTF-8 `bytes`, cut at a character boundary, whose JSON string escape
    /// takes at most `maxEscapedBytes` (a control character may take 6, `"` and `\` take 2).
    static func escapedPrefix(_ bytes: [UInt8], maxEscapedBytes: Int) -> String {
        var used = 0
        var end = 0
        while end < bytes.count {
            let byte = bytes[end]
            let cost = byte < 0x20 ? 6 : (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") ? 2 : 1)
            if used + cost > maxEscapedBytes { break }
            used += cost
            end += 1
        }
        // Back off to the start of a character (a continuation byte is 10xxxxxx).
        while end > 0 && end < bytes.count && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
