import Foundation
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka
import ShardflowTesting
import Testing

extension Integration {
    @Suite("Poison workflows and inputs")
    struct PoisonWorkflows {
        /// Restarts any worker that died, as a supervisor (systemd, Kubernetes) would; counts the deaths.
        final class Supervisor {
            var workers: [String: ChildProcess] = [:]
            var deaths: [String: [Int32]] = [:]
            let cluster: TestCluster
            let extra: [String]

            init(cluster: TestCluster, names: [String], extra: [String]) throws {
                self.cluster = cluster
                self.extra = extra
                for name in names { workers[name] = try cluster.startWorker(name: name, extra: extra) }
            }

            func superviseOnce() throws {
                for (name, worker) in workers where worker.hasExited {
                    deaths[name, default: []].append(worker.exitStatus ?? -1)
                    workers[name] = try cluster.startWorker(name: "\(name)-\(deaths[name]!.count)", extra: extra)
                }
            }

            var totalDeaths: Int { deaths.values.reduce(0) { $0 + $1.count } }

            func stop() async {
                for worker in workers.values { await worker.terminate(timeout: .seconds(60)) }
            }
        }

        @Test("a workflow whose step or body traps is quarantined after two deaths; the group recovers and the rest completes")
        func trappingWorkflowsAreQuarantined() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "trap")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let supervisor = try Supervisor(cluster: cluster, names: ["a", "b"], extra: ["--drill-workflows"])
            let client = try cluster.client()
            let normal = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(2)]), count: 300, idPrefix: "ok")
            try await client.startAll(normal)
            let traps = [
                StartMessage(workflowId: "trap-step", workflow: "drill-trap",
                             args: .object(["in": .string("step"), "message": .string("index out of range")])),
                StartMessage(workflowId: "trap-body", workflow: "drill-trap",
                             args: .object(["in": .string("body"), "message": .string("force unwrap of nil")])),
            ]
            try await client.startAll(traps)
            let after = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(2)]), count: 100, idPrefix: "after")
            try await client.startAll(after)
            await client.close()
            let ids = Set(normal.map(\.workflowId) + traps.map(\.workflowId) + after.map(\.workflowId))
            let deadline = ContinuousClock.now.advanced(by: .seconds(300))
            while ContinuousClock.now < deadline {
                try supervisor.superviseOnce()
                if await completions.waitForCompletions(ids, timeout: .milliseconds(500)) { break }
            }
            let (byWorkflow, eventIds) = completions.completions()
            let missing = ids.subtracting(byWorkflow.keys)
            #expect(missing.isEmpty, "\(missing.count) missing, e.g. \(missing.sorted().prefix(5))")
            for trap in traps {
                let completion = byWorkflow[trap.workflowId]
                #expect(completion?.status == .failed)
                #expect(completion?.error?.message.contains("quarantined") == true, "\(String(describing: completion))")
                #expect(completion?.error?.message.contains("stopped the worker 2 times") == true)
            }
            #expect(byWorkflow["trap-step"]?.error?.step == "drill-trap")
            let others = byWorkflow.filter { !$0.key.hasPrefix("trap-") }
            #expect(others.count == 400)
            #expect(others.values.allSatisfy { $0.status == .succeeded })
            #expect(eventIds.values.allSatisfy { $0.count == 1 }, "a workflow completed twice with different eventIds")
            // Each trap killed a worker exactly as often as the quarantine count: twice each.
            #expect(supervisor.totalDeaths == 4, "deaths: \(supervisor.deaths)")
            #expect(supervisor.deaths.values.joined().allSatisfy { $0 != 0 }, "\(supervisor.deaths)")
            await supervisor.stop()
            let audit = try cluster.audit()
            #expect(audit.filter { !$0.isHealthy }.isEmpty, "\(audit.filter { !$0.isHealthy })")
            #expect(Set(audit.flatMap(\.quarantinedWorkflows)) == ["trap-step", "trap-body"])
            await completions.close()
            await cluster.stop()
        }
    }
}
