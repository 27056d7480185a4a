import Foundation
import Shardflow
import ShardflowEngine
import ShardflowKafka
import ShardflowTesting
import Testing

extension Integration {
    @Suite("Worker failover")
    struct WorkerFailover {
        @Test("kill -9 in mid-run, then a restart: everything completes once per eventId, 0 stuck")
        func killNineAndRestart() async throws {
            let cluster = try await TestCluster.start(partitions: 8, name: "kill")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let first = try cluster.startWorker(name: "first")
            // Each step sleeps 400 ms, so the run lasts at least 187 workflows x 5 steps x 0.4 s / 50 slots = 7.5 s per
            // shard however fast the engine is: the kill lands mid-run, with steps in flight.
            let starts = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(5), "stepDelayMs": .int(400)]),
                                              count: 1_500, idPrefix: "kill")
            let client = try cluster.client()
            try await client.startAll(starts)
            await client.close()
            // Let part of the run complete, then kill the worker without warning.
            #expect(await completions.wait(timeout: .seconds(120)) { $0.count >= 200 })
            first.kill()
            await first.waitForExit()
            let beforeRestart = completions.completions().byWorkflow.count
            #expect(beforeRestart < 1_500, "the run finished before the kill; nothing was tested")

            let second = try cluster.startWorker(name: "second")
            let ids = Set(starts.map(\.workflowId))
            #expect(await completions.waitForCompletions(ids, timeout: .seconds(240)))
            try await Task.sleep(for: .seconds(2))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 1_500)
            #expect(byWorkflow.values.allSatisfy { $0.status == .succeeded })
            let split = eventIds.filter { $0.value.count > 1 }
            #expect(split.isEmpty, "completed twice with different eventIds: \(split.prefix(5))")
            await second.terminate(timeout: .seconds(60))
            let audit = try cluster.audit()
            let unhealthy = audit.filter { !$0.isHealthy }
            #expect(unhealthy.isEmpty, "\(unhealthy)")
            await completions.close()
            await cluster.stop()
        }

        @Test("two workers over one data dir split the shards; when one stops, the other finishes its shards")
        func twoWorkersThenOne() async throws {
            let cluster = try await TestCluster.start(partitions: 8, name: "pair")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let a = try cluster.startWorker(name: "a")
            let b = try cluster.startWorker(name: "b")
            let client = try cluster.client()
            let firstBatch = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(3)]), count: 800,
                                                  idPrefix: "pair1")
            try await client.startAll(firstBatch)
            #expect(await completions.waitForCompletions(Set(firstBatch.map(\.workflowId)), timeout: .seconds(180)))
            // Both workers ran shards: each log names the shards it was assigned.
            let logA = try String(contentsOfFile: cluster.directory.appendingPathComponent("a.log").path, encoding: .utf8)
            let logB = try String(contentsOfFile: cluster.directory.appendingPathComponent("b.log").path, encoding: .utf8)
            let shardsA = Self.lastAssignment(in: logA)
            let shardsB = Self.lastAssignment(in: logB)
            #expect(!shardsA.isEmpty && !shardsB.isEmpty, "a: \(shardsA) b: \(shardsB)")
            #expect(shardsA.isDisjoint(with: shardsB))
            #expect(shardsA.union(shardsB) == Set(0..<8))

            // One stops (SIGTERM: drain, flush, leave the group); the other takes every shard over.
            await a.terminate(timeout: .seconds(60))
            let secondBatch = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(3)]), count: 800,
                                                   idPrefix: "pair2")
            try await client.startAll(secondBatch)
            await client.close()
            #expect(await completions.waitForCompletions(Set(secondBatch.map(\.workflowId)), timeout: .seconds(180)))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 1_600)
            #expect(eventIds.values.allSatisfy { $0.count == 1 })
            await b.terminate(timeout: .seconds(60))
            #expect(try cluster.audit().filter { !$0.isHealthy }.isEmpty)
            await completions.close()
            await cluster.stop()
        }

        @Test("a worker on another, empty data directory restores the shards from their snapshots and logs and runs none of their workflows again")
        func restoresShardsWhoseStoresAreElsewhere() async throws {
            let cluster = try await TestCluster.start(partitions: 2, name: "elsewhere")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let first = try cluster.startWorker(name: "first", extra: ["--snapshot-every", "5"])
            let client = try cluster.client()
            let starts = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(1)]), count: 50, idPrefix: "here")
            try await client.startAll(starts)
            #expect(await completions.waitForCompletions(Set(starts.map(\.workflowId)), timeout: .seconds(60)))
            // A snapshot is published in the background once the log confirms what it covers: on a loaded
            // machine that may come after the last completion, so wait for one before stopping.
            let firstLogPath = cluster.directory.appendingPathComponent("first.log").path
            let deadline = ContinuousClock.now.advanced(by: .seconds(30))
            var firstLog = ""
            repeat {
                firstLog = (try? String(contentsOfFile: firstLogPath, encoding: .utf8)) ?? ""
                if firstLog.contains("bytes published") { break }
                try await Task.sleep(for: .milliseconds(200))
            } while ContinuousClock.now < deadline
            await first.terminate(timeout: .seconds(30))
            #expect(firstLog.contains("bytes published"), "the first worker published no snapshot")

            let elsewhere = cluster.directory.appendingPathComponent("elsewhere").path
            let second = try cluster.startWorker(name: "second", extra: ["--data-dir", elsewhere])
            let more = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(1)]), count: 20, idPrefix: "there")
            try await client.startAll(more)
            await client.close()
            #expect(await completions.waitForCompletions(Set(more.map(\.workflowId)), timeout: .seconds(60)))
            try await Task.sleep(for: .seconds(1))
            await second.terminate(timeout: .seconds(30))
            let log = try String(contentsOfFile: cluster.directory.appendingPathComponent("second.log").path, encoding: .utf8)
            #expect(log.components(separatedBy: "restored from its log").count == 3)
            #expect(log.contains("from a snapshot"))
            // The restored stores hold the first worker's 50 workflows, finished, and the 20 new ones.
            let succeeded = try ShardInspector.shards(in: elsewhere).map { shard in
                try ShardInspector(directory: elsewhere, shard: shard).stats().workflowsByStatus["succeeded"] ?? 0
            }.reduce(0, +)
            #expect(succeeded == 70)
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 70)
            #expect(eventIds.values.allSatisfy { $0.count == 1 })
            await completions.close()
            await cluster.stop()
        }

        @Test("a store whose lock another owner holds delays neither the other shards nor a revoke")
        func aLockedStoreDelaysNeitherOtherShardsNorARevoke() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "locked")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            // Shard 2's store is held by another owner on this host (as a previous owner still settling would).
            try FileManager.default.createDirectory(atPath: cluster.dataDirectory, withIntermediateDirectories: true)
            let lock = open(cluster.dataDirectory + "/shard-002.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            #expect(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0)
            let a = try cluster.startWorker(name: "a")
            let client = try cluster.client()
            let starts = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(1)]), count: 200, idPrefix: "locked")
            let onShard2 = Set(starts.map(\.workflowId).filter { ShardRouting.partition(ofWorkflowId: $0, partitionCount: 4) == 2 })
            #expect(!onShard2.isEmpty && onShard2.count < 200)
            try await client.startAll(starts)
            #expect(await completions.waitForCompletions(Set(starts.map(\.workflowId)).subtracting(onShard2), timeout: .seconds(60)),
                    "the other shards waited for the locked one")

            // A second worker joins while the open of shard 2 still waits for the lock: the first worker
            // must answer the revoke at once, not after the open (nor after the consumer's 30 s revoke timeout).
            let joined = ContinuousClock.now
            let b = try cluster.startWorker(name: "b", extra: ["--data-dir", cluster.directory.appendingPathComponent("b-data").path])
            let logA = cluster.directory.appendingPathComponent("a.log").path
            let logB = cluster.directory.appendingPathComponent("b.log").path
            var assignedB: Set<Int> = []
            while ContinuousClock.now - joined < .seconds(60) {
                assignedB = Self.lastAssignment(in: (try? String(contentsOfFile: logB, encoding: .utf8)) ?? "")
                if !assignedB.isEmpty { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            let handover = ContinuousClock.now - joined
            let textA = try String(contentsOfFile: logA, encoding: .utf8)
            print("the second worker got shards \(assignedB.sorted()) \(handover) after it started")
            #expect(!assignedB.isEmpty)
            #expect(textA.contains("revoked shards"))
            #expect(!textA.contains("handed over before the application acknowledged"), "the revoke waited for the open")
            #expect(handover < .seconds(25), "the revoke took \(handover)")

            // Once the lock is released, shard 2 runs wherever it went, and every workflow completes once.
            close(lock)
            #expect(await completions.waitForCompletions(Set(starts.map(\.workflowId)), timeout: .seconds(150)))
            try await Task.sleep(for: .seconds(1))
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == 200)
            #expect(eventIds.values.allSatisfy { $0.count == 1 })
            await b.terminate(timeout: .seconds(30))
            await a.terminate(timeout: .seconds(30))
            await completions.close()
            await cluster.stop()
        }

        /// The shards of the last "assigned shards [..]" line of a worker's log.
        static func lastAssignment(in log: String) -> Set<Int> {
            guard let line = log.split(separator: "\n").last(where: { $0.contains("assigned shards [") }),
                  let open = line.range(of: "assigned shards ["),
                  let close = line[open.upperBound...].firstIndex(of: "]") else { return [] }
            return Set(line[open.upperBound..<close].split(separator: ",").compactMap {
                Int($0.trimmingCharacters(in: .whitespaces))
            })
        }
    }
}
