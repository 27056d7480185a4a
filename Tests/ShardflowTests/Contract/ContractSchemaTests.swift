import Foundation
import Testing

// The schemas in schemas/ against the contract's own examples and against broken messages, so a
// schema that is too loose or too strict fails here.

@Suite("Contract schemas")
struct ContractSchemaTests {
    static func example(_ name: String) throws -> Data {
        let url = ContractSchemas.directory.appendingPathComponent("examples/\(name).json")
        return try #require(FileManager.default.contents(atPath: url.path), "missing example \(url.path)")
    }

    @Test("every schema loads: draft 2020-12, only supported keywords, unknown fields allowed",
          arguments: ContractSchemas.names)
    func schemaLoads(name: String) throws {
        let validator = try ContractSchemas.validator(for: name)
        #expect(validator.root["$schema"] == .string("https://json-schema.org/draft/2020-12/schema"))
        #expect(validator.root["type"] == .string("object"))
        #expect(validator.root["additionalProperties"] == .bool(true))
        #expect(validator.root["required"] != nil)
    }

    @Test("schemas/ holds exactly one schema per contract message")
    func schemaSetIsComplete() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: ContractSchemas.directory.path)
            .filter { $0.hasSuffix(".schema.json") }
            .map { String($0.dropLast(".schema.json".count)) }
        #expect(Set(files) == Set(ContractSchemas.names))
    }

    @Test("the contract's own example validates", arguments: ContractSchemas.names)
    func exampleValidates(name: String) throws {
        let violations = try ContractSchemas.validate(Self.example(name), against: name)
        #expect(violations.isEmpty, "\(violations)")
    }

    @Test("an example is not accepted by another message's schema", arguments: [
        ("start", "cancel"), ("cancel", "event"), ("event", "start"), ("control", "control-result"),
        ("completion", "replay"), ("replay", "completion"), ("control-result", "replay"),
        ("dead-letter", "completion"),
    ])
    func exampleRejectedElsewhere(example: String, schema: String) throws {
        let violations = try ContractSchemas.validate(Self.example(example), against: schema)
        #expect(!violations.isEmpty)
    }

    @Test("unknown fields are allowed (forward compatible)", arguments: ContractSchemas.names)
    func unknownFieldsAllowed(name: String) throws {
        var json = try ContractJSON.parse(Self.example(name))
        guard case .object(var members) = json else { Issue.record("example is not an object"); return }
        members.append(("someFutureField", .object([("nested", .array([.integer(1)]))])))
        json = .object(members)
        #expect(try ContractSchemas.validator(for: name).validate(json).isEmpty)
    }

    struct Valid: CustomTestStringConvertible, Sendable {
        var schema: String
        var json: String
        var testDescription: String { "\(schema): \(json)" }
    }

    static let validMessages: [Valid] = [
        Valid(schema: "start", json: #"{"type":"start","workflowId":"a","workflow":"noop","args":null}"#),
        Valid(schema: "start", json: #"{"type":"start","workflowId":"A.b_c:d-9","workflow":"w","args":[1,"x"],"createdAt":0}"#),
        Valid(schema: "start", json: #"{"type":"start","workflowId":"\#(String(repeating: "x", count: 200))","workflow":"w","args":{}}"#),
        Valid(schema: "cancel", json: #"{"type":"cancel","workflowId":"order-42"}"#),
        Valid(schema: "event", json: #"{"type":"event","workflowId":"w1","name":"approval","value":false}"#),
        Valid(schema: "control", json: #"{"type":"bumpEpoch","shard":0,"commandId":"c1"}"#),
        Valid(schema: "completion", json: #"{"eventId":"c-1-1","workflowId":"w","workflow":"f","shard":1,"status":"failed","result":null,"error":{"message":"boom","step":"draft"},"createdAt":1,"completedAt":2,"steps":1}"#),
        Valid(schema: "completion", json: #"{"eventId":"c-1-2","workflowId":"w","workflow":"f","shard":1,"status":"failed","result":null,"error":{"message":"bad args","step":null},"createdAt":1,"completedAt":2,"steps":0}"#),
        Valid(schema: "completion", json: #"{"eventId":"c-1-3","workflowId":"w","workflow":"f","shard":1,"status":"canceled","result":null,"error":null,"createdAt":1,"completedAt":2,"steps":0}"#),
        Valid(schema: "completion", json: #"{"eventId":"c-1-4","workflowId":"w","workflow":"f","shard":1,"status":"succeeded","result":"text","error":null,"createdAt":1.0,"completedAt":2,"steps":2}"#),
        Valid(schema: "replay", json: #"{"eventId":"r-0-1","workflowId":"w","workflow":"f","shard":0,"generation":1,"at":5,"trigger":"start","consumed":[],"scheduled":[{"stepId":1,"name":"a"},{"stepId":2,"name":"b"}],"outcome":"waiting"}"#),
        Valid(schema: "replay", json: #"{"eventId":"r-0-2","workflowId":"w","workflow":"f","shard":0,"generation":3,"at":5,"trigger":"operator","consumed":[{"stepId":1,"name":"a","status":"failed","attempts":0}],"scheduled":[],"outcome":"completed"}"#),
        Valid(schema: "control-result", json: #"{"commandId":"c2","type":"frobnicate","shard":3,"status":"rejected","epoch":1,"affected":{"tasks":0,"workflows":0,"replayEntries":0},"stuckWorkflows":0,"error":"unknown type frobnicate","at":9}"#),
        Valid(schema: "control-result", json: #"{"commandId":null,"type":null,"shard":3,"status":"rejected","epoch":1,"affected":{"tasks":0,"workflows":0,"replayEntries":0},"stuckWorkflows":0,"error":"malformed command","at":9}"#),
        Valid(schema: "dead-letter", json: #"{"sourceTopic":"shardflow.control","partition":0,"offset":0,"key":null,"value":"/w==","valueEncoding":"base64","error":"not UTF-8","at":1}"#),
    ]

    @Test("other valid messages validate", arguments: validMessages)
    func validMessageValidates(message: Valid) throws {
        let violations = try ContractSchemas.validate(message.json, against: message.schema)
        #expect(violations.isEmpty, "\(violations)")
    }

    struct Broken: CustomTestStringConvertible, Sendable {
        var why: String
        var schema: String
        /// The contract example with these top-level members replaced (nil value = removed).
        var changes: [(String, String?)]
        var path: String
        var keyword: String
        var testDescription: String { "\(schema): \(why)" }
    }

    static let brokenMessages: [Broken] = [
        Broken(why: "missing workflowId", schema: "start", changes: [("workflowId", nil)], path: "/workflowId", keyword: "required"),
        Broken(why: "missing args", schema: "start", changes: [("args", nil)], path: "/args", keyword: "required"),
        Broken(why: "wrong type const", schema: "start", changes: [("type", #""begin""#)], path: "/type", keyword: "const"),
        Broken(why: "workflowId with a space", schema: "start", changes: [("workflowId", #""order 42""#)], path: "/workflowId", keyword: "pattern"),
        Broken(why: "workflowId with a slash", schema: "cancel", changes: [("workflowId", #""a/b""#)], path: "/workflowId", keyword: "pattern"),
        Broken(why: "workflowId ending in a line break", schema: "event", changes: [("workflowId", #""order-42\n""#)], path: "/workflowId", keyword: "pattern"),
        Broken(why: "empty workflowId", schema: "start", changes: [("workflowId", #""""#)], path: "/workflowId", keyword: "pattern"),
        Broken(why: "workflowId of 201 characters", schema: "start",
               changes: [("workflowId", "\"\(String(repeating: "x", count: 201))\"")], path: "/workflowId", keyword: "maxLength"),
        Broken(why: "createdAt as a string", schema: "start", changes: [("createdAt", #""1795900000000""#)], path: "/createdAt", keyword: "type"),
        Broken(why: "createdAt with a fraction", schema: "start", changes: [("createdAt", "1795900000000.5")], path: "/createdAt", keyword: "type"),
        Broken(why: "numeric workflowId", schema: "cancel", changes: [("workflowId", "42")], path: "/workflowId", keyword: "type"),
        Broken(why: "reason not a string", schema: "cancel", changes: [("reason", "true")], path: "/reason", keyword: "type"),
        Broken(why: "missing event name", schema: "event", changes: [("name", nil)], path: "/name", keyword: "required"),
        Broken(why: "unknown control type", schema: "control", changes: [("type", #""failEverything""#)], path: "/type", keyword: "enum"),
        Broken(why: "negative shard", schema: "control", changes: [("shard", "-1")], path: "/shard", keyword: "minimum"),
        Broken(why: "missing commandId", schema: "control", changes: [("commandId", nil)], path: "/commandId", keyword: "required"),
        Broken(why: "bad status", schema: "completion", changes: [("status", #""done""#)], path: "/status", keyword: "enum"),
        Broken(why: "failed without error", schema: "completion", changes: [("status", #""failed""#)], path: "/error", keyword: "type"),
        Broken(why: "error without step", schema: "completion",
               changes: [("status", #""failed""#), ("error", #"{"message":"boom"}"#)], path: "/error/step", keyword: "required"),
        Broken(why: "error as a string", schema: "completion", changes: [("error", #""boom""#)], path: "/error", keyword: "type"),
        Broken(why: "error step a number", schema: "completion",
               changes: [("status", #""failed""#), ("error", #"{"message":"boom","step":2}"#)], path: "/error/step", keyword: "type"),
        Broken(why: "missing result", schema: "completion", changes: [("result", nil)], path: "/result", keyword: "required"),
        Broken(why: "completedAt as a string", schema: "completion", changes: [("completedAt", #""later""#)], path: "/completedAt", keyword: "type"),
        Broken(why: "bad trigger", schema: "replay", changes: [("trigger", #""manual""#)], path: "/trigger", keyword: "enum"),
        Broken(why: "bad outcome", schema: "replay", changes: [("outcome", #""running""#)], path: "/outcome", keyword: "enum"),
        Broken(why: "consumed step without attempts", schema: "replay",
               changes: [("consumed", #"[{"stepId":1,"name":"draft","status":"succeeded"}]"#)], path: "/consumed/0/attempts", keyword: "required"),
        Broken(why: "scheduled stepId as a string", schema: "replay",
               changes: [("scheduled", #"[{"stepId":"2","name":"critique"}]"#)], path: "/scheduled/0/stepId", keyword: "type"),
        Broken(why: "bad control-result status", schema: "control-result", changes: [("status", #""ok""#)], path: "/status", keyword: "enum"),
        Broken(why: "affected without replayEntries", schema: "control-result",
               changes: [("affected", #"{"tasks":1,"workflows":1}"#)], path: "/affected/replayEntries", keyword: "required"),
        Broken(why: "applied with an error", schema: "control-result", changes: [("error", #""oops""#)], path: "/error", keyword: "type"),
        Broken(why: "applied with an unknown type", schema: "control-result", changes: [("type", #""frobnicate""#)], path: "/type", keyword: "enum"),
        Broken(why: "rejected without a reason", schema: "control-result", changes: [("status", #""rejected""#)], path: "/error", keyword: "type"),
        Broken(why: "error as an object", schema: "control-result", changes: [("error", #"{"message":"x"}"#)], path: "/error", keyword: "type"),
        Broken(why: "missing stuckWorkflows", schema: "control-result", changes: [("stuckWorkflows", nil)], path: "/stuckWorkflows", keyword: "required"),
        Broken(why: "bad valueEncoding", schema: "dead-letter", changes: [("valueEncoding", #""hex""#)], path: "/valueEncoding", keyword: "enum"),
        Broken(why: "offset as a string", schema: "dead-letter", changes: [("offset", #""991""#)], path: "/offset", keyword: "type"),
        Broken(why: "missing error", schema: "dead-letter", changes: [("error", nil)], path: "/error", keyword: "required"),
    ]

    /// The example of `schema` with `changes` applied to its top-level members.
    static func mutatedExample(_ broken: Broken) throws -> ContractJSON {
        guard case .object(var members) = try ContractJSON.parse(example(broken.schema)) else {
            throw ContractSchemaError.invalidJSON("example is not an object")
        }
        for (key, replacement) in broken.changes {
            members.removeAll { $0.0 == key }
            if let replacement { members.append((key, try ContractJSON.parse(replacement))) }
        }
        return .object(members)
    }

    @Test("a broken message fails at the expected path", arguments: brokenMessages)
    func brokenMessageFails(broken: Broken) throws {
        let violations = try ContractSchemas.validator(for: broken.schema).validate(Self.mutatedExample(broken))
        #expect(violations.contains { $0.path == broken.path && $0.keyword == broken.keyword },
                "expected \(broken.keyword) at \(broken.path), got \(violations)")
    }

    @Test("docs/contract.md shows exactly the examples in schemas/examples")
    func docsMatchExamples() throws {
        let docURL = ContractSchemas.repositoryRoot().appendingPathComponent("docs/contract.md")
        let doc = try String(contentsOf: docURL, encoding: .utf8)
        let blocks = doc.components(separatedBy: "```json\n").dropFirst()
            .map { $0.components(separatedBy: "```").first ?? "" }
        let documented = try blocks.map { try ContractJSON.parse($0) }
        let examples = try ContractSchemas.names.map { try ContractJSON.parse(Self.example($0)) }
        #expect(documented.count == examples.count)
        for (name, example) in zip(ContractSchemas.names, examples) {
            #expect(documented.contains(example), "docs/contract.md lacks the \(name) example")
        }
    }

    @Test("a message that is not JSON throws")
    func notJSONThrows() {
        #expect(throws: ContractSchemaError.self) {
            _ = try ContractSchemas.validate(#"{"type": "start", "#, against: "start")
        }
    }

    @Test("a message that is not an object fails at the root")
    func notObjectFails() throws {
        let violations = try ContractSchemas.validate("[1, 2]", against: "cancel")
        #expect(violations.contains { $0.path == "" && $0.keyword == "type" })
    }
}
