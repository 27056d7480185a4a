import Foundation

/// Encodes any `Encodable` into a `JSONValue`, which `JSONText` then writes with sorted keys.
///
/// The engine encodes every step input, step output and workflow result; Foundation's `JSONEncoder`
/// cost more CPU there than the store's SQL. This encoder builds the value tree directly and follows
/// `JSONEncoder`'s default strategies, so text written by either decodes with both: `Date` as seconds
/// since 2001 (its own `Codable` form), `Data` as Base64, `URL` as its absolute string, `Decimal` as a
/// number, non-finite floating-point values rejected.
public struct JSONValueEncoder: Sendable {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        try Self.value(of: value, at: [])
    }

    /// The JSON value of one encodable, with the special cases `JSONEncoder` also makes.
    fileprivate static func value<T: Encodable>(of value: T, at path: [any CodingKey]) throws -> JSONValue {
        switch value {
        case let json as JSONValue: return json
        case let text as String: return .string(text)
        case let flag as Bool: return .bool(flag)
        case let number as Int: return .int(Int64(number))
        case let number as Int64: return .int(number)
        case let number as Double: return try double(number, at: path)
        case let data as Data: return .string(data.base64EncodedString())
        case let url as URL: return .string(url.absoluteString)
        case let decimal as Decimal: return .double(NSDecimalNumber(decimal: decimal).doubleValue)
        default:
            let encoder = TreeEncoder(codingPath: path)
            try value.encode(to: encoder)
            // A type that encodes nothing is an empty object, as with JSONEncoder.
            return encoder.root?.resolved() ?? .object([:])
        }
    }

    fileprivate static func double(_ number: Double, at path: [any CodingKey]) throws -> JSONValue {
        guard number.isFinite else {
            throw EncodingError.invalidValue(number, .init(codingPath: path, debugDescription: "\(number) is not valid in JSON"))
        }
        return .double(number)
    }

    fileprivate static func integer<I: BinaryInteger>(_ number: I, at path: [any CodingKey]) throws -> JSONValue {
        if let exact = Int64(exactly: number) { return .int(exact) }
        // Only UInt64 values above Int64.max get here: kept as the nearest double.
        return .double(Double(number))
    }
}

/// A node of the tree being encoded. Containers are references so a nested container keeps writing
/// into its parent after it has been handed out.
private final class Node {
    enum Content {
        case value(JSONValue)
        case object([String: Node])
        case array([Node])
    }

    var content: Content

    init(_ content: Content) { self.content = content }

    func resolved() -> JSONValue {
        switch content {
        case .value(let value): return value
        case .object(let fields): return .object(fields.mapValues { $0.resolved() })
        case .array(let items): return .array(items.map { $0.resolved() })
        }
    }

    func set(_ node: Node, forKey key: String) {
        guard case .object(var fields) = content else { return }
        content = .value(.null)  // drop the reference so the dictionary is mutated in place
        fields[key] = node
        content = .object(fields)
    }

    func append(_ node: Node) {
        guard case .array(var items) = content else { return }
        content = .value(.null)
        items.append(node)
        content = .array(items)
    }

    var count: Int {
        if case .array(let items) = content { return items.count }
        return 0
    }
}

/// The `Encoder` handed to `encode(to:)`. Not Sendable: one encoding on one thread. Its root node is
/// changed in place, never replaced, so a parent holding it (see `superEncoder`) sees what is encoded.
private final class TreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    private(set) var root: Node?

    init(codingPath: [any CodingKey], root: Node? = nil) {
        self.codingPath = codingPath
        self.root = root
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let node = rootNode(ifNot: { if case .object = $0 { return true } else { return false } }, else: .object([:]))
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let node = rootNode(ifNot: { if case .array = $0 { return true } else { return false } }, else: .array([]))
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(encoder: self) }

    func setValue(_ value: JSONValue) {
        if let root { root.content = .value(value) } else { root = Node(.value(value)) }
    }

    /// The root, holding content of the kind `matches` accepts (`fresh` when it holds another).
    private func rootNode(ifNot matches: (Node.Content) -> Bool, else fresh: Node.Content) -> Node {
        guard let root else {
            let node = Node(fresh)
            self.root = node
            return node
        }
        if !matches(root.content) { root.content = fresh }
        return root
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [any CodingKey]

    private func put(_ value: JSONValue, _ key: Key) { node.set(Node(.value(value)), forKey: key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { put(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { put(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        put(try JSONValueEncoder.double(value, at: codingPath + [key]), key)
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        put(try JSONValueEncoder.double(Double(value), at: codingPath + [key]), key)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(.int(Int64(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { put(.int(Int64(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { put(.int(Int64(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(.int(Int64(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(.int(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { put(try JSONValueEncoder.integer(value, at: codingPath), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { put(.int(Int64(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { put(.int(Int64(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(.int(Int64(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(try JSONValueEncoder.integer(value, at: codingPath), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        put(try JSONValueEncoder.value(of: value, at: codingPath + [key]), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type,
                                                        forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = Node(.object([:]))
        node.set(child, forKey: key.stringValue)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = Node(.array([]))
        node.set(child, forKey: key.stringValue)
        return UnkeyedContainer(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { superEncoder(key: "super") }
    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(key: key.stringValue) }

    private func superEncoder(key: String) -> any Encoder {
        let child = Node(.object([:]))
        node.set(child, forKey: key)
        return TreeEncoder(codingPath: codingPath + [JSONCodingKey(key)], root: child)
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer, ValueWriting {
    let node: Node
    let codingPath: [any CodingKey]
    var count: Int { node.count }

    private var nextPath: [any CodingKey] { codingPath + [JSONCodingKey(index: count)] }
    var valuePath: [any CodingKey] { nextPath }
    func put(_ value: JSONValue) { node.append(Node(.value(value))) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = nextPath
        let child = Node(.object([:]))
        node.append(child)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        let child = Node(.array([]))
        node.append(child)
        return UnkeyedContainer(node: child, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let path = nextPath
        let child = Node(.object([:]))
        node.append(child)
        return TreeEncoder(codingPath: path, root: child)
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer, ValueWriting {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var valuePath: [any CodingKey] { codingPath }

    func put(_ value: JSONValue) { encoder.setValue(value) }
}

/// The value-writing methods unkeyed and single-value containers share, written once: each value
/// goes to `put`, and errors name `valuePath`.
private protocol ValueWriting {
    var valuePath: [any CodingKey] { get }
    func put(_ value: JSONValue)
}

extension ValueWriting {
    mutating func encodeNil() throws { put(.null) }
    mutating func encode(_ value: Bool) throws { put(.bool(value)) }
    mutating func encode(_ value: String) throws { put(.string(value)) }
    mutating func encode(_ value: Double) throws { put(try JSONValueEncoder.double(value, at: valuePath)) }
    mutating func encode(_ value: Float) throws { put(try JSONValueEncoder.double(Double(value), at: valuePath)) }
    mutating func encode(_ value: Int) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { put(.int(value)) }
    mutating func encode(_ value: UInt) throws { put(try JSONValueEncoder.integer(value, at: valuePath)) }
    mutating func encode(_ value: UInt8) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { put(try JSONValueEncoder.integer(value, at: valuePath)) }
    mutating func encode<T: Encodable>(_ value: T) throws { put(try JSONValueEncoder.value(of: value, at: valuePath)) }
}

/// A coding key for paths in errors and for `super` entries.
struct JSONCodingKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(_ string: String) { stringValue = string; intValue = nil }
    init(index: Int) { stringValue = "Index \(index)"; intValue = index }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { self.init(index: intValue) }
}
