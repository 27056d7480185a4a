import Foundation
import Testing

// The validator itself: each keyword it claims to support must be able to fail, and a keyword it
// does not support must stop the schema from loading.

@Suite("Contract JSON Schema validator")
struct JSONSchemaValidatorTests {
    func violations(_ schema: String, _ instance: String) throws -> [SchemaViolation] {
        try ContractSchemaValidator(schema: Data(schema.utf8)).validate(Data(instance.utf8))
    }

    @Test("unknown keywords make loading throw, also deep inside a schema", arguments: [
        #"{"format": "email"}"#,
        #"{"properties": {"a": {"minItems": 1}}}"#,
        #"{"$defs": {"x": {"patternProperties": {}}}}"#,
        #"{"anyOf": [{"type": "string"}, {"not": {}}]}"#,
        #"{"if": {"type": "string"}, "else": {}}"#,
    ])
    func unknownKeywordThrows(schema: String) {
        #expect(throws: ContractSchemaError.self) { _ = try ContractSchemaValidator(schema: Data(schema.utf8)) }
    }

    @Test("malformed keyword values make loading throw", arguments: [
        #"{"type": "text"}"#, #"{"required": "a"}"#, #"{"pattern": "("}"#, #"{"minLength": -1}"#,
        #"{"$ref": "other.json#/x"}"#, #"{"then": {}}"#, #"{"oneOf": []}"#,
    ])
    func malformedKeywordThrows(schema: String) {
        #expect(throws: ContractSchemaError.self) { _ = try ContractSchemaValidator(schema: Data(schema.utf8)) }
    }

    @Test("annotations are ignored")
    func annotationsIgnored() throws {
        let schema = #"{"$schema": "x", "$id": "y", "title": "t", "description": "d", "$comment": "c", "examples": [{"format": 1}]}"#
        #expect(try violations(schema, "1").isEmpty)
    }

    @Test("type, including arrays of types and integer-valued numbers")
    func types() throws {
        #expect(try violations(#"{"type": "integer"}"#, "3").isEmpty)
        #expect(try violations(#"{"type": "integer"}"#, "3.0").isEmpty)
        #expect(try violations(#"{"type": "integer"}"#, "3.5").map(\.keyword) == ["type"])
        #expect(try violations(#"{"type": "number"}"#, "3").isEmpty)
        #expect(try violations(#"{"type": "boolean"}"#, "0").map(\.keyword) == ["type"])
        #expect(try violations(#"{"type": ["string", "null"]}"#, "null").isEmpty)
        #expect(try violations(#"{"type": ["string", "null"]}"#, "{}").map(\.keyword) == ["type"])
    }

    @Test("required, properties and additionalProperties give JSON pointer paths")
    func objectKeywords() throws {
        let schema = #"{"required": ["a/b", "c"], "properties": {"c": {"type": "string"}}, "additionalProperties": {"type": "integer"}}"#
        let found = try violations(schema, #"{"c": 1, "x~y": "s"}"#)
        #expect(Set(found.map(\.path)) == ["/a~1b", "/c", "/x~0y"])
        #expect(try violations(#"{"additionalProperties": false}"#, #"{"k": 1}"#).map(\.path) == ["/k"])
        #expect(try violations(#"{"additionalProperties": true}"#, #"{"k": 1}"#).isEmpty)
    }

    @Test("enum and const compare structurally")
    func enumConst() throws {
        #expect(try violations(#"{"enum": ["a", 1, {"k": [true]}]}"#, #"{"k": [true]}"#).isEmpty)
        #expect(try violations(#"{"enum": ["a", 1]}"#, "1.0").isEmpty)
        #expect(try violations(#"{"enum": ["a", 1]}"#, #""b""#).map(\.keyword) == ["enum"])
        #expect(try violations(#"{"const": {"a": 1, "b": 2}}"#, #"{"b": 2, "a": 1}"#).isEmpty)
        #expect(try violations(#"{"const": "x"}"#, #""y""#).map(\.keyword) == ["const"])
    }

    @Test("pattern, minLength and maxLength (lengths in code points)")
    func strings() throws {
        #expect(try violations(#"{"pattern": "^a+$"}"#, #""aaa""#).isEmpty)
        #expect(try violations(#"{"pattern": "^a+$"}"#, #""aab""#).map(\.keyword) == ["pattern"])
        #expect(try violations(#"{"pattern": "^a+$"}"#, #""a\n""#).map(\.keyword) == ["pattern"])
        #expect(try violations(#"{"pattern": "b"}"#, #""abc""#).isEmpty) // unanchored: a search
        #expect(try violations(#"{"maxLength": 2}"#, #""\ud83d\ude00é""#).isEmpty)
        #expect(try violations(#"{"maxLength": 2}"#, #""abc""#).map(\.keyword) == ["maxLength"])
        #expect(try violations(#"{"minLength": 1}"#, #""""#).map(\.keyword) == ["minLength"])
        #expect(try violations(#"{"minLength": 5}"#, "12").isEmpty) // applies to strings only
    }

    @Test("minimum and maximum")
    func numbers() throws {
        #expect(try violations(#"{"minimum": 0, "maximum": 10}"#, "0").isEmpty)
        #expect(try violations(#"{"minimum": 0}"#, "-0.5").map(\.keyword) == ["minimum"])
        #expect(try violations(#"{"maximum": 10}"#, "11").map(\.keyword) == ["maximum"])
    }

    @Test("items applies to every element")
    func items() throws {
        let found = try violations(#"{"items": {"type": "integer"}}"#, #"[1, "x", 3, null]"#)
        #expect(found.map(\.path) == ["/1", "/3"])
    }

    @Test("oneOf, anyOf and allOf")
    func combinators() throws {
        let oneOf = #"{"oneOf": [{"type": "integer"}, {"minimum": 5}]}"#
        #expect(try violations(oneOf, "1").isEmpty)
        #expect(try violations(oneOf, "7").map(\.keyword) == ["oneOf"]) // both match
        let anyOf = #"{"anyOf": [{"type": "string"}, {"type": "null"}]}"#
        #expect(try violations(anyOf, "null").isEmpty)
        #expect(try violations(anyOf, "1").map(\.keyword) == ["anyOf"])
        let allOf = #"{"allOf": [{"type": "integer"}, {"minimum": 5}]}"#
        #expect(try violations(allOf, "1").map(\.keyword) == ["minimum"])
    }

    @Test("if/then applies then only when if holds")
    func ifThen() throws {
        let schema = #"{"if": {"properties": {"s": {"const": "failed"}}, "required": ["s"]}, "then": {"required": ["e"]}}"#
        #expect(try violations(schema, #"{"s": "ok"}"#).isEmpty)
        #expect(try violations(schema, #"{}"#).isEmpty)
        #expect(try violations(schema, #"{"s": "failed"}"#).map(\.path) == ["/e"])
    }

    @Test("$ref to #/$defs")
    func refs() throws {
        let schema = ##"{"$defs": {"id": {"type": "string", "minLength": 2}}, "properties": {"a": {"$ref": "#/$defs/id"}}}"##
        #expect(try violations(schema, #"{"a": "xy"}"#).isEmpty)
        #expect(try violations(schema, #"{"a": "x"}"#).map(\.path) == ["/a"])
        #expect(try violations(##"{"$ref": "#/$defs/missing"}"##, "1").map(\.keyword) == ["$ref"])
    }

    @Test("boolean schemas")
    func booleanSchemas() throws {
        #expect(try violations("true", "1").isEmpty)
        #expect(try violations("false", "1").count == 1)
    }

    @Test("the JSON parser is strict", arguments: [
        "", "{", "[1,]", #"{"a" 1}"#, "01", "1.", "tru", #""a"#, "{} x", "\"\u{01}\"", #""\x""#, "-",
    ])
    func strictParser(text: String) {
        #expect(throws: ContractSchemaError.self) { _ = try ContractJSON.parse(text) }
    }

    @Test("the JSON parser keeps values, escapes and number kinds")
    func parserValues() throws {
        let value = try ContractJSON.parse(#" {"s": "a\"\\\/\n\u00e9\ud83d\ude00", "i": -12, "d": 1.5e2, "b": [true, false, null]} "#)
        #expect(value["s"] == .string("a\"\\/\né😀"))
        #expect(value["i"] == .integer(-12))
        #expect(value["d"] == .double(150))
        #expect(value["b"] == .array([.bool(true), .bool(false), .null]))
        #expect(try ContractJSON.parse("9223372036854775808") == .double(9223372036854775808))
    }
}
