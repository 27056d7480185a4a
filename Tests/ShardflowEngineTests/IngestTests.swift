import Foundation
import Testing
@testable import ShardflowEngine

@Suite struct IngestTests {
    @Test func invalidMessagesBecomeDeadLettersWithPreciseReasons() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry(),
                                         configuration: ShardConfiguration(maxMessageBytes: 300))
        var factory = MessageFactory()
        let messages = [
            factory.raw(Array("{not json".utf8), key: "k1"),
            factory.raw([0xff, 0xfe, 0x7b], key: "k2"),
            factory.raw(Array(#"{"type":"start","workflow":"noop","args":{}}"#.utf8)),
            factory.raw(Array(#"{"type":"launch","workflowId":"a"}"#.utf8)),
            factory.raw(Array(#"{"type":"start","workflowId":"a","workflow":"nope","args":{}}"#.utf8), key: "a"),
            factory.raw(Array(#"{"type":"start","workflowId":"bad id!","workflow":"noop","args":{"steps":1}}"#.utf8)),
            factory.raw(Array(("{\"type\":\"start\",\"workflowId\":\"big\",\"workflow\":\"noop\",\"args\":\"" + String(repeating: "x", count: 400) + "\"}").utf8)),
            factory.raw([]),
            factory.raw(Array(#"{"type":"start","workflowId":"args","workflow":"noop","args":"not an object"}"#.utf8), key: "args"),
            factory.raw(Array("[1,2]".utf8)),
        ]
        let summary = try await shard.ingest(messages)
        #expect(summary.deadLetters == 10)
        #expect(summary.started == 0)
        let reader = OutboxReader(shard)
        try reader.drain()
        let reasons = reader.deadLetters.map(\.error)
        #expect(reasons[0] == "invalid JSON at byte 1: expected a string key")
        #expect(reasons[1] == "value is not UTF-8")
        #expect(reader.deadLetters[1].valueEncoding == .base64)
        #expect(reader.deadLetters[1].value == Data([0xff, 0xfe, 0x7b]).base64EncodedString())
        #expect(reasons[2] == "missing field workflowId")
        #expect(reasons[3] == "unknown type \"launch\"")
        #expect(reasons[4] == "unknown workflow \"nope\"")
        #expect(reasons[5].hasPrefix("invalid workflowId"))
        #expect(reasons[6].contains("larger than"))
        #expect(reasons[7] == "empty value")
        #expect(reasons[8].hasPrefix("args do not match workflow noop"))
        #expect(reasons[9] == "value is not a JSON object")
        #expect(reader.deadLetters[0].key == "k1")
        #expect(reader.deadLetters[0].offset == 0)
        #expect(reader.deadLetters[0].sourceTopic == "shardflow.workflows")
        let json = String(decoding: try reader.deadLetters[2].contractJSON(), as: UTF8.self)
        #expect(json.contains("\"key\":null"))
        #expect(try shard.nextOffsets().workflows == 10)
        await shard.close()
    }

    @Test func startsAreIdempotentAndOffsetsAreNotAppliedTwice() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        var factory = MessageFactory()
        let batch = [factory.start("once", "noop", .object(["steps": .int(1)])),
                     factory.start("once", "noop", .object(["steps": .int(1)]))]
        let first = try await shard.ingest(batch)
        #expect(first.started == 1)
        #expect(first.duplicateStarts == 1)
        let redelivered = try await shard.ingest(batch)
        #expect(redelivered.skipped == 2)
        #expect(redelivered.started == 0)
        #expect(try shard.nextOffsets().workflows == 2)
        try shard.start()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(1)
        try reader.drain()
        #expect(reader.completions["once"]?.count == 1)
        #expect(try shard.stats().workflowsByStatus == ["succeeded": 1])
        await shard.close()
    }

    @Test func controlMessagesAreDedupedAndRejectedWithReasons() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 3, registry: testRegistry())
        var factory = MessageFactory(shard: 3)
        let summary = try await shard.ingest([
            factory.control(#"{"type":"bumpEpoch","shard":3,"commandId":"cmd-1"}"#),
            factory.control(#"{"type":"bumpEpoch","shard":3,"commandId":"cmd-1"}"#),
            factory.control(#"{"type":"bumpEpoch","shard":4,"commandId":"cmd-2"}"#),
            factory.control(#"{"type":"explode","shard":3,"commandId":"cmd-3"}"#),
            factory.control(#"{"type":"bumpEpoch","shard":3}"#),
            factory.control("{oops"),
        ])
        #expect(summary.controlResults == 4)
        #expect(summary.deadLetters == 2)
        let reader = OutboxReader(shard)
        try reader.drain()
        let results = reader.controlResults
        #expect(results.count == 4)
        #expect(results[0].status == .applied && results[0].epoch == 1)
        #expect(results[1] == results[0])
        #expect(results[2].status == .rejected && results[2].error?.hasPrefix("wrong shard") == true)
        #expect(results[3].status == .rejected && results[3].error == "unknown type \"explode\"")
        #expect(reader.deadLetters.map(\.error).first == "missing field commandId")
        #expect(try shard.stats().epoch == 1)
        #expect(try shard.nextOffsets().control == 6)
        await shard.close()
    }

    @Test func acknowledgingDeletesExactlyTheGivenOutboxRows() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await Shard.open(directory: directory.path, shard: 0, registry: testRegistry())
        var factory = MessageFactory()
        _ = try await shard.ingest((0..<8).map { _ in factory.raw(Array("{not json".utf8)) })
        let ids = try shard.pendingOutbox().map(\.id)
        #expect(ids.count == 8)
        // Runs and gaps, out of order, with a repeat.
        try shard.acknowledgeOutbox(ids: [ids[5], ids[0], ids[1], ids[3], ids[1], ids[7]])
        #expect(try shard.pendingOutbox().map(\.id) == [ids[2], ids[4], ids[6]])
        await shard.close()
    }
}
