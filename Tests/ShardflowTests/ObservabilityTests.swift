import Foundation
import Shardflow
import ShardflowEngine
import ShardflowKafka
import ShardflowTesting
import Testing

extension Integration {
    @Suite("Observability")
    struct Observability {
        static func get(_ port: Int, _ path: String) async -> (status: Int, body: String)? {
            await HealthProbe.get(port: port, path: path)
        }

        static func waitFor(_ port: Int, _ path: String, status: Int, timeout: Duration) async -> Bool {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while ContinuousClock.now < deadline {
                if await get(port, path)?.status == status { return true }
                try? await Task.sleep(for: .milliseconds(250))
            }
            return false
        }

        /// The value of one Prometheus series (`name{labels}`), summed over label sets that contain `labels`.
        static func value(_ metrics: String, _ name: String, _ labels: [String] = []) -> Double? {
            var total: Double?
            for line in metrics.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
                let head = line.split(separator: " ").first.map(String.init) ?? ""
                guard head == name || head.hasPrefix(name + "{"), labels.allSatisfy({ head.contains($0) }),
                      let number = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
                total = (total ?? 0) + number
            }
            return total
        }

        @Test("after a small run /metrics shows the named series with the right values")
        func metricsAfterRun() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "metrics")
            let port = try LocalBroker.freeLoopbackPort()
            let worker = try cluster.startWorker(extra: ["--http-port", String(port)])
            #expect(await Self.waitFor(port, "/healthz", status: 200, timeout: .seconds(30)))
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let client = try cluster.client()
            let starts = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(2)]), count: 40, idPrefix: "m")
            try await client.startAll(starts)
            _ = try await client.publishRaw(key: "junk", value: Array("{junk".utf8))
            await client.close()
            #expect(await completions.waitForCompletions(Set(starts.map(\.workflowId)), timeout: .seconds(60)))
            try await Task.sleep(for: .seconds(3)) // one gauge refresh
            let metrics = try #require(await Self.get(port, "/metrics")).body
            #expect(Self.value(metrics, "shardflow_workflows_started_total") == 40)
            #expect(Self.value(metrics, "shardflow_workflows_completed_total", [#"status="succeeded""#]) == 40)
            #expect(Self.value(metrics, "shardflow_steps_total", [#"status="succeeded""#]) == 80)
            #expect(Self.value(metrics, "shardflow_dead_letters_total") == 1)
            #expect(Self.value(metrics, "shardflow_step_duration_seconds_count") == 80)
            #expect(Self.value(metrics, "shardflow_workflow_duration_seconds_count") == 40)
            // Replays run in batches (one transaction replays many workflows); each batch is one observation.
            #expect((Self.value(metrics, "shardflow_replay_duration_seconds_count") ?? 0) > 0)
            #expect(Self.value(metrics, "shardflow_queued_tasks") == 0)
            #expect(Self.value(metrics, "shardflow_running_steps") == 0)
            #expect(Self.value(metrics, "shardflow_replay_queue_depth") == 0)
            #expect(Self.value(metrics, "shardflow_outbox_depth") == 0)
            #expect(Self.value(metrics, "shardflow_epoch", [#"shard="0""#]) == 0)
            #expect(Self.value(metrics, "shardflow_consumer_lag") == 0)
            #expect(Self.value(metrics, "shardflow_owned_shards") == 4)
            // Sampled every 100 ms from the worker's start: an idle worker's samples wait well under a second.
            let lagSamples = Self.value(metrics, "shardflow_executor_lag_seconds_count") ?? 0
            #expect(lagSamples >= 10)
            #expect(Self.value(metrics, "shardflow_executor_lag_seconds_bucket", [#"le="1.0""#]) == lagSamples)
            await worker.terminate(timeout: .seconds(30))
            await completions.close()
            await cluster.stop()
        }

        @Test("/readyz turns unready when the broker stops and ready again when it returns")
        func readinessFollowsBroker() async throws {
            let cluster = try await TestCluster.start(partitions: 2, name: "ready")
            let port = try LocalBroker.freeLoopbackPort()
            let worker = try cluster.startWorker(extra: ["--http-port", String(port)])
            #expect(await Self.waitFor(port, "/readyz", status: 200, timeout: .seconds(60)))
            await cluster.broker.stop()
            #expect(await Self.waitFor(port, "/readyz", status: 503, timeout: .seconds(30)))
            #expect(await Self.get(port, "/readyz")?.body.contains("broker unreachable") == true)
            #expect(await Self.get(port, "/healthz")?.status == 200)
            try await cluster.broker.start()
            // The restarted broker has lost its in-memory topics: recreate them, then readiness returns.
            try await TopicSetup.createAll(admin: try KafkaAdmin(configuration: cluster.kafka), topics: cluster.topics,
                                           partitions: 2)
            #expect(await Self.waitFor(port, "/readyz", status: 200, timeout: .seconds(60)))
            await worker.terminate(timeout: .seconds(30))
            await cluster.stop()
        }
    }
}
