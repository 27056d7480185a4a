import Foundation
import Shardflow
import ShardflowEngine
import ShardflowKafka
import Testing

/// Everything that runs worker processes against the real broker runs one test at a time: the machine has
/// two cores, and each test owns a broker, workers and stores.
@Suite("Integration", .serialized)
enum Integration {}

extension Integration {
    @Suite("Worker pipeline")
    struct WorkerPipeline {
        @Test("2,000 noop workflows of 3 steps: 2,000 distinct succeeded completions, contract-shaped events, 0 stuck")
        func twoThousandNoopWorkflows() async throws {
            let cluster = try await TestCluster.start(partitions: 16, name: "noop")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let replays = TopicCollector(reader: try await cluster.reader(cluster.topics.replays))
            let worker = try cluster.startWorker()
            let starts = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(3)]), count: 2_000,
                                              idPrefix: "noop")
            let client = try cluster.client()
            try await client.startAll(starts)
            await client.close()

            let ids = Set(starts.map(\.workflowId))
            let done = await completions.waitForCompletions(ids, timeout: .seconds(240))
            #expect(done, "only \(completions.completions().byWorkflow.count) of 2000 completed")
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 2_000)
            #expect(byWorkflow.values.allSatisfy { $0.status == .succeeded && $0.steps == 3 })
            #expect(byWorkflow.values.allSatisfy { $0.result == .object(["steps": .int(3)]) })
            #expect(eventIds.values.allSatisfy { $0.count == 1 }, "a workflow completed under two eventIds")

            // Every published message matches its schema; replays tell the story of each workflow.
            for message in completions.all.prefix(200) {
                #expect(try ContractSchemas.validate(Data(message.value), against: "completion").isEmpty)
            }
            await replays.wait(timeout: .seconds(30)) { $0.count >= 2_000 * 4 }
            for message in replays.all.prefix(500) {
                #expect(try ContractSchemas.validate(Data(message.value), against: "replay").isEmpty)
            }
            let sample = try #require(starts.first?.workflowId)
            let story = replays.decoded(ReplayEvent.self).filter { $0.workflowId == sample }
                .sorted { $0.generation < $1.generation }
            #expect(story.map(\.trigger) == [.start, .step, .step, .step])
            #expect(story.first?.scheduled.map(\.name) == ["noop"])
            #expect(story.last?.outcome == .completed)
            #expect(story.last?.consumed.last?.status == "succeeded")

            await worker.terminate(timeout: .seconds(60))
            let audit = try cluster.audit()
            #expect(audit.count == 16)
            let unhealthy = audit.filter { !$0.isHealthy }
            #expect(unhealthy.isEmpty, "\(unhealthy)")
            await completions.close()
            await replays.close()
            await cluster.stop()
        }

        @Test("50 malformed or invalid messages: exactly 50 dead letters with reasons, every valid workflow completes")
        func deadLetters() async throws {
            let cluster = try await TestCluster.start(partitions: 8, name: "dlq")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let deadLetters = TopicCollector(reader: try await cluster.reader(cluster.topics.deadLetters))
            let worker = try cluster.startWorker()
            let client = try cluster.client()
            let valid = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(1)]), count: 100,
                                             idPrefix: "ok")
            let invalid: [(key: String?, value: [UInt8], reason: String)] = (0..<50).map { i in
                switch i % 10 {
                case 0: return ("bad-\(i)", Array("{not json".utf8), "invalid JSON")
                case 1: return ("bad-\(i)", [0xFF, 0xFE, 0x00, 0x7B], "UTF-8")
                case 2: return ("bad-\(i)", Array(#"{"type":"launch","workflowId":"bad-\#(i)"}"#.utf8), "unknown type")
                case 3: return ("bad-\(i)", Array(#"{"type":"start","workflowId":"bad-\#(i)","workflow":"nope","args":{}}"#.utf8), "unknown workflow")
                case 4: return ("bad \(i)", Array(#"{"type":"start","workflowId":"bad id \#(i)","workflow":"noop","args":{"steps":1}}"#.utf8), "workflowId")
                case 5: return ("bad-\(i)", Array(#"{"type":"start","workflow":"noop","args":{"steps":1}}"#.utf8), "workflowId")
                case 6: return ("bad-\(i)", Array(#"{"type":"cancel"}"#.utf8), "workflowId")
                case 7: return ("bad-\(i)", Array("[1,2,3]".utf8), "object")
                case 8: return ("bad-\(i)", [], "empty")
                default: return ("bad-\(i)", Array(#"{"type":"event","workflowId":"bad-\#(i)","value":1}"#.utf8), "name")
                }
            }
            for (index, start) in valid.enumerated() {
                _ = try await client.start(start)
                if index < invalid.count {
                    _ = try await client.publishRaw(key: invalid[index].key, value: invalid[index].value)
                }
            }
            await client.close()

            #expect(await completions.waitForCompletions(Set(valid.map(\.workflowId)), timeout: .seconds(120)))
            #expect(await deadLetters.wait(timeout: .seconds(30)) { $0.count >= 50 })
            try await Task.sleep(for: .seconds(2))
            let letters = deadLetters.decoded(DeadLetter.self)
            #expect(letters.count == 50)
            #expect(Set(letters.map { "\($0.partition)-\($0.offset)" }).count == 50)
            for message in deadLetters.all {
                #expect(try ContractSchemas.validate(Data(message.value), against: "dead-letter").isEmpty)
            }
            for (key, _, reason) in invalid {
                let letter = letters.first { $0.key == key }
                #expect(letter != nil, "no dead letter for \(key ?? "nil")")
                #expect(letter?.error.localizedCaseInsensitiveContains(reason) == true,
                        "dead letter of \(key ?? "nil") says \(letter?.error ?? "nothing"), expected \(reason)")
            }
            #expect(letters.first { $0.key == "bad-1" }?.valueEncoding == .base64)
            #expect(completions.completions().byWorkflow.values.allSatisfy { $0.status == .succeeded })
            await worker.terminate(timeout: .seconds(30))
            #expect(try cluster.audit().filter { !$0.isHealthy }.isEmpty)
            await completions.close()
            await deadLetters.close()
            await cluster.stop()
        }

        @Test("the same workflowId started twice gives one workflow and one completion")
        func idempotentStart() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "dup")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let worker = try cluster.startWorker()
            let client = try cluster.client()
            let start = StartMessage(workflowId: "order-42", workflow: "noop", args: .object(["steps": .int(2)]))
            let first = try await client.start(start)
            let second = try await client.start(start)
            await client.close()
            #expect(first.partition == second.partition)
            #expect(await completions.waitForCompletions(["order-42"], timeout: .seconds(60)))
            try await Task.sleep(for: .seconds(3))
            #expect(completions.decoded(CompletionEvent.self).filter { $0.workflowId == "order-42" }.count == 1)
            await worker.terminate(timeout: .seconds(30))
            let stats = try ShardInspector(directory: cluster.dataDirectory, shard: Int(first.partition)).stats()
            #expect(stats.workflowsByStatus.values.reduce(0, +) == 1)
            await completions.close()
            await cluster.stop()
        }
    }
}
