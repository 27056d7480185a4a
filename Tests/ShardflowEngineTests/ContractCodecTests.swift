import Foundation
@testable import ShardflowEngine
import ShardflowJSON
import Testing

@Suite struct ContractCodecTests {
    @Test func jsonValuesRoundTripThroughTheReaderAndWriter() throws {
        let text = #"{"a":[1,-2.5,true,null,"x\"y\\z\u00e9\ud83d\ude00"],"b":{"c":1e3},"d":""}"#
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value["a"] == .array([.int(1), .double(-2.5), .bool(true), .null, .string("x\"y\\zé😀")]))
        #expect(value["b"]?["c"] == .double(1000))
        let again = try JSONValue.parse(value.jsonBytes())
        #expect(again == value)
        let viaFoundation = try JSONDecoder().decode(JSONValue.self, from: Data(value.jsonBytes()))
        #expect(viaFoundation == value)
    }

    @Test func parseErrorsGiveTheBytePosition() {
        let cases: [(String, String)] = [
            ("[1,]", "invalid JSON at byte 3: unexpected character ']'"),
            ("{\"a\" 1}", "invalid JSON at byte 5: expected ':'"),
            ("\"open", "invalid JSON at byte 5: unterminated string"),
            ("1 2", "invalid JSON at byte 2: unexpected data after the value"),
        ]
        for (text, expected) in cases {
            #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
            do {
                _ = try JSONValue.parse(Array(text.utf8))
            } catch {
                #expect(String(describing: error) == expected)
            }
        }
    }

    @Test func outboundMessagesCarryTheContractFieldsAndNulls() throws {
        let completion = CompletionEvent(eventId: "c-7-000000123", workflowId: "order-42", workflow: "summarize", shard: 7,
                                         status: .succeeded, result: .object(["summary": .string("ok")]), error: nil,
                                         createdAt: 1, completedAt: 2, steps: 3)
        let text = String(decoding: try completion.contractJSON(), as: UTF8.self)
        #expect(text == #"{"eventId":"c-7-000000123","workflowId":"order-42","workflow":"summarize","shard":7,"status":"succeeded","result":{"summary":"ok"},"error":null,"createdAt":1,"completedAt":2,"steps":3}"#)
        #expect(try JSONDecoder().decode(CompletionEvent.self, from: Data(text.utf8)) == completion)

        let result = ControlResult(commandId: "ops-1", type: "failPendingTasks", shard: 7, status: .applied, epoch: 3,
                                   affected: AffectedCounts(tasks: 120, workflows: 118, replayEntries: 118),
                                   stuckWorkflows: 0, error: nil, at: 5)
        let resultText = String(decoding: try result.contractJSON(), as: UTF8.self)
        #expect(resultText.contains(#""affected":{"tasks":120,"workflows":118,"replayEntries":118}"#))
        #expect(resultText.contains(#""error":null"#))
        #expect(try JSONDecoder().decode(ControlResult.self, from: Data(resultText.utf8)) == result)

        let replay = ReplayEvent(eventId: "r-7-000000456", workflowId: "order-42", workflow: "summarize", shard: 7,
                                 generation: 2, at: 4, trigger: .step,
                                 consumed: [.init(stepId: 1, name: "draft", status: "succeeded", attempts: 1)],
                                 scheduled: [.init(stepId: 2, name: "critique")], outcome: .waiting)
        let replayText = try replay.contractJSON()
        #expect(try JSONDecoder().decode(ReplayEvent.self, from: Data(replayText)) == replay)
    }

    @Test func aCompletionWritesTheEncodedResultAsParsingAndWritingItAgainWould() throws {
        struct Nested: Codable { var b: [Double?]; var a: String }
        let results: [String] = [
            try JSONCoding.encodeString(42),
            try JSONCoding.encodeString(-0.1),
            try JSONCoding.encodeString(1e300),
            try JSONCoding.encodeString("quote \" backslash \\ tab \t é 😀 \u{1}"),
            try JSONCoding.encodeString([String: Int]()),
            try JSONCoding.encodeString(["z": 1, "a": 2, "m": 3]),
            try JSONCoding.encodeString(Nested(b: [1.5, nil, 3], a: "x")),
            try JSONCoding.encodeString(JSONValue.null),
        ]
        for text in results {
            let parsed = try JSONValue.parse(Array(text.utf8))
            let event = CompletionEvent(eventId: "c-1-000000001", workflowId: "w", workflow: "f", shard: 1, status: .succeeded,
                                        result: parsed, error: nil, createdAt: 1, completedAt: 2, steps: 1)
            var withoutResult = event
            withoutResult.result = nil
            let written = withoutResult.contractJSON(encodedResult: text)
            #expect(written == (try event.contractJSON()), "result \(text)")
            // (A null result reads back as no result, as the contract writes both alike.)
            #expect(try JSONDecoder().decode(CompletionEvent.self, from: Data(written)).result == (parsed == .null ? nil : parsed))
        }
    }

    @Test func inboundDecodingValidatesWorkflowIds() {
        #expect(InboundDecoding.isValidWorkflowId("order-42:a_b.c"))
        #expect(!InboundDecoding.isValidWorkflowId(""))
        #expect(!InboundDecoding.isValidWorkflowId(String(repeating: "a", count: 201)))
        #expect(!InboundDecoding.isValidWorkflowId("no spaces"))
    }
}
