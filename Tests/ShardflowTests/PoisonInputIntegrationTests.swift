import Foundation
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka
import Testing

extension Integration {
    @Suite("Poison inputs on the real broker")
    struct PoisonInputs {
        @Test("starts from a producer left at librdkafka's default partitioner are dead-lettered with the partition they belong to; correctly keyed ones run once")
        func wrongPartitionStarts() async throws {
            let cluster = try await TestCluster.start(partitions: 8, name: "route")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let deadLetters = TopicCollector(reader: try await cluster.reader(cluster.topics.deadLetters))
            let worker = try cluster.startWorker()
            let client = try cluster.client()
            // Shardflow's own client: every delivery lands where ShardRouting says (the same murmur2).
            let keyed = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(1)]), count: 200, idPrefix: "keyed")
            for start in keyed.prefix(40) {
                let report = try await client.start(start)
                #expect(Int(report.partition) == ShardRouting.partition(ofWorkflowId: start.workflowId, partitionCount: 8))
            }
            // A producer at librdkafka's default (consistent_random: CRC32).
            var configuration = cluster.kafka
            configuration.properties["partitioner"] = "consistent_random"
            let crc = try KafkaProducer(configuration: configuration)
            let stray = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(1)]), count: 60, idPrefix: "stray")
            var misrouted: [String: Int] = [:]
            for start in stray {
                let report = try await crc.send(KafkaProducerMessage(
                    topic: cluster.topics.workflows, key: Array(start.workflowId.utf8), value: try start.contractJSON()))
                let home = ShardRouting.partition(ofWorkflowId: start.workflowId, partitionCount: 8)
                if Int(report.partition) != home { misrouted[start.workflowId] = home }
            }
            await crc.close()
            #expect(misrouted.count > 20, "CRC32 and murmur2 agree on too many keys to test anything")
            #expect(await deadLetters.wait(timeout: .seconds(60)) { $0.count >= misrouted.count })
            let letters = deadLetters.decoded(DeadLetter.self)
            for (id, home) in misrouted {
                let letter = letters.first { $0.key == id }
                #expect(letter?.error.contains("belongs to partition \(home)") == true, "\(id): \(String(describing: letter))")
                #expect(letter?.error.contains("partitioner=murmur2_random") == true)
            }
            // The fix: the same ids published correctly run, once each.
            let fixed = stray.filter { misrouted[$0.workflowId] != nil }
            try await client.startAll(fixed)
            try await client.startAll(Array(keyed.dropFirst(40)))
            let expected = Set(fixed.map(\.workflowId) + keyed.map(\.workflowId))
            #expect(await completions.waitForCompletions(expected, timeout: .seconds(120)))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(expected.allSatisfy { byWorkflow[$0]?.status == .succeeded })
            #expect(eventIds.values.allSatisfy { $0.count == 1 })
            await client.close()
            await worker.terminate(timeout: .seconds(30))
            #expect(try cluster.audit().filter { !$0.isHealthy }.isEmpty)
            await completions.close()
            await deadLetters.close()
            await cluster.stop()
        }

        @Test("inputs whose dead letter or answer would be too large are bounded, published and never retried; the shard goes on")
        func oversizedInputs() async throws {
            let cluster = try await TestCluster.start(partitions: 2, name: "huge")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let deadLetters = TopicCollector(reader: try await cluster.reader(cluster.topics.deadLetters))
            let results = TopicCollector(reader: try await cluster.reader(cluster.topics.controlResults))
            let worker = try cluster.startWorker()
            // A producer that may send more than Shardflow ever publishes (Tansu takes it).
            var configuration = cluster.kafka
            configuration.properties["message.max.bytes"] = "4000000"
            let producer = try KafkaProducer(configuration: configuration)
            let tooLarge = Array(("{\"type\":\"start\",\"workflowId\":\"big\",\"workflow\":\"noop\",\"args\":{\"pad\":\""
                + String(repeating: "x", count: MessageLimits.maxInboundBytes) + "\"}}").utf8)
            let binary = (0..<800_000).map { UInt8(truncatingIfNeeded: $0 | 0x80) }
            let longReason = String(repeating: "r", count: 100_000)  // under the message limit, over the reason limit
            _ = try await producer.send(KafkaProducerMessage(topic: cluster.topics.workflows, key: Array("big".utf8), value: tooLarge))
            _ = try await producer.send(KafkaProducerMessage(topic: cluster.topics.workflows, key: Array("bin".utf8), value: binary))
            _ = try await producer.send(KafkaProducerMessage(
                topic: cluster.topics.control, partition: 0, key: Array("long".utf8),
                value: Array(#"{"type":"failPendingTasks","shard":0,"commandId":"long-reason","reason":"\#(longReason)"}"#.utf8)))
            _ = try await producer.send(KafkaProducerMessage(
                topic: cluster.topics.control, partition: 0, key: Array("id".utf8),
                value: Array(#"{"type":"bumpEpoch","shard":0,"commandId":"\#(String(repeating: "c", count: 300_000))"}"#.utf8)))
            await producer.close()
            #expect(await deadLetters.wait(timeout: .seconds(60)) { $0.count >= 3 })
            #expect(deadLetters.all.count == 3)
            #expect(await results.wait(timeout: .seconds(60)) { $0.count >= 1 })
            for message in deadLetters.all + results.all {
                #expect((message.key?.count ?? 0) + message.value.count <= MessageLimits.maxOutboundBytes)
            }
            for message in deadLetters.all {
                #expect(try ContractSchemas.validate(Data(message.value), against: "dead-letter").isEmpty)
            }
            let letters = deadLetters.decoded(DeadLetter.self)
            let big = try #require(letters.first { $0.key == "big" })
            #expect(big.truncated == true && big.valueBytes == tooLarge.count)
            #expect(big.error.contains("larger than"))
            let bin = try #require(letters.first { $0.key == "bin" })
            #expect(bin.valueEncoding == .base64 && bin.truncated == true && bin.valueBytes == binary.count)
            #expect(letters.contains { $0.error.contains("commandId must be a string of 1 to 200 bytes") })
            let answer = try #require(results.decoded(ControlResult.self).first { $0.commandId == "long-reason" })
            #expect(answer.status == .rejected)
            // The shard goes on at once: nothing waits behind a message that cannot be published.
            let client = try cluster.client()
            let after = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(1)]), count: 50, idPrefix: "after")
            try await client.startAll(after)
            await client.close()
            #expect(await completions.waitForCompletions(Set(after.map(\.workflowId)), timeout: .seconds(60)))
            await worker.terminate(timeout: .seconds(30))
            let audit = try cluster.audit()
            #expect(audit.allSatisfy { $0.isHealthy && $0.oldestOutboxAgeMilliseconds == nil }, "\(audit)")
            await completions.close()
            await deadLetters.close()
            await results.close()
            await cluster.stop()
        }
    }
}
