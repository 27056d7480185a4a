import Foundation
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka
import ShardflowTesting
import Testing

extension Integration {
    @Suite("Deploying new workflow code")
    struct Deploy {
        /// Each drill workflow waits for `go` after its first step: a replay event that consumed step 1 and
        /// left it waiting says it is in flight at the point the deploy is about.
        static func waitingAfterFirstStep(_ replays: TopicCollector) -> Set<String> {
            Set(replays.decoded(ReplayEvent.self)
                .filter { $0.outcome == .waiting && $0.consumed.contains { $0.stepId == 1 } }
                .map(\.workflowId))
        }

        static func parked(_ replays: TopicCollector) -> Set<String> {
            Set(replays.decoded(ReplayEvent.self).filter { $0.outcome == .parked }.map(\.workflowId))
        }

        static func results(_ completions: TopicCollector) -> [String: DeployDrillWorkflows.Result] {
            completions.completions().byWorkflow.compactMapValues { event in
                event.result.flatMap { try? JSONCoding.decode(DeployDrillWorkflows.Result.self, from: $0.jsonString()) }
            }
        }

        @Test("v1 to v2 with workflows in flight: patched ones keep the old path, new ones take the new path, unsafe changes park and a rollback resumes them, versions are kept")
        func deployWithWorkflowsInFlight() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "deploy")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let replays = TopicCollector(reader: try await cluster.reader(cluster.topics.replays))
            let client = try cluster.client()
            func starts(_ workflow: String, _ count: Int, _ prefix: String, version: Int? = nil) -> [StartMessage] {
                LoadGenerator.starts(workflow: workflow, args: .string(prefix), count: count, idPrefix: prefix, version: version)
            }

            // Release 1 runs; every workflow gets to its wait for `go`.
            let v1 = try cluster.startWorker(name: "release-1", extra: ["--drill-deploy", "1"])
            let patchedOld = starts("drill-patched", 30, "patched-old")
            let unpatched = starts("drill-unpatched", 20, "unpatched")
            let versionedOld = starts("drill-versioned", 20, "versioned-old")
            let early = starts("drill-versioned", 5, "early-v2", version: 2)
            try await client.startAll(patchedOld + unpatched + versionedOld + early)
            let inFlight = Set((patchedOld + unpatched + versionedOld).map(\.workflowId))
            let earlyIds = Set(early.map(\.workflowId))
            let settled = await replays.wait(timeout: .seconds(120)) { _ in
                inFlight.isSubset(of: Self.waitingAfterFirstStep(replays)) && earlyIds.isSubset(of: Self.parked(replays))
            }
            #expect(settled, "in flight: \(inFlight.intersection(Self.waitingAfterFirstStep(replays)).count) of \(inFlight.count), parked early starts: \(Self.parked(replays).count)")
            #expect(await v1.terminate(timeout: .seconds(60)) == 0)
            let atDeploy = try cluster.audit()
            #expect(atDeploy.reduce(0) { $0 + $1.parkedWorkflows.count } == 5)
            #expect(atDeploy.allSatisfy { $0.isHealthy }, "\(atDeploy.filter { !$0.isHealthy })")
            #expect(completions.completions().byWorkflow.isEmpty)

            // Release 2: new starts, then `go` for everyone.
            let metricsPort = try LocalBroker.freeLoopbackPort()
            let v2 = try cluster.startWorker(name: "release-2", extra: ["--drill-deploy", "2", "--http-port", String(metricsPort)])
            let patchedNew = starts("drill-patched", 30, "patched-new")
            let versionedNew = starts("drill-versioned", 20, "versioned-new")
            let pinned = starts("drill-versioned", 5, "pinned-v1", version: 1)
            try await client.startAll(patchedNew + versionedNew + pinned)
            let started = Set((patchedNew + versionedNew + pinned).map(\.workflowId))
            let ready = await replays.wait(timeout: .seconds(120)) { _ in
                started.union(earlyIds).isSubset(of: Self.waitingAfterFirstStep(replays))
            }
            #expect(ready)
            let everyone = inFlight.union(earlyIds).union(started)
            for id in everyone.sorted() { _ = try await client.send(EventMessage(workflowId: id, name: "go", value: .null)) }
            let unpatchedIds = Set(unpatched.map(\.workflowId))
            let runnable = everyone.subtracting(unpatchedIds)
            #expect(await completions.waitForCompletions(runnable, timeout: .seconds(120)))
            #expect(await replays.wait(timeout: .seconds(60)) { _ in unpatchedIds.isSubset(of: Self.parked(replays)) })

            var results = Self.results(completions)
            for id in patchedOld.map(\.workflowId) { #expect(results[id] == DeployDrillWorkflows.Result(path: "old", version: 1), "\(id)") }
            for id in patchedNew.map(\.workflowId) { #expect(results[id] == DeployDrillWorkflows.Result(path: "new", version: 1), "\(id)") }
            for id in versionedOld.map(\.workflowId) + pinned.map(\.workflowId) {
                #expect(results[id] == DeployDrillWorkflows.Result(path: "old", version: 1), "\(id)")
            }
            for id in versionedNew.map(\.workflowId) + early.map(\.workflowId) {
                #expect(results[id] == DeployDrillWorkflows.Result(path: "new", version: 2), "\(id)")
            }
            #expect(unpatchedIds.isDisjoint(with: completions.completions().byWorkflow.keys))
            // The metrics say so too (the gauges are refreshed every 2 s).
            var metrics = ""
            let deadline = ContinuousClock.now.advanced(by: .seconds(30))
            while ContinuousClock.now < deadline {
                metrics = await HealthProbe.get(port: metricsPort, path: "/metrics")?.body ?? ""
                if Observability.value(metrics, "shardflow_parked_workflows") == 20 { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(Observability.value(metrics, "shardflow_parked_workflows") == 20)
            #expect(Observability.value(metrics, "shardflow_workflows_parked_total") == 20)
            // The 5 early starts of version 2 were parked by release 1 and run on here.
            #expect(Observability.value(metrics, "shardflow_workflows_unparked_total") == 5)

            // The operator fails five of the parked ones on purpose.
            let control = ControlClient(configuration: cluster.kafka, topics: cluster.topics)
            let givenUp = unpatched.prefix(5).map(\.workflowId)
            for id in givenUp {
                let shard = ShardRouting.partition(ofWorkflowId: id, partitionCount: cluster.partitions)
                let answers = try await control.send(.failParkedWorkflows, shards: [shard], reason: "superseded",
                                                     idPrefix: "fail-\(id)", wait: true, timeout: .seconds(60), workflowId: id)
                #expect(answers.map(\.status) == [.applied])
                #expect(answers.first?.affected.workflows == 1)
            }
            #expect(await completions.waitForCompletions(Set(givenUp), timeout: .seconds(60)))
            for id in givenUp {
                let completion = completions.completions().byWorkflow[id]
                #expect(completion?.status == .failed)
                #expect(completion?.error?.message.hasPrefix("failed by operator while parked: superseded (parked because: determinism violation") == true,
                        "\(String(describing: completion?.error))")
            }
            #expect(await v2.terminate(timeout: .seconds(60)) == 0)
            let parkedAudit = try cluster.audit()
            #expect(parkedAudit.reduce(0) { $0 + $1.parkedWorkflows.count } == 15)
            #expect(parkedAudit.allSatisfy { $0.stuckWorkflows.isEmpty && $0.isHealthy })
            // The journal shows the marker where the new path was taken, and none where it was not.
            let newOne = try #require(patchedNew.first?.workflowId)
            let oldOne = try #require(patchedOld.first?.workflowId)
            func journal(_ id: String) throws -> [WorkflowDetail.JournalRow] {
                let shard = ShardRouting.partition(ofWorkflowId: id, partitionCount: cluster.partitions)
                return try ShardInspector(directory: cluster.dataDirectory, shard: shard).workflow(id)?.journal ?? []
            }
            #expect(try journal(newOne).filter { $0.kind == "patch" }.map(\.name) == ["add-critique"])
            #expect(try journal(newOne).filter { $0.kind == "step" }.map(\.name) == ["drill-note", "drill-critique", "drill-note"])
            #expect(try journal(oldOne).allSatisfy { $0.kind != "patch" })

            // Rollback to release 1: the parked workflows run on, on the code they started with.
            let rollback = try cluster.startWorker(name: "release-1-again", extra: ["--drill-deploy", "1"])
            let rest = Set(unpatched.dropFirst(5).map(\.workflowId))
            #expect(await completions.waitForCompletions(rest, timeout: .seconds(120)))
            results = Self.results(completions)
            for id in rest { #expect(results[id] == DeployDrillWorkflows.Result(path: "old", version: 1), "\(id)") }
            let (byWorkflow, eventIds) = completions.completions()
            #expect(byWorkflow.count == everyone.count)
            #expect(eventIds.values.allSatisfy { $0.count == 1 }, "a workflow completed twice with different eventIds")
            // The replays topic is read by its own consumer, which may trail the completions one.
            #expect(await replays.wait(timeout: .seconds(60)) { _ in
                replays.decoded(ReplayEvent.self).contains { $0.trigger == .unpark && rest.contains($0.workflowId) }
            })
            // Parked and unpark replay events fit the contract's schema like every other.
            for message in replays.all {
                #expect(try ContractSchemas.validate(Data(message.value), against: "replay").isEmpty,
                        "\(String(decoding: message.value, as: UTF8.self))")
            }
            #expect(await rollback.terminate(timeout: .seconds(60)) == 0)
            let final = try cluster.audit()
            #expect(final.allSatisfy { $0.isHealthy && $0.parkedWorkflows.isEmpty }, "\(final)")
            print("deploy drill: \(inFlight.count + earlyIds.count) in flight at the deploy (\(earlyIds.count) of them parked early starts), "
                  + "\(patchedOld.count) patched kept the old path, \(patchedNew.count) new took the new path, "
                  + "\(unpatched.count) unsafely changed parked, \(givenUp.count) failed by the operator, \(rest.count) resumed by the rollback")
            await client.close()
            await completions.close()
            await replays.close()
            await cluster.stop()
        }
    }
}
