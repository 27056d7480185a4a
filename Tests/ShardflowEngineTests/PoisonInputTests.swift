import Foundation
import ShardflowJSON
import Testing
@testable import ShardflowEngine

/// Hostile inputs and outputs that would not fit: each is applied, answered or dead-lettered, and
/// every outbox row fits what the broker accepts.
@Suite struct PoisonInputTests {
    func registry() -> WorkflowRegistry {
        var registry = testRegistry()
        registry.registerStep("big", input: Int.self, output: String.self) { size, _ in String(repeating: "x", count: size) }
        registry.registerWorkflow("big-result", args: Int.self, result: String.self) { ctx, size in
            try await ctx.run("big", size, as: String.self)
        }
        registry.registerStep("huge-error", input: Int.self, output: Int.self, retry: .atMostOnce) { size, _ in
            // A negative size: control characters, which take 6 bytes each once escaped in JSON.
            throw TestFailure(message: size < 0 ? String(repeating: "\u{1}", count: -size) : String(repeating: "e", count: size))
        }
        registry.registerWorkflow("huge-error", args: Int.self, result: Int.self) { ctx, size in
            try await ctx.run("huge-error", size, as: Int.self)
        }
        registry.registerStep("refuse", input: Int.self, output: Int.self) { _, _ in throw PermanentStepFailure("input refused") }
        registry.registerWorkflow("refused", args: Int.self, result: Int.self) { ctx, value in
            try await ctx.run("refuse", value, as: Int.self,
                              retry: RetryPolicy(maxAttempts: 5, initialBackoff: .seconds(30), multiplier: 2, maxBackoff: .seconds(60), jitter: 0))
        }
        registry.registerWorkflow("validated", args: Count.self, result: Count.self, validate: { args in
            try InvalidArgs.require("steps", args.steps, in: 0...10)
        }) { _, args in args }
        return registry
    }

    func open(_ directory: TemporaryDirectory, partitions: Int? = nil, clock: any EngineClock = SystemEngineClock(),
              quarantineAfter: Int = 2) async throws -> Shard {
        var configuration = ShardConfiguration()
        configuration.workflowsPartitionCount = partitions
        configuration.quarantineAfterCrashes = quarantineAfter
        return try await Shard.open(directory: directory.path, shard: 0, registry: registry(),
                                    configuration: configuration, clock: clock)
    }

    /// Every outbox row fits in one outbound message.
    func expectOutboxFits(_ shard: Shard) throws {
        for row in try shard.pendingOutbox(limit: 10_000) {
            #expect(row.key.utf8.count + row.value.count <= MessageLimits.maxOutboundBytes)
        }
    }

    @Test func murmur2MatchesKafkasPartitioner() {
        // Values from Kafka's own tests of Utils.murmur2.
        #expect(ShardRouting.murmur2(Array("21".utf8)) == -973_932_308)
        #expect(ShardRouting.murmur2(Array("foobar".utf8)) == -790_332_482)
        #expect(ShardRouting.murmur2(Array("a-little-bit-long-string".utf8)) == -985_981_536)
        #expect(ShardRouting.murmur2(Array("a-little-bit-longer-string".utf8)) == -1_486_304_829)
        #expect(ShardRouting.murmur2(Array("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8".utf8)) == -58_897_971)
        #expect((0..<1000).allSatisfy { (0..<100).contains(ShardRouting.partition(ofWorkflowId: "wf-\($0)", partitionCount: 100)) })
    }

    @Test func messagesOnTheWrongPartitionOrKeyAreDeadLetteredWithTheFix() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await open(directory, partitions: 100)
        var factory = MessageFactory()
        let home = (0..<10_000).map { "w-\($0)" }.first { ShardRouting.partition(ofWorkflowId: $0, partitionCount: 100) == 0 }!
        let away = (0..<10_000).map { "w-\($0)" }.first { ShardRouting.partition(ofWorkflowId: $0, partitionCount: 100) == 42 }!
        let cancel = CancelMessage(workflowId: home)
        let summary = try await shard.ingest([
            factory.start(away, "noop", .object(["steps": .int(1)])),
            factory.start(home, "noop", .object(["steps": .int(1)])),
            factory.raw(try StartMessage(workflowId: home, workflow: "noop", args: .object(["steps": .int(1)])).contractJSON(),
                        key: "another-key"),
            factory.raw(try cancel.contractJSON()),
        ])
        #expect(summary.started == 1)
        #expect(summary.deadLetters == 3)
        let reader = OutboxReader(shard)
        try reader.drain()
        #expect(reader.deadLetters.count == 3)
        #expect(reader.deadLetters[0].error.contains("belongs to partition 42"))
        #expect(reader.deadLetters[0].error.contains("read from partition 0"))
        #expect(reader.deadLetters[0].error.contains("partitioner=murmur2_random"))
        #expect(reader.deadLetters[1].error.contains("the Kafka key must be the workflowId"))
        #expect(reader.deadLetters[1].error.contains("\"another-key\""))
        #expect(reader.deadLetters[2].error.contains("(got no key)"))
        await shard.close()
    }

    @Test func aCancelOfAnUnknownWorkflowAndAnEventForAFinishedOneAreAnswered() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await open(directory)
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("done", "noop", .object(["steps": .int(0)]))])
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(1)
        let ghost = CancelMessage(workflowId: "ghost")
        let late = EventMessage(workflowId: "done", name: "approval", value: .bool(true))
        let early = EventMessage(workflowId: "not-yet", name: "approval", value: .bool(true))
        let summary = try await shard.ingest([factory.raw(try ghost.contractJSON(), key: "ghost"),
                                              factory.raw(try late.contractJSON(), key: "done"),
                                              factory.raw(try early.contractJSON(), key: "not-yet")])
        #expect(summary.deadLetters == 2)
        #expect(summary.events == 1)
        try reader.drain()
        #expect(reader.deadLetters.map(\.key) == ["ghost", "done"])
        #expect(reader.deadLetters[0].error.contains("which this shard does not know"))
        #expect(reader.deadLetters[1].error.contains("has already completed (succeeded)"))
        await shard.close()
    }

    @Test func edgeFieldsAreDeadLetteredOrRejectedWithReasons() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await open(directory)
        var factory = MessageFactory()
        let long = String(repeating: "r", count: MessageLimits.maxReasonBytes + 1)
        let summary = try await shard.ingest([
            factory.raw(Array(#"{"type":"start","workflowId":"neg","workflow":"noop","args":{"steps":1},"createdAt":-5}"#.utf8), key: "neg"),
            factory.raw(Array(#"{"type":"start","workflowId":"dup","workflow":"noop","workflowId":"dup2","args":{"steps":1}}"#.utf8), key: "dup"),
            factory.raw(Array(#"{"type":"start","workflowId":"min","workflow":"noop","args":{"steps":1},"createdAt":-9223372036854775808}"#.utf8), key: "min"),
            factory.raw(Array(#"{"type":"start","workflowId":"v","workflow":"validated","args":{"steps":-1}}"#.utf8), key: "v"),
            factory.raw(Array((#"{"type":"cancel","workflowId":"c","reason":""# + long + #""}"#).utf8), key: "c"),
            factory.raw(Array(#"{"type":"event","workflowId":"e","name":""}"#.utf8), key: "e"),
            factory.raw(Array(#"{"type":"start","workflowId":"float","workflow":"noop","args":{"steps":1},"createdAt":1.5}"#.utf8), key: "float"),
            factory.raw(Array(("{\"a\":" + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}").utf8), key: "deep"),
            factory.control(#"{"type":"failPendingTasks","shard":0,"commandId":"long-reason","reason":""# + long + #""}"#),
            factory.control(#"{"type":"bumpEpoch","shard":0,"commandId":""# + String(repeating: "c", count: 201) + #""}"#),
            factory.control(#"{"type":""# + String(repeating: "t", count: 500) + #"","shard":0,"commandId":"long-type"}"#),
            factory.control(#"{"type":"bumpEpoch","shard":0.5,"commandId":"float-shard"}"#),
        ])
        #expect(summary.started == 0)
        let reader = OutboxReader(shard)
        try reader.drain()
        let reasons = reader.deadLetters.map(\.error)
        #expect(reasons.count == 9)
        #expect(reasons[0] == "field createdAt must not be negative (got -5)")
        #expect(reasons[1].contains("duplicate key \"workflowId\""))
        #expect(reasons[2].hasPrefix("field createdAt must not be negative"))
        #expect(reasons[3].contains("steps must be between 0 and 10, got -1"))
        #expect(reasons[4].contains("field reason is 4097 bytes"))
        #expect(reasons[5].contains("field name must be 1 to 200 bytes"))
        #expect(reasons[6] == "field createdAt must be an integer (milliseconds)")
        #expect(reasons[7].contains("nesting deeper than"))
        #expect(reasons[8].contains("field commandId must be a string of 1 to 200 bytes"))
        let results = Dictionary(uniqueKeysWithValues: reader.controlResults.map { ($0.commandId, $0) })
        #expect(results["long-reason"]?.status == .rejected)
        #expect(results["long-reason"]?.error?.contains("more than the 4096 byte limit") == true)
        #expect(results["long-type"]?.status == .rejected)
        #expect(results["long-type"]?.type == nil)
        #expect(results["long-type"]?.error?.contains("(500 bytes)") == true)
        #expect(results["float-shard"]?.error == "field shard must be an integer")
        await shard.close()
    }

    @Test func deadLettersOfHugeValuesAreBoundedWithSizeAndHash() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await open(directory)
        var factory = MessageFactory()
        let text = Array(String(repeating: "\u{1}é\"", count: 400_000).utf8)  // escapes take up to 6 bytes each
        let binary = (0..<900_000).map { UInt8(truncatingIfNeeded: $0 &* 7 | 0x80) }
        let key = String(repeating: "k", count: 5000)
        _ = try await shard.ingest([factory.raw(text, key: "text"), factory.raw(binary, key: key)])
        try expectOutboxFits(shard)
        let reader = OutboxReader(shard)
        try reader.drain()
        let (textLetter, binaryLetter) = (reader.deadLetters[0], reader.deadLetters[1])
        #expect(textLetter.truncated == true)
        #expect(textLetter.valueBytes == text.count)
        #expect(textLetter.valueSha256 == BoundedOutput.sha256Hex(text))
        #expect(textLetter.valueEncoding == .utf8)
        let prefix = try #require(textLetter.value)
        #expect(text.starts(with: Array(prefix.utf8)) && prefix.utf8.count > 100_000)
        #expect(binaryLetter.valueEncoding == .base64)
        #expect(binaryLetter.truncated == true)
        #expect(binaryLetter.valueBytes == binary.count)
        let base64 = try #require(binaryLetter.value)
        let decoded = try #require(Data(base64Encoded: base64))
        #expect(binary.starts(with: Array(decoded)) && decoded.count > 500_000)
        #expect(binaryLetter.keyTruncated == true)
        #expect(binaryLetter.key?.utf8.count == MessageLimits.maxDeadLetterKeyBytes)
        #expect(BoundedOutput.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        await shard.close()
    }

    @Test func aResultTooLargeToPublishFailsTheWorkflowSayingSo() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await open(directory)
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("huge", "big-result", .int(2_000_000)),
                                    factory.start("fine", "big-result", .int(1000)),
                                    factory.start("loud", "huge-error", .int(2_000_000)),
                                    factory.start("escaped", "huge-error", .int(-300_000))])
        try await eventually { try shard.stats().workflowsByStatus["running"] ?? 0 == 0 }
        try expectOutboxFits(shard)
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(4)
        #expect(reader.completions["escaped"]?.first?.error?.message.contains("too large for a completion message") == true)
        let loud = try #require(reader.completions["loud"]?.first)
        #expect(loud.status == .failed)
        #expect(loud.error?.message.hasPrefix("the workflow's error is ") == true)
        #expect(loud.error?.message.contains("bytes, too large for a completion message") == true)
        #expect(loud.error?.message.contains("it begins: eeee") == true)
        #expect(loud.error?.step == "huge-error")
        let huge = try #require(reader.completions["huge"]?.first)
        #expect(huge.status == .failed)
        #expect(huge.error?.message.contains("too large for a completion message") == true)
        #expect(reader.completions["fine"]?.first?.status == .succeeded)
        #expect(try shard.workflowDetail("huge")?.status == "failed")
        #expect(try shard.audit().isHealthy)
        await shard.close()
    }

    @Test func aPermanentStepFailureIsNotRetried() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await open(directory)
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("refused-1", "refused", .int(1))])
        let reader = OutboxReader(shard)
        // With the policy's 30 s backoff a retry could not finish within the wait.
        try await reader.waitForCompletions(1, limit: .seconds(10))
        let completion = try #require(reader.completions["refused-1"]?.first)
        #expect(completion.status == .failed)
        #expect(completion.error?.message == "input refused")
        #expect(try shard.workflowDetail("refused-1")?.journal.first?.attempts == 1)
        await shard.close()
    }

    @Test func aRowTheBrokerRefusesForGoodBecomesADeadLetterOnce() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let shard = try await open(directory)
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("r-1", "noop", .object(["steps": .int(0)]))])
        try await eventually { try shard.pendingOutbox().contains { $0.topic == .completions } }
        let completion = try #require(try shard.pendingOutbox().first { $0.topic == .completions })
        #expect(try shard.replaceRefusedOutboxRow(id: completion.id, topicName: "shardflow.completions", error: "MSG_SIZE_TOO_LARGE") == .deadLettered)
        #expect(try shard.replaceRefusedOutboxRow(id: completion.id, topicName: "shardflow.completions", error: "again") == .missing)
        let letter = try #require(try shard.pendingOutbox().first { $0.topic == .deadLetters })
        let decoded = try JSONDecoder().decode(DeadLetter.self, from: Data(letter.value))
        #expect(decoded.sourceTopic == "shardflow.completions")
        #expect(decoded.offset == completion.id)
        #expect(decoded.error.contains("MSG_SIZE_TOO_LARGE"))
        #expect(decoded.value.map { Array($0.utf8) } == completion.value)
        #expect(try shard.replaceRefusedOutboxRow(id: letter.id, topicName: "shardflow.dead-letters", error: "refused") == .dropped)
        #expect(try shard.pendingOutbox().allSatisfy { $0.topic != .deadLetters })
        await shard.close()
    }

    @Test func anOldOutboxRowIsReportedByTheAudit() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualEngineClock()
        let shard = try await open(directory, clock: clock)
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.raw(Array("{bad".utf8), key: "k")])
        #expect(try shard.audit(outboxAgeLimit: .seconds(60)).isHealthy)
        clock.advance(by: .seconds(61))
        let audit = try shard.audit(outboxAgeLimit: .seconds(60))
        #expect(audit.outboxTooOld)
        #expect(audit.oldestOutboxAgeMilliseconds == 61_000)
        #expect(!audit.isHealthy)
        #expect(try shard.stats().oldestOutboxCreatedAt != nil)
        await shard.close()
    }

    /// The store side of quarantine: a crash record left beside the store counts one death of that
    /// workflow's code; at the configured count the workflow completes failed and stays failed.
    @Test func crashRecordsQuarantineTheWorkflowAtTheConfiguredCount() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        var shard = try await open(directory)
        var factory = MessageFactory()
        _ = try await shard.ingest([factory.start("victim", "noop", .object(["steps": .int(2)])),
                                    factory.start("bystander", "noop", .object(["steps": .int(0)]))])
        await shard.close()
        let crashFile = directory.path + "/" + ShardFiles.crashFileName(shard: 0)
        for death in 1...2 {
            try Data("signal=4\nbody\tvictim\t-\n".utf8).write(to: URL(fileURLWithPath: crashFile))
            shard = try await open(directory)
            #expect(try FileManager.default.attributesOfItem(atPath: crashFile)[.size] as? Int == 0)
            let detail = try #require(try shard.workflowDetail("victim"))
            #expect(detail.status == (death < 2 ? "running" : "failed"))
            #expect(detail.crashes == death)
            #expect(detail.quarantined == (death == 2))
            await shard.close()
        }
        shard = try await open(directory)
        try shard.start()
        let reader = OutboxReader(shard)
        try await reader.waitForCompletions(2)
        let victim = try #require(reader.completions["victim"]?.first)
        #expect(victim.status == .failed)
        #expect(victim.error?.message.contains("quarantined: its workflow body stopped the worker 2 times (last by SIGILL)") == true)
        #expect(reader.completions["victim"]?.count == 1)
        #expect(reader.completions["bystander"]?.first?.status == .succeeded)
        #expect(try shard.stats().quarantinedWorkflows == 1)
        #expect(try shard.audit().quarantinedWorkflows == ["victim"])
        #expect(try shard.audit().isHealthy)
        await shard.close()
    }

    @Test func crashRecordsParseAndRejectGarbage() {
        let step = CrashRecord(bytes: Array("signal=5\nstep\twf-1\t3\n".utf8))
        #expect(step == CrashRecord(signal: 5, subject: CrashSubject(kind: .step, workflowId: "wf-1", stepId: 3)))
        #expect(step?.signalName == "SIGTRAP")
        #expect(CrashRecord(bytes: Array("signal=4\nstep\twf-1\t-\n".utf8)) == nil)
        #expect(CrashRecord(bytes: Array("garbage".utf8)) == nil)
        #expect(CrashRecord(bytes: []) == nil)
        let subject = CrashSubject(kind: .body, workflowId: "a.b:c-d", stepId: nil)
        #expect(CrashSubject(record: Substring(subject.record.dropLast())) == subject)
    }
}
