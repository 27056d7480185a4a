import Foundation
import Shardflow
import ShardflowEngine
import ShardflowKafka
import ShardflowTesting
import Testing

extension Integration {
    /// Operators' commands through Kafka, against a one-shard cluster so every workflow shares the shard.
    @Suite("Control plane")
    struct ControlPlane {
        static func control(_ cluster: TestCluster) -> ControlClient {
            ControlClient(configuration: cluster.kafka, topics: cluster.topics)
        }

        static func command(_ cluster: TestCluster, _ type: ControlCommandType, reason: String? = nil) async throws -> ControlResult {
            let results = try await control(cluster).send(type, shards: [0], reason: reason,
                                                          idPrefix: LoadGenerator.runId(prefix: type.rawValue),
                                                          wait: true, timeout: .seconds(30))
            return try #require(results.first, "no answer to \(type.rawValue)")
        }

        static func stats(_ cluster: TestCluster) throws -> ShardStats? {
            guard FileManager.default.fileExists(atPath: cluster.dataDirectory + "/" + Shard.storeFileName(shard: 0))
            else { return nil }
            return try ShardInspector(directory: cluster.dataDirectory, shard: 0).stats()
        }

        static func waitFor(_ what: String, timeout: Duration = .seconds(60),
                            _ condition: () throws -> Bool) async throws {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while ContinuousClock.now < deadline {
                if (try? condition()) == true { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("timed out waiting for \(what)")
        }

        static func noop(_ count: Int, prefix: String, delayMs: Int = 0) -> [StartMessage] {
            LoadGenerator.starts(workflow: "noop",
                                 args: .object(["steps": .int(1), "stepDelayMs": .int(Int64(delayMs))]),
                                 count: count, idPrefix: prefix)
        }

        @Test("bumpEpoch with 50 steps in flight: they finish and record, nothing new is claimed, starts queue; resume finishes all")
        func bumpEpochDrainsThenResume() async throws {
            let cluster = try await TestCluster.start(partitions: 1, name: "epoch")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let worker = try cluster.startWorker()
            let client = try cluster.client()
            let slow = Self.noop(100, prefix: "slow", delayMs: 4_000)
            try await client.startAll(slow)
            try await Self.waitFor("50 running steps") { try Self.stats(cluster)?.runningTasks == 50 }

            let bumped = try await Self.command(cluster, .bumpEpoch)
            #expect(bumped.status == .applied)
            #expect(bumped.epoch == 1)
            // The 50 in flight finish and their workflows complete; the other 50 stay queued.
            #expect(await completions.wait(timeout: .seconds(30)) { $0.count >= 50 })
            try await Task.sleep(for: .seconds(2))
            #expect(completions.completions().byWorkflow.count == 50)
            let stopped = try #require(try Self.stats(cluster))
            #expect(stopped.runningTasks == 0)
            #expect(stopped.queuedTasks == 50)
            #expect(stopped.epoch == 1)
            // Ingestion goes on while stopped.
            let late = Self.noop(10, prefix: "late")
            try await client.startAll(late)
            try await Self.waitFor("60 queued tasks") { try Self.stats(cluster)?.queuedTasks == 60 }
            #expect(completions.completions().byWorkflow.count == 50)

            let resumed = try await Self.command(cluster, .resumeExecutors)
            #expect(resumed.status == .applied)
            let all = Set((slow + late).map(\.workflowId))
            #expect(await completions.waitForCompletions(all, timeout: .seconds(60)))
            #expect(completions.completions().byWorkflow.values.allSatisfy { $0.status == .succeeded })
            await client.close()
            await worker.terminate(timeout: .seconds(30))
            #expect(try cluster.audit().filter { !$0.isHealthy }.isEmpty)
            await completions.close()
            await cluster.stop()
        }

        @Test("failPendingTasks on 500 queued tasks: every workflow completes failed with the reason, counts match, 0 stuck")
        func failPendingTasks() async throws {
            let cluster = try await TestCluster.start(partitions: 1, name: "failp")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let worker = try cluster.startWorker()
            try await Self.waitFor("the shard to open") { try Self.stats(cluster) != nil }
            #expect(try await Self.command(cluster, .bumpEpoch).status == .applied)
            let client = try cluster.client()
            let queued = Self.noop(500, prefix: "queued")
            try await client.startAll(queued)
            await client.close()
            try await Self.waitFor("500 queued tasks") { try Self.stats(cluster)?.queuedTasks == 500 }

            let result = try await Self.command(cluster, .failPendingTasks, reason: "broker outage")
            #expect(result.status == .applied)
            #expect(result.affected.tasks == 500)
            #expect(result.affected.workflows == 500)
            #expect(result.affected.replayEntries == 500)
            #expect(result.stuckWorkflows == 0)
            #expect(await completions.waitForCompletions(Set(queued.map(\.workflowId)), timeout: .seconds(60)))
            let byWorkflow = completions.completions().byWorkflow
            #expect(byWorkflow.values.allSatisfy { $0.status == .failed })
            #expect(byWorkflow.values.allSatisfy { $0.error?.message.contains("failed by operator: broker outage") == true })
            #expect(byWorkflow.values.allSatisfy { $0.error?.step == "noop" })
            await worker.terminate(timeout: .seconds(30))
            #expect(try cluster.audit().filter { !$0.isHealthy }.isEmpty)
            await completions.close()
            await cluster.stop()
        }

        @Test("clearTaskQueue and clearReplayQueue report the stuck workflows they leave; check names them and fails")
        func clearQueuesLeaveStuckWorkflows() async throws {
            let cluster = try await TestCluster.start(partitions: 1, name: "clear")
            let worker = try cluster.startWorker()
            try await Self.waitFor("the shard to open") { try Self.stats(cluster) != nil }
            #expect(try await Self.command(cluster, .bumpEpoch).status == .applied)
            let client = try cluster.client()
            let queued = Self.noop(20, prefix: "tasks")
            try await client.startAll(queued)
            try await Self.waitFor("20 queued tasks") { try Self.stats(cluster)?.queuedTasks == 20 }
            let cleared = try await Self.command(cluster, .clearTaskQueue)
            #expect(cleared.status == .applied)
            #expect(cleared.affected.tasks == 20)
            #expect(cleared.stuckWorkflows == 20)

            // Replay rows live for milliseconds: a fast worker replays noop starts as fast as they arrive. So the
            // starts are fanouts of 100 branches (each first replay schedules 100 steps), published while the
            // worker is stopped (SIGSTOP, well within its session) so that they reach it as one backlog, and the
            // command goes out as soon as the store shows replay rows. A round that still misses them is tried
            // again. (At most 3,020 stuck workflows: fewer than the audit's 10,000-name cap.)
            var last = cleared
            for round in 0..<3 where last.stuckWorkflows == 20 {
                let fanouts = LoadGenerator.starts(workflow: "fanout", args: .object(["branches": .int(100)]), count: 1_000,
                                                   idPrefix: "replays-\(round)")
                worker.signal(SIGSTOP)
                do {
                    try await client.startAll(fanouts)
                } catch {
                    worker.signal(SIGCONT)
                    throw error
                }
                worker.signal(SIGCONT)
                let deadline = ContinuousClock.now.advanced(by: .seconds(30))
                while (try? Self.stats(cluster)?.replayQueueDepth ?? 0) ?? 0 == 0 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(1))
                }
                last = try await Self.command(cluster, .clearReplayQueue)
                #expect(last.status == .applied)
            }
            await client.close()
            #expect(last.stuckWorkflows > 20, "no replay row was caught by clearReplayQueue")
            try await Task.sleep(for: .seconds(1))
            let audit = try cluster.audit()
            #expect(audit.first?.stuckWorkflows.count == last.stuckWorkflows)

            let check = try await ChildProcess.run([Repository.shardflowBinary, "check", "--data-dir", cluster.dataDirectory])
            #expect(check.status == 1)
            let named = try #require(audit.first?.stuckWorkflows.first)
            #expect(check.output.contains(named))
            #expect(check.output.contains("\(last.stuckWorkflows) stuck workflows"))
            await worker.terminate(timeout: .seconds(30))
            await cluster.stop()
        }

        @Test("cancel of a running workflow gives one canceled completion")
        func cancelRunningWorkflow() async throws {
            let cluster = try await TestCluster.start(partitions: 1, name: "cancel")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let worker = try cluster.startWorker()
            let client = try cluster.client()
            _ = try await client.start(StartMessage(workflowId: "long-1", workflow: "noop",
                                                    args: .object(["steps": .int(2), "stepDelayMs": .int(3_000)])))
            try await Self.waitFor("a running step") { try Self.stats(cluster)?.runningTasks == 1 }
            _ = try await client.cancel(CancelMessage(workflowId: "long-1", reason: "changed my mind"))
            #expect(await completions.waitForCompletions(["long-1"], timeout: .seconds(30)))
            try await Task.sleep(for: .seconds(5)) // the running step finishes meanwhile; its result is not used
            let events = completions.decoded(CompletionEvent.self).filter { $0.workflowId == "long-1" }
            #expect(events.count == 1)
            #expect(events.first?.status == .canceled)
            await client.close()
            await worker.terminate(timeout: .seconds(30))
            #expect(try cluster.audit().filter { !$0.isHealthy }.isEmpty)
            await completions.close()
            await cluster.stop()
        }

        @Test("an event sent before, or after, the workflow waits for it is delivered once")
        func eventsDeliveredOnce() async throws {
            let cluster = try await TestCluster.start(partitions: 1, name: "events")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let replays = TopicCollector(reader: try await cluster.reader(cluster.topics.replays))
            let worker = try cluster.startWorker()
            let client = try cluster.client()
            // Before: the event follows the start in the same partition and is kept until asked for.
            _ = try await client.start(StartMessage(workflowId: "early", workflow: "approval", args: .object([:])))
            _ = try await client.send(EventMessage(workflowId: "early", name: "approval", value: .object(["ok": .bool(true)])))
            // After: sent once the workflow's replay reports it waiting.
            _ = try await client.start(StartMessage(workflowId: "late", workflow: "approval", args: .object([:])))
            #expect(await replays.wait(timeout: .seconds(30)) { messages in
                messages.contains { String(decoding: $0.value, as: UTF8.self).contains(#""workflowId":"late""#) }
            })
            _ = try await client.send(EventMessage(workflowId: "late", name: "approval", value: .object(["ok": .bool(false)])))
            // A second copy of the same event after completion changes nothing.
            #expect(await completions.waitForCompletions(["early", "late"], timeout: .seconds(30)))
            _ = try await client.send(EventMessage(workflowId: "late", name: "approval", value: .object(["ok": .bool(true)])))
            try await Task.sleep(for: .seconds(2))
            let events = completions.decoded(CompletionEvent.self)
            #expect(events.filter { $0.workflowId == "early" }.count == 1)
            #expect(events.filter { $0.workflowId == "late" }.count == 1)
            let early = try #require(events.first { $0.workflowId == "early" })
            let late = try #require(events.first { $0.workflowId == "late" })
            #expect(early.result?["approved"] == .bool(true))
            #expect(late.result?["approved"] == .bool(false))
            #expect(late.result?["timedOut"] == .bool(false))
            await client.close()
            await worker.terminate(timeout: .seconds(30))
            await completions.close()
            await replays.close()
            await cluster.stop()
        }

        @Test("a control message on the wrong partition, or malformed, is rejected with its reason")
        func rejectedCommands() async throws {
            let cluster = try await TestCluster.start(partitions: 2, name: "reject")
            let results = TopicCollector(reader: try await cluster.reader(cluster.topics.controlResults))
            let deadLetters = TopicCollector(reader: try await cluster.reader(cluster.topics.deadLetters))
            let worker = try cluster.startWorker()
            let producer = try KafkaProducer(configuration: cluster.kafka)
            func publish(_ partition: Int32, _ json: String) async throws {
                _ = try await producer.send(KafkaProducerMessage(topic: cluster.topics.control, partition: partition,
                                                                 key: "k", value: json))
            }
            try await publish(1, #"{"type":"bumpEpoch","shard":0,"commandId":"wrong-1"}"#)
            try await publish(0, #"{"type":"explode","shard":0,"commandId":"unknown-1"}"#)
            try await publish(0, #"{"type":"bumpEpoch","shard":"zero","commandId":"bad-shard-1"}"#)
            try await publish(0, #"{"type":"resumeExecutors","shard":0,"commandId":"ok-1"}"#)
            try await publish(0, #"{"type":"resumeExecutors","shard":0,"commandId":"ok-1"}"#)
            try await publish(0, "{not json")
            #expect(await results.wait(timeout: .seconds(60)) { $0.count >= 5 })
            #expect(await deadLetters.wait(timeout: .seconds(30)) { $0.count >= 1 })
            let answers = results.decoded(ControlResult.self)
            let wrong = try #require(answers.first { $0.commandId == "wrong-1" })
            #expect(wrong.status == .rejected)
            #expect(wrong.error?.contains("wrong shard") == true)
            #expect(wrong.epoch == 0, "a rejected bumpEpoch must not apply")
            let unknown = try #require(answers.first { $0.commandId == "unknown-1" })
            #expect(unknown.status == .rejected)
            #expect(unknown.error?.contains("unknown type") == true)
            #expect(answers.first { $0.commandId == "bad-shard-1" }?.status == .rejected)
            // A repeated commandId is answered again, identically, and not applied twice.
            let repeated = answers.filter { $0.commandId == "ok-1" }
            #expect(repeated.count == 2)
            #expect(repeated.first == repeated.last)
            for message in results.all {
                #expect(try ContractSchemas.validate(Data(message.value), against: "control-result").isEmpty)
            }
            #expect(deadLetters.decoded(DeadLetter.self).contains { $0.sourceTopic == cluster.topics.control })
            await producer.close()
            await worker.terminate(timeout: .seconds(30))
            await results.close()
            await deadLetters.close()
            await cluster.stop()
        }
    }
}
