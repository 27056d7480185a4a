import Foundation

/// Decodes any `Decodable` from a `JSONValue` (parsed by `JSONText`), with `JSONDecoder`'s default
/// strategies: see `JSONValueEncoder`. Integers decode from integral numbers written either way
/// (`3` or `3.0`); a number that does not fit the requested type is a `dataCorrupted` error.
public struct JSONValueDecoder: Sendable {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try Self.decode(type, from: value, at: [])
    }

    fileprivate static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, at path: [any CodingKey]) throws -> T {
        // The common scalar types skip the generic path (the casts cannot fail: T is that type).
        if T.self == JSONValue.self { return value as! T }
        if T.self == String.self { return try string(value, at: path) as! T }
        if T.self == Int.self { return try integer(Int.self, value, at: path) as! T }
        if T.self == Double.self { return try double(value, at: path) as! T }
        if T.self == Bool.self { return try bool(value, at: path) as! T }
        if T.self == Data.self {
            guard let data = Data(base64Encoded: try string(value, at: path)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "string is not valid Base64"))
            }
            return data as! T
        }
        if T.self == URL.self {
            guard let url = URL(string: try string(value, at: path)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "string is not a valid URL"))
            }
            return url as! T
        }
        if T.self == Decimal.self {
            let decimal = Decimal(try double(value, at: path))
            guard !decimal.isNaN else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "number does not fit in Decimal"))
            }
            return decimal as! T
        }
        return try T(from: TreeDecoder(value: value, codingPath: path))
    }

    fileprivate static func mismatch(_ expected: Any.Type, _ value: JSONValue, at path: [any CodingKey]) -> DecodingError {
        let found: String
        switch value {
        case .null: found = "null"
        case .bool: found = "a boolean"
        case .int, .double: found = "a number"
        case .string: found = "a string"
        case .array: found = "an array"
        case .object: found = "an object"
        }
        return .typeMismatch(expected, .init(codingPath: path, debugDescription: "expected \(expected), found \(found)"))
    }

    fileprivate static func string(_ value: JSONValue, at path: [any CodingKey]) throws -> String {
        guard case .string(let text) = value else { throw mismatch(String.self, value, at: path) }
        return text
    }

    fileprivate static func bool(_ value: JSONValue, at path: [any CodingKey]) throws -> Bool {
        guard case .bool(let flag) = value else { throw mismatch(Bool.self, value, at: path) }
        return flag
    }

    fileprivate static func double(_ value: JSONValue, at path: [any CodingKey]) throws -> Double {
        switch value {
        case .int(let number): return Double(number)
        case .double(let number): return number
        default: throw mismatch(Double.self, value, at: path)
        }
    }

    /// Like `JSONDecoder`: a finite double beyond `Float`'s range is an error, not infinity.
    fileprivate static func float(_ value: JSONValue, at path: [any CodingKey]) throws -> Float {
        let number = try double(value, at: path)
        let float = Float(number)
        guard float.isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "number does not fit in Float"))
        }
        return float
    }

    fileprivate static func integer<I: FixedWidthInteger>(_ type: I.Type, _ value: JSONValue, at path: [any CodingKey]) throws -> I {
        let converted: I?
        switch value {
        case .int(let number): converted = I(exactly: number)
        case .double(let number): converted = number.isFinite ? I(exactly: number) : nil
        default: throw mismatch(I.self, value, at: path)
        }
        guard let converted else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "number does not fit in \(I.self)"))
        }
        return converted
    }
}

/// The `Decoder` handed to `init(from:)`.
private struct TreeDecoder: Decoder, SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let fields) = value else {
            throw JSONValueDecoder.mismatch([String: Any].self, value, at: codingPath)
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(fields: fields, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw JSONValueDecoder.mismatch([Any].self, value, at: codingPath) }
        return UnkeyedContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    // MARK: single value

    func decodeNil() -> Bool { value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try JSONValueDecoder.bool(value, at: codingPath) }
    func decode(_ type: String.Type) throws -> String { try JSONValueDecoder.string(value, at: codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try JSONValueDecoder.double(value, at: codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try JSONValueDecoder.float(value, at: codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONValueDecoder.integer(type, value, at: codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONValueDecoder.decode(type, from: value, at: codingPath) }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { fields.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

    private func field(_ key: Key) throws -> JSONValue {
        guard let value = fields[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no value for key \"\(key.stringValue)\""))
        }
        return value
    }

    private func decoder(_ key: Key) throws -> TreeDecoder { TreeDecoder(value: try field(key), codingPath: codingPath + [key]) }

    func decodeNil(forKey key: Key) throws -> Bool { try field(key) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decoder(key).decode(type) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decoder(key).decode(type) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decoder(key).decode(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decoder(key).decode(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decoder(key).decode(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decoder(key).decode(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decoder(key).decode(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decoder(key).decode(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decoder(key).decode(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decoder(key).decode(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decoder(key).decode(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decoder(key).decode(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decoder(key).decode(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decoder(key).decode(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONValueDecoder.decode(type, from: try field(key), at: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try decoder(key).unkeyedContainer() }

    func superDecoder() throws -> any Decoder {
        TreeDecoder(value: fields["super"] ?? .null, codingPath: codingPath + [JSONCodingKey("super")])
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        TreeDecoder(value: fields[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    /// The next element's decoder; the index moves on only when decoding it succeeds.
    private func next<T>(_ type: T.Type) throws -> TreeDecoder {
        let path = codingPath + [JSONCodingKey(index: currentIndex)]
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "unkeyed container is at its end"))
        }
        return TreeDecoder(value: items[currentIndex], codingPath: path)
    }

    private mutating func take<T>(_ body: (TreeDecoder) throws -> T) throws -> T {
        let value = try body(try next(T.self))
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard try next(Any?.self).decodeNil() else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try take { try $0.decode(type) } }
    mutating func decode(_ type: String.Type) throws -> String { try take { try $0.decode(type) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try take { try $0.decode(type) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try take { try $0.decode(type) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try take { try $0.decode(type) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try take { try $0.decode(type) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try take { try $0.decode(type) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try take { try $0.decode(type) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try take { try $0.decode(type) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try take { try $0.decode(type) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try take { try $0.decode(type) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try take { try $0.decode(type) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try take { try $0.decode(type) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try take { try $0.decode(type) } }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try take { try $0.decode(type) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try take { try $0.container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try take { try $0.unkeyedContainer() } }

    mutating func superDecoder() throws -> any Decoder { try take { $0 } }
}
