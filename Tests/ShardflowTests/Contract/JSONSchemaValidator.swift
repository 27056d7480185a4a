import Foundation

// A small JSON Schema (draft 2020-12) validator for the project's tests. It supports exactly the
// keywords the files in schemas/ use; any other keyword makes loading the schema throw, so a schema
// can never rely on a rule nobody checks.

/// One rule a JSON instance broke.
struct SchemaViolation: Equatable, CustomStringConvertible, Sendable {
    /// JSON pointer to the offending value ("" is the whole message). For `required`, the pointer of
    /// the missing member.
    var path: String
    /// The schema keyword that failed, e.g. "required", "type", "enum".
    var keyword: String
    var message: String

    var description: String { "\(path.isEmpty ? "/" : path): \(keyword): \(message)" }
}

enum ContractSchemaError: Error, CustomStringConvertible {
    case invalidJSON(String)
    case unsupportedKeyword(String, at: String)
    case invalidSchema(String, at: String)
    case unresolvableRef(String)
    case schemaNotFound(String)

    var description: String {
        switch self {
        case .invalidJSON(let why): "invalid JSON: \(why)"
        case .unsupportedKeyword(let keyword, let at): "unsupported schema keyword \"\(keyword)\" at \(at)"
        case .invalidSchema(let why, let at): "invalid schema at \(at): \(why)"
        case .unresolvableRef(let ref): "cannot resolve $ref \(ref)"
        case .schemaNotFound(let path): "schema not found: \(path)"
        }
    }
}

/// A parsed JSON value. Numbers keep whether they were written as integers, because the contract
/// requires integer times and counts.
enum ContractJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([ContractJSON])
    /// Members in document order.
    case object([(String, ContractJSON)])

    static func == (lhs: ContractJSON, rhs: ContractJSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            let bByKey = Dictionary(b, uniquingKeysWith: { first, _ in first })
            return a.allSatisfy { key, value in bByKey[key] == value }
        default:
            // 1 and 1.0 are the same number to JSON Schema.
            if let a = lhs.numberValue, let b = rhs.numberValue { return a == b }
            return false
        }
    }

    var numberValue: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    subscript(key: String) -> ContractJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// The JSON Schema type names this value has ("integer" values are also "number").
    var schemaTypes: Set<String> {
        switch self {
        case .null: ["null"]
        case .bool: ["boolean"]
        case .integer: ["integer", "number"]
        case .double(let d): d.rounded() == d && d.isFinite ? ["integer", "number"] : ["number"]
        case .string: ["string"]
        case .array: ["array"]
        case .object: ["object"]
        }
    }

    static func parse(_ data: Data) throws -> ContractJSON {
        var parser = ContractJSONParser(bytes: Array(data))
        return try parser.parseDocument()
    }

    static func parse(_ text: String) throws -> ContractJSON {
        try parse(Data(text.utf8))
    }
}

/// A strict RFC 8259 parser, so number kinds and member order survive (JSONSerialization loses both).
private struct ContractJSONParser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> ContractJSON {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw fail("trailing characters") }
        return value
    }

    private func fail(_ why: String) -> ContractSchemaError {
        .invalidJSON("\(why) at byte \(index)")
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func expect(_ literal: String, _ value: ContractJSON) throws -> ContractJSON {
        let expected = Array(literal.utf8)
        guard index + expected.count <= bytes.count,
              Array(bytes[index..<index + expected.count]) == expected
        else { throw fail("invalid literal") }
        index += expected.count
        return value
    }

    private mutating func parseValue(depth: Int) throws -> ContractJSON {
        guard depth < 512 else { throw fail("nesting too deep") }
        guard index < bytes.count else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws -> ContractJSON {
        index += 1
        var members: [(String, ContractJSON)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected member name") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue(depth: depth + 1)))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func parseArray(depth: Int) throws -> ContractJSON {
        index += 1
        var items: [ContractJSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func parseHex4() throws -> UInt16 {
        guard index + 4 <= bytes.count,
              let value = UInt16(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
        else { throw fail("invalid \\u escape") }
        index += 4
        return value
    }

    private mutating func parseString() throws -> String {
        index += 1
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw fail("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var units = [try parseHex4()]
                    if UTF16.isLeadSurrogate(units[0]), index + 6 <= bytes.count,
                       bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                        index += 2
                        units.append(try parseHex4())
                    }
                    guard let text = String(validating: units, as: UTF16.self) else { throw fail("invalid \\u escape") }
                    out.append(contentsOf: Array(text.utf8))
                default: throw fail("invalid escape")
                }
            case 0x00..<0x20: throw fail("control character in string")
            default: out.append(byte)
            }
        }
    }

    private mutating func parseNumber() throws -> ContractJSON {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ p: inout ContractJSONParser) -> Int {
            let s = p.index
            while p.index < p.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p.bytes[p.index]) { p.index += 1 }
            return p.index - s
        }
        let intStart = index
        let intDigits = digits(&self)
        guard intDigits > 0 else { throw fail("invalid number") }
        if intDigits > 1, bytes[intStart] == UInt8(ascii: "0") { throw fail("leading zero") }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard digits(&self) > 0 else { throw fail("invalid fraction") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw fail("invalid exponent") }
        }
        let lexeme = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let value = Int64(lexeme) { return .integer(value) }
        guard let value = Double(lexeme) else { throw fail("invalid number") }
        return .double(value)
    }
}

/// A loaded schema, checked for unsupported keywords up front.
struct ContractSchemaValidator: Sendable {
    /// Keywords that constrain an instance.
    static let assertionKeywords: Set<String> = [
        "type", "required", "properties", "additionalProperties", "enum", "const", "pattern",
        "minLength", "maxLength", "minimum", "maximum", "items", "oneOf", "anyOf", "allOf",
        "if", "then", "$ref",
    ]
    /// Keywords that only annotate or hold definitions; they never fail an instance.
    static let annotationKeywords: Set<String> = [
        "$schema", "$id", "$comment", "$defs", "title", "description", "examples",
    ]
    static let typeNames: Set<String> = ["null", "boolean", "integer", "number", "string", "array", "object"]

    let root: ContractJSON

    init(schema data: Data) throws {
        try self.init(schema: ContractJSON.parse(data))
    }

    init(schema: ContractJSON) throws {
        root = schema
        try Self.check(schema, at: "#")
    }

    /// Every violation of the schema by `instance`; empty when it conforms.
    func validate(_ instance: ContractJSON) -> [SchemaViolation] {
        var out: [SchemaViolation] = []
        validate(instance, against: root, path: "", into: &out)
        return out
    }

    func validate(_ data: Data) throws -> [SchemaViolation] {
        validate(try ContractJSON.parse(data))
    }

    // MARK: Checking the schema itself

    private static func check(_ schema: ContractJSON, at location: String) throws {
        if case .bool = schema { return }
        guard case .object(let members) = schema else {
            throw ContractSchemaError.invalidSchema("a schema must be an object or a boolean", at: location)
        }
        for (keyword, value) in members {
            let here = "\(location)/\(escapePointer(keyword))"
            if annotationKeywords.contains(keyword) {
                if keyword == "$defs" { try checkSchemaMap(value, at: here) }
                continue
            }
            guard assertionKeywords.contains(keyword) else {
                throw ContractSchemaError.unsupportedKeyword(keyword, at: location)
            }
            switch keyword {
            case "properties":
                try checkSchemaMap(value, at: here)
            case "additionalProperties", "items", "if", "then":
                try check(value, at: here)
            case "oneOf", "anyOf", "allOf":
                guard case .array(let subschemas) = value, !subschemas.isEmpty else {
                    throw ContractSchemaError.invalidSchema("\(keyword) must be a non-empty array", at: here)
                }
                for (i, sub) in subschemas.enumerated() { try check(sub, at: "\(here)/\(i)") }
            case "type":
                let names: [ContractJSON]
                if case .array(let list) = value { names = list } else { names = [value] }
                for name in names {
                    guard case .string(let n) = name, typeNames.contains(n) else {
                        throw ContractSchemaError.invalidSchema("unknown type", at: here)
                    }
                }
            case "required":
                guard case .array(let list) = value, list.allSatisfy({ if case .string = $0 { true } else { false } }) else {
                    throw ContractSchemaError.invalidSchema("required must be an array of strings", at: here)
                }
            case "enum":
                guard case .array = value else { throw ContractSchemaError.invalidSchema("enum must be an array", at: here) }
            case "pattern":
                guard case .string(let p) = value, (try? compilePattern(p)) != nil else {
                    throw ContractSchemaError.invalidSchema("pattern must be a valid regular expression", at: here)
                }
            case "minLength", "maxLength":
                guard case .integer(let n) = value, n >= 0 else {
                    throw ContractSchemaError.invalidSchema("\(keyword) must be a non-negative integer", at: here)
                }
            case "minimum", "maximum":
                guard value.numberValue != nil else { throw ContractSchemaError.invalidSchema("\(keyword) must be a number", at: here) }
            case "$ref":
                guard case .string(let ref) = value, ref.hasPrefix("#/$defs/") else {
                    throw ContractSchemaError.invalidSchema("only #/$defs/<name> references are supported", at: here)
                }
            default:
                break // const: any value
            }
        }
        if schema["then"] != nil, schema["if"] == nil {
            throw ContractSchemaError.invalidSchema("then without if", at: location)
        }
    }

    private static func checkSchemaMap(_ value: ContractJSON, at location: String) throws {
        guard case .object(let members) = value else {
            throw ContractSchemaError.invalidSchema("expected an object of schemas", at: location)
        }
        for (name, sub) in members { try check(sub, at: "\(location)/\(escapePointer(name))") }
    }

    /// ICU's `$` also matches before a final line break, ECMA-262's (which JSON Schema uses) does
    /// not; so a trailing `$` becomes `\z`, or "order-42\n" would pass the workflowId pattern.
    static func compilePattern(_ pattern: String) throws -> NSRegularExpression {
        var icu = pattern
        if icu.hasSuffix("$"), !icu.hasSuffix("\\$") || icu.hasSuffix("\\\\$") {
            icu = String(icu.dropLast()) + "\\z"
        }
        return try NSRegularExpression(pattern: icu)
    }

    static func escapePointer(_ token: String) -> String {
        token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    // MARK: Validating an instance

    private func resolve(_ ref: String) -> ContractJSON? {
        let name = String(ref.dropFirst("#/$defs/".count))
            .replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        return root["$defs"]?[name]
    }

    private func conforms(_ instance: ContractJSON, to schema: ContractJSON, path: String) -> Bool {
        var scratch: [SchemaViolation] = []
        validate(instance, against: schema, path: path, into: &scratch)
        return scratch.isEmpty
    }

    private func validate(_ instance: ContractJSON, against schema: ContractJSON, path: String, into out: inout [SchemaViolation]) {
        if case .bool(let allowed) = schema {
            if !allowed { out.append(SchemaViolation(path: path, keyword: "false", message: "no value is allowed here")) }
            return
        }
        guard case .object(let keywords) = schema else { return }
        for (keyword, value) in keywords {
            switch keyword {
            case "$ref":
                guard case .string(let ref) = value, let target = resolve(ref) else {
                    out.append(SchemaViolation(path: path, keyword: "$ref", message: "unresolvable reference"))
                    continue
                }
                validate(instance, against: target, path: path, into: &out)

            case "type":
                let allowed: [String]
                switch value {
                case .string(let name): allowed = [name]
                case .array(let names): allowed = names.compactMap { if case .string(let n) = $0 { n } else { nil } }
                default: allowed = []
                }
                if instance.schemaTypes.isDisjoint(with: allowed) {
                    out.append(SchemaViolation(path: path, keyword: "type",
                                               message: "expected \(allowed.joined(separator: " or ")), found \(Self.describe(instance))"))
                }

            case "enum":
                if case .array(let options) = value, !options.contains(instance) {
                    out.append(SchemaViolation(path: path, keyword: "enum",
                                               message: "\(Self.describe(instance)) is not one of \(options.map(Self.describe).joined(separator: ", "))"))
                }

            case "const":
                if instance != value {
                    out.append(SchemaViolation(path: path, keyword: "const",
                                               message: "expected \(Self.describe(value)), found \(Self.describe(instance))"))
                }

            case "required":
                guard case .object(let members) = instance, case .array(let names) = value else { continue }
                let present = Set(members.map(\.0))
                for case .string(let name) in names where !present.contains(name) {
                    out.append(SchemaViolation(path: "\(path)/\(Self.escapePointer(name))", keyword: "required",
                                               message: "missing required member \"\(name)\""))
                }

            case "properties":
                guard case .object(let members) = instance else { continue }
                for (name, member) in members {
                    if let sub = value[name] {
                        validate(member, against: sub, path: "\(path)/\(Self.escapePointer(name))", into: &out)
                    }
                }

            case "additionalProperties":
                guard case .object(let members) = instance else { continue }
                for (name, member) in members where schema["properties"]?[name] == nil {
                    validate(member, against: value, path: "\(path)/\(Self.escapePointer(name))", into: &out)
                }

            case "items":
                guard case .array(let items) = instance else { continue }
                for (i, item) in items.enumerated() {
                    validate(item, against: value, path: "\(path)/\(i)", into: &out)
                }

            case "pattern":
                guard case .string(let text) = instance, case .string(let pattern) = value,
                      let regex = try? Self.compilePattern(pattern) else { continue }
                let range = NSRange(text.startIndex..., in: text)
                if regex.firstMatch(in: text, range: range) == nil {
                    out.append(SchemaViolation(path: path, keyword: "pattern",
                                               message: "\(Self.describe(instance)) does not match \(pattern)"))
                }

            case "minLength", "maxLength":
                guard case .string(let text) = instance, case .integer(let bound) = value else { continue }
                let length = Int64(text.unicodeScalars.count) // JSON Schema counts code points
                if keyword == "minLength" ? length < bound : length > bound {
                    out.append(SchemaViolation(path: path, keyword: keyword,
                                               message: "length \(length) is \(keyword == "minLength" ? "below" : "above") \(bound)"))
                }

            case "minimum", "maximum":
                guard let number = instance.numberValue, let bound = value.numberValue else { continue }
                if keyword == "minimum" ? number < bound : number > bound {
                    out.append(SchemaViolation(path: path, keyword: keyword,
                                               message: "\(Self.describe(instance)) is \(keyword == "minimum" ? "below" : "above") \(Self.describe(value))"))
                }

            case "allOf":
                guard case .array(let subschemas) = value else { continue }
                for sub in subschemas { validate(instance, against: sub, path: path, into: &out) }

            case "anyOf":
                guard case .array(let subschemas) = value else { continue }
                if !subschemas.contains(where: { conforms(instance, to: $0, path: path) }) {
                    out.append(SchemaViolation(path: path, keyword: "anyOf", message: "matches none of the \(subschemas.count) alternatives"))
                }

            case "oneOf":
                guard case .array(let subschemas) = value else { continue }
                let matches = subschemas.filter { conforms(instance, to: $0, path: path) }.count
                if matches != 1 {
                    out.append(SchemaViolation(path: path, keyword: "oneOf",
                                               message: "matches \(matches) of the \(subschemas.count) alternatives, expected exactly 1"))
                }

            case "if":
                // The condition only selects; its own failures are never reported.
                if conforms(instance, to: value, path: path), let then = schema["then"] {
                    validate(instance, against: then, path: path, into: &out)
                }

            default:
                break // then (handled with if), annotations, $defs
            }
        }
    }

    static func describe(_ value: ContractJSON) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): String(b)
        case .integer(let i): String(i)
        case .double(let d): String(d)
        case .string(let s): "\"\(s)\""
        case .array(let items): "array of \(items.count)"
        case .object: "object"
        }
    }
}

/// The project's contract schemas (schemas/<name>.schema.json), located from this source file so
/// any test can use them.
enum ContractSchemas {
    /// Every message of the wire contract, by schema name.
    static let names = ["start", "cancel", "event", "control", "completion", "replay", "control-result", "dead-letter"]

    /// The project's root folder: the nearest ancestor of this file holding schemas/ and Package.swift.
    static func repositoryRoot(filePath: String = #filePath) -> URL {
        // Resolve symlinks first, so a package that links this folder in still finds the real tree.
        var dir = URL(fileURLWithPath: filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        let fm = FileManager.default
        while dir.path != "/" {
            if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
               fm.fileExists(atPath: dir.appendingPathComponent("schemas").path) {
                return dir
            }
            dir = dir.deletingLastPathComponent()
        }
        // Fall back to the layout: Tests/ShardflowTests/Contract/<file>.
        return URL(fileURLWithPath: filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var directory: URL { repositoryRoot().appendingPathComponent("schemas") }

    static func schemaURL(_ name: String) -> URL {
        directory.appendingPathComponent("\(name).schema.json")
    }

    static func validator(for name: String) throws -> ContractSchemaValidator {
        let url = schemaURL(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ContractSchemaError.schemaNotFound(url.path)
        }
        return try ContractSchemaValidator(schema: data)
    }

    /// Violations of schema `name` (e.g. "completion") by the JSON message in `data`; empty when valid.
    /// Throws when the data is not JSON or the schema is missing or uses an unsupported keyword.
    static func validate(_ data: Data, against name: String) throws -> [SchemaViolation] {
        try validator(for: name).validate(data)
    }

    static func validate(_ text: String, against name: String) throws -> [SchemaViolation] {
        try validate(Data(text.utf8), against: name)
    }
}
