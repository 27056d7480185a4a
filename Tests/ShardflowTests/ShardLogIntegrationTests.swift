import Foundation
import Shardflow
import ShardflowBench
import ShardflowEngine
import ShardflowKafka
import ShardflowTesting
import Testing

extension Integration {
    /// Workers on data directories of their own, the shard log in the real broker, real signals.
    @Suite("Shard log")
    struct ShardLogIntegration {
        @Test("three workers; one is killed with kill -9 and its directory deleted; a new one with an empty directory joins: every workflow completes once, 0 stuck")
        func lostHost() async throws {
            let cluster = try await TestCluster.start(partitions: 12, name: "losthost")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let directories = (1...4).map { cluster.directory.appendingPathComponent("host-\($0)").path }
            var workers = try (0..<3).map { try cluster.startWorker(name: "w\($0 + 1)", extra: ["--data-dir", directories[$0]]) }
            // Each step sleeps 300 ms, so the run lasts at least 250 workflows x 6 steps x 0.3 s / 50 slots = 9 s per
            // shard however fast the engine is: the host is lost mid-run, with steps in flight.
            let starts = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(6), "stepDelayMs": .int(300)]),
                                              count: 3_000, idPrefix: "lost")
            let client = try cluster.client()
            try await client.startAll(starts)
            await client.close()
            #expect(await completions.wait(timeout: .seconds(180)) { $0.count >= 400 })
            workers[1].kill()
            _ = await workers[1].waitForExit()
            try FileManager.default.removeItem(atPath: directories[1])
            #expect(completions.completions().byWorkflow.count < 3_000, "the run finished before the host was lost; nothing was tested")
            workers[1] = try cluster.startWorker(name: "w4", extra: ["--data-dir", directories[3]])

            #expect(await completions.waitForCompletions(Set(starts.map(\.workflowId)), timeout: .seconds(300)))
            try await Task.sleep(for: .seconds(2))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 3_000)
            #expect(byWorkflow.values.allSatisfy { $0.status == .succeeded })
            let split = eventIds.filter { $0.value.count > 1 }
            #expect(split.isEmpty, "completed twice with different eventIds: \(split.prefix(5))")
            let log4 = try String(contentsOfFile: cluster.directory.appendingPathComponent("w4.log").path, encoding: .utf8)
            #expect(log4.contains("restored from its log"))
            for worker in workers { _ = await worker.terminate(timeout: .seconds(60)) }
            // The newest copy of each shard (the last owner's) is healthy: nothing stuck, nothing left to publish.
            let newest = try Self.newestCopies(directories: [directories[0], directories[2], directories[3]])
            #expect(newest.count == 12)
            for (shard, directory) in newest {
                let audit = try ShardInspector(directory: directory, shard: shard).audit()
                #expect(audit.isHealthy, "shard \(shard) in \(directory): \(audit)")
            }
            await completions.close()
            await cluster.stop()
        }

        @Test("a worker stopped with SIGSTOP past its session while another takes its shards, then continued, publishes nothing for them")
        func zombie() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "zombie")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let directories = (1...2).map { cluster.directory.appendingPathComponent("host-\($0)").path }
            let first = try cluster.startWorker(name: "first", extra: ["--data-dir", directories[0]])
            // Each step sleeps 50 ms: 100 workflows x 60 steps x 0.05 s / 50 slots = 6 s per shard at least, so the
            // worker is stopped mid-run however fast the engine is.
            let starts = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(60), "stepDelayMs": .int(50)]),
                                              count: 400, idPrefix: "zombie")
            let client = try cluster.client()
            try await client.startAll(starts)
            #expect(await completions.wait(timeout: .seconds(120)) { $0.count >= 20 })
            first.signal(SIGSTOP)
            #expect(completions.completions().byWorkflow.count < 400, "the run finished before the stop; nothing was tested")
            let second = try cluster.startWorker(name: "second", extra: ["--data-dir", directories[1]])
            let secondLog = cluster.directory.appendingPathComponent("second.log").path
            // The group gives the second worker every shard once the first one's session expires (6 s).
            var taken = false
            let deadline = ContinuousClock.now.advanced(by: .seconds(90))
            while ContinuousClock.now < deadline && !taken {
                try await Task.sleep(for: .milliseconds(500))
                let text = (try? String(contentsOfFile: secondLog, encoding: .utf8)) ?? ""
                taken = WorkerFailover.lastAssignment(in: text) == Set(0..<4) && text.components(separatedBy: "restored from its log").count > 4
            }
            #expect(taken, "the second worker did not take over every shard")
            try await Task.sleep(for: .seconds(3))
            first.signal(SIGCONT)
            #expect(await completions.waitForCompletions(Set(starts.map(\.workflowId)), timeout: .seconds(300)))
            try await Task.sleep(for: .seconds(3))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 400)
            let split = eventIds.filter { $0.value.count > 1 }
            #expect(split.isEmpty, "the zombie published completions of its own: \(split.prefix(5))")
            let firstLog = try String(contentsOfFile: cluster.directory.appendingPathComponent("first.log").path, encoding: .utf8)
            let fenced = firstLog.contains("claimed in its log by")
            print("zombie: stepped down by \(fenced ? "reading the newer claim in its log" : "the group's revoke")")
            #expect(fenced || firstLog.contains("revoked shards"))
            await client.close()
            _ = await first.terminate(timeout: .seconds(60))
            _ = await second.terminate(timeout: .seconds(60))
            for (shard, directory) in try Self.newestCopies(directories: directories) {
                let audit = try ShardInspector(directory: directory, shard: shard).audit()
                #expect(audit.isHealthy, "shard \(shard) in \(directory): \(audit)")
            }
            await completions.close()
            await cluster.stop()
        }

        @Test("a worker restarted on its own intact directory restores nothing; one whose store got ahead of the log discards it and runs those steps again")
        func restartsAndAStoreAheadOfTheLog() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "restart")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let directory = cluster.directory.appendingPathComponent("host").path
            let port = try LocalBroker.freeLoopbackPort()
            let extra = ["--data-dir", directory, "--http-port", String(port)]
            let first = try cluster.startWorker(name: "first", extra: extra)
            let client = try cluster.client()
            let batch1 = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(3)]), count: 200, idPrefix: "r1")
            try await client.startAll(batch1)
            #expect(await completions.waitForCompletions(Set(batch1.map(\.workflowId)), timeout: .seconds(120)))
            _ = await first.terminate(timeout: .seconds(60))

            // (c) The same directory again: every store is current, nothing is applied.
            let second = try cluster.startWorker(name: "second", extra: extra)
            try await HealthProbe.waitUntilReady(port: port, timeout: .seconds(60))
            let metrics = await HealthProbe.get(port: port, path: "/metrics")?.body ?? ""
            #expect(PrometheusText.sum("shardflow_restore_changes_total", in: metrics) == 0)
            #expect(PrometheusText.sum("shardflow_restores_total", in: metrics, matching: "store=\"current\"") == 4)

            // (d) The broker stops answering while the worker commits; the worker dies with those records
            // unsent. Its store is now ahead of the log: discarded at the next open, and restored.
            // Short workflows beside long ones, and the broker stopped at the first completion of the short
            // ones: the long ones are far from done, so the worker has work to commit while nothing it writes
            // reaches the log. (With workflows of one length, all of them share the slots and finish together:
            // on a fast machine the first completion came when nothing was left to commit.)
            let short = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(20)]), count: 100, idPrefix: "r2s")
            let long = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(500)]), count: 100, idPrefix: "r2l")
            let batch2 = short + long
            try await client.startAll(batch2)
            #expect(await completions.wait(timeout: .seconds(120)) { $0.count > 200 })
            cluster.broker.pause()
            try await Task.sleep(for: .seconds(2))
            second.kill()
            _ = await second.waitForExit()
            cluster.broker.resume()
            let third = try cluster.startWorker(name: "third", extra: extra)
            #expect(await completions.waitForCompletions(Set((batch1 + batch2).map(\.workflowId)), timeout: .seconds(300)))
            try await Task.sleep(for: .seconds(2))
            let thirdLog = try String(contentsOfFile: cluster.directory.appendingPathComponent("third.log").path, encoding: .utf8)
            #expect(thirdLog.contains("the local store is discarded and restored from the log"))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 400)
            let split = eventIds.filter { $0.value.count > 1 }
            #expect(split.isEmpty, "completed twice with different eventIds: \(split.prefix(5))")
            await client.close()
            _ = await third.terminate(timeout: .seconds(60))
            for shard in try ShardInspector.shards(in: directory) {
                let audit = try ShardInspector(directory: directory, shard: shard).audit()
                #expect(audit.isHealthy, "shard \(shard): \(audit)")
            }
            // The shards as their logs hold them, audited without an owner; the worker's last stores are current.
            let check = try await ChildProcess.run([Repository.shardflowBinary, "check", "--from-log", "--brokers",
                                                    cluster.broker.bootstrapServers, "--prefix", cluster.topics.prefix,
                                                    "--data-dir", directory])
            #expect(check.status == 0, "\(check.output)")
            #expect(check.output.components(separatedBy: "is current").count == 5, "\(check.output)")
            await completions.close()
            await cluster.stop()
        }

        /// For each shard, the directory whose copy holds the most of its history.
        @Test("a claim in a shard's log that no revoke follows: /readyz names the stopped shard, and the worker rejoins after 30 s and runs it again")
        func claimNoAssignmentFollows() async throws {
            let cluster = try await TestCluster.start(partitions: 2, name: "stray")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let port = try LocalBroker.freeLoopbackPort()
            let worker = try cluster.startWorker(name: "worker", extra: ["--http-port", String(port)])
            try await HealthProbe.waitUntilReady(port: port, timeout: .seconds(60))
            let client = try cluster.client()
            let before = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(2)]), count: 40, idPrefix: "before")
            try await client.startAll(before)
            #expect(await completions.waitForCompletions(Set(before.map(\.workflowId)), timeout: .seconds(60)))

            // A claim of shard 1 by no member of the group (an operator's tool gone wrong, a worker of another group).
            let producer = try KafkaProducer(configuration: cluster.kafka)
            let claim = ShardLogClaim(owner: "stray/1", at: Int64(Date().timeIntervalSince1970 * 1000))
            _ = try await producer.send(KafkaProducerMessage(topic: cluster.topics.shardLog, partition: 1, key: nil,
                                                             value: ShardLogRecord.claim(claim).encoded()))
            await producer.close()
            var stopped: String?
            let deadline = ContinuousClock.now.advanced(by: .seconds(25))
            while stopped == nil && ContinuousClock.now < deadline {
                if let answer = await HealthProbe.get(port: port, path: "/readyz"), answer.status != 200,
                   answer.body.contains("shard 1 stopped: claimed in its log by stray/1") {
                    stopped = answer.body
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(stopped != nil, "/readyz never named the stopped shard")

            // Starts for both shards, published while shard 1 is stopped: all complete once the worker has rejoined.
            let after = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(2)]), count: 40, idPrefix: "after")
            try await client.startAll(after)
            await client.close()
            #expect(await completions.waitForCompletions(Set((before + after).map(\.workflowId)), timeout: .seconds(120)))
            try await HealthProbe.waitUntilReady(port: port, timeout: .seconds(60))
            try await Task.sleep(for: .seconds(1))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 80)
            #expect(eventIds.values.allSatisfy { $0.count == 1 })
            _ = await worker.terminate(timeout: .seconds(60))
            let log = try String(contentsOfFile: cluster.directory.appendingPathComponent("worker.log").path, encoding: .utf8)
            #expect(log.contains("fenced by a claim but not revoked; rejoining the group"))
            #expect(try cluster.audit().filter { !$0.isHealthy }.isEmpty)
            await completions.close()
            await cluster.stop()
        }

        static func newestCopies(directories: [String]) throws -> [Int: String] {
            var newest: [Int: (seq: Int64, directory: String)] = [:]
            for directory in directories where FileManager.default.fileExists(atPath: directory) {
                for shard in try ShardInspector.shards(in: directory) {
                    let seq = try ShardInspector(directory: directory, shard: shard).logState().lastSeq
                    if seq > newest[shard]?.seq ?? -1 { newest[shard] = (seq, directory) }
                }
            }
            return newest.mapValues(\.directory)
        }
    }
}
