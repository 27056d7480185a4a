import Foundation

/// Any JSON value. Workflow arguments, step results and event values pass through the engine
/// as `JSONValue` (or as JSON text) without being reinterpreted.
public enum JSONValue: Sendable, Equatable, Hashable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The deepest nesting of arrays and objects `parse` accepts (`[[1]]` is 2 levels); deeper input is
    /// an error, so no parsed value can drive the recursive writer, coder or `==` off the stack.
    public static let maxNestingDepth = 128

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// JSON does not tell integers from doubles: `1000` and `1e3` are the same number.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.int(a), .double(b)), let (.double(b), .int(a)): return Double(a) == b && b.rounded() == b && abs(b) < 9.0e15
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .int(let value): hasher.combine(Double(value))
        case .double(let value): hasher.combine(value)
        case .string(let value): hasher.combine(value)
        case .array(let value): hasher.combine(value)
        case .object(let value): hasher.combine(value)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// An integer, also accepting a double with no fractional part (JSON does not distinguish them).
    public var int64Value: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where abs(value) < 9.0e15: return Int64(exactly: value)
        default: return nil
        }
    }

    /// Parses JSON text. Throws `JSONParseError` with a readable description on bad input.
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        do {
            return try JSONText.parse(bytes)
        } catch {
            throw JSONParseError(description: "invalid JSON at byte \(error.offset): \(error.message)")
        }
    }

    /// Compact JSON text with sorted keys (stable bytes for the same value).
    public func jsonString() -> String {
        String(decoding: jsonBytes(), as: UTF8.self)
    }

    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        JSONText.write(self, into: &out)
        return out
    }
}

/// Why a byte sequence is not valid JSON.
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// How the engine turns Codable values into JSON text and back: through `JSONValue`, written compact
/// with sorted keys, so the same value always gives the same bytes.
public enum JSONCoding {
    public static func encodeBytes<T: Encodable>(_ value: T) throws -> [UInt8] {
        try JSONValueEncoder().encode(value).jsonBytes()
    }

    public static func encodeString<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encodeBytes(value), as: UTF8.self)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try decode(type, from: Array(text.utf8))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONValueDecoder().decode(type, from: JSONValue.parse(bytes))
    }
}
