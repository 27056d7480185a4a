import Foundation
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka
import ShardflowSupport
import ShardflowTesting
import Testing

extension Integration {
    @Suite("Web console and shardflow dev")
    struct WebConsole {
        struct BrowserReport: Decodable {
            var header: [String]
            var shards: [[String]]
            var total: [[String]]
            var shardsScreenshot: String
            struct Action: Decodable { var http: String; var status: String; var text: String }
            var withoutToken: Action
            var withToken: Action
            var resume: Action
            var epochBefore: Int
            var epochAfter: Int
            var executorAfterBump: String
            var workflowStatus: String
            var journal: [[String]]
            var replays: [String]
            var workflowScreenshot: String
            var parked: [String]
            var browserSeconds: Double
            var forgedNoHeader: Int
            var forgedOtherOrigin: Int
            var forgedCrossSite: Int
            var wrongToken: Int
        }

        /// Where the browser test leaves its screenshots.
        static let outputDirectory = Repository.root.appendingPathComponent(".run/test-output/console")

        @Test("headless Chromium: the shards view shows the right numbers and updates live, a workflow page shows its journal, an action is refused without the token and applied with it")
        func consoleInARealBrowser() async throws {
            let cluster = try await TestCluster.start(partitions: 4, name: "console")
            let completions = TopicCollector(reader: try await cluster.reader(cluster.topics.completions))
            let token = "console-test-token-0123456789"
            let tokenFile = cluster.directory.appendingPathComponent("token").path
            try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: tokenFile))
            let port = try LocalBroker.freeLoopbackPort()
            let worker = try cluster.startWorker(extra: ["--http-port", String(port), "--console-actions", "--console-token-file", tokenFile])
            try await HealthProbe.waitUntilReady(port: port, timeout: .seconds(60))
            let client = try cluster.client()
            let done = LoadGenerator.starts(workflow: "noop", args: .object(["steps": .int(3)]), count: 20, idPrefix: "done")
            try await client.startAll(done)
            try await client.startAll([StartMessage(workflowId: "waits-1", workflow: "approval", args: .object([:])),
                                       StartMessage(workflowId: "parked-1", workflow: "noop", args: .object(["steps": .int(1)]), version: 7)])
            #expect(await completions.waitForCompletions(Set(done.map(\.workflowId)), timeout: .seconds(60)))
            // Settled: the snapshots (every 2 s) show the parked workflow.
            let settled = ContinuousClock.now.advanced(by: .seconds(30))
            while ContinuousClock.now < settled {
                let body = await HealthProbe.get(port: port, path: "/console/api/overview")?.body ?? ""
                if let overview = try? JSONCoding.decode(ConsoleOverview.self, from: body),
                   overview.shards.count == 4, overview.shards.reduce(0, { $0 + $1.parkedWorkflows }) == 1,
                   overview.shards.allSatisfy({ $0.queuedTasks == 0 && $0.runningTasks == 0 && $0.replayQueueDepth == 0 }) { break }
                try await Task.sleep(for: .milliseconds(300))
            }
            let parkedShard = ShardRouting.partition(ofWorkflowId: "parked-1", partitionCount: 4)
            let waitingShard = ShardRouting.partition(ofWorkflowId: "waits-1", partitionCount: 4)
            let journaled = try #require(done.first?.workflowId)

            let started = ContinuousClock.now
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Repository.root.appendingPathComponent("scripts/console-browser-check.py").path,
                                 "http://127.0.0.1:\(port)", token, String(parkedShard), journaled, Self.outputDirectory.path]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let browserTime = ContinuousClock.now - started
            #expect(process.terminationStatus == 0, "\(String(decoding: data, as: UTF8.self))")
            let report = try JSONDecoder().decode(BrowserReport.self, from: data)

            // The shards view: one row per owned shard, with the numbers the store has.
            #expect(report.shards.map { $0[0] } == ["0", "1", "2", "3"])
            let column = { (name: String) in report.header.firstIndex(of: name) ?? -1 }
            for row in report.shards {
                let shard = Int(row[0]) ?? -1
                #expect(row[column("parked")] == (shard == parkedShard ? "1" : "0"), "\(row)")
                #expect(row[column("stuck")] == "0")
                #expect(row[column("queued")] == "0")
                #expect(row[column("executor")] == "running")
                let running = (shard == parkedShard ? 1 : 0) + (shard == waitingShard ? 1 : 0)
                #expect(row[column("running workflows")] == String(running), "\(row)")
            }
            #expect(report.total.first?[column("parked")] == "1")
            #expect(report.total.first?[column("running workflows")] == "2")
            // Actions: refused without the token, applied with it, and the view shows the new epoch by itself.
            #expect(report.withoutToken.http == "401")
            #expect(report.withoutToken.text.contains("missing or wrong admin token"))
            #expect(report.withToken.http == "200")
            #expect(report.withToken.status == "applied")
            #expect(report.epochAfter == report.epochBefore + 1)
            #expect(report.executorAfterBump == "stopped")
            #expect(report.resume.status == "applied")
            // A workflow page shows the journal.
            #expect(report.workflowStatus == "succeeded")
            #expect(report.journal.map { Array($0.prefix(4)) } == (1...3).map { [String($0), "step", "noop", "succeeded"] })
            // Its replay history: the three steps' results were delivered by replays 2, 3 and 4.
            #expect(report.replays == ["2", "3", "4"])
            #expect(report.parked == ["parked-1"])
            // Forged requests are refused even with the token; a wrong token is refused too.
            #expect([report.forgedNoHeader, report.forgedOtherOrigin, report.forgedCrossSite] as [Int] == [403, 403, 403])
            #expect(report.wrongToken == 401)
            #expect(FileManager.default.fileExists(atPath: report.shardsScreenshot))
            #expect(FileManager.default.fileExists(atPath: report.workflowScreenshot))
            print("console browser check: \(String(format: "%.1f", browserTime.timeInterval)) s with the browser (\(report.browserSeconds) s in it); screenshots in \(Self.outputDirectory.path)")

            // The actions were control messages, answered on control-results like `shardflow admin`'s.
            let answers = TopicCollector(reader: try await cluster.reader(cluster.topics.controlResults))
            #expect(await answers.wait(timeout: .seconds(30)) { _ in answers.decoded(ControlResult.self).count >= 2 })
            #expect(Set(answers.decoded(ControlResult.self).compactMap(\.type)) == ["bumpEpoch", "resumeExecutors"])
            await answers.close()
            #expect(await worker.terminate(timeout: .seconds(60)) == 0)
            await client.close()
            await completions.close()
            await cluster.stop()
        }

        @Test("shardflow dev starts a broker, the mock LLM and a worker with its console, runs a workflow, and stops them all on Ctrl-C")
        func devEnvironment() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("shardflow-dev-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let kafkaPort = try LocalBroker.freeLoopbackPort()
            let httpPort = try LocalBroker.freeLoopbackPort()
            let mockPort = try LocalBroker.freeLoopbackPort()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let log = directory.appendingPathComponent("dev.out").path
            let dev = try ChildProcess(arguments: [Repository.shardflowBinary, "dev", "--directory", directory.appendingPathComponent("state").path,
                                                   "--kafka-port", String(kafkaPort), "--http-port", String(httpPort),
                                                   "--mock-port", String(mockPort), "--shards", "4"], outputPath: log)
            let deadline = ContinuousClock.now.advanced(by: .seconds(120))
            var printed = ""
            while ContinuousClock.now < deadline && !dev.hasExited {
                printed = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if printed.contains("Ctrl-C here stops everything") { break }
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(printed.contains("console   http://127.0.0.1:\(httpPort)/console"), "\(printed)")
            #expect(printed.contains("shardflow submit --brokers 127.0.0.1:\(kafkaPort)"))
            #expect(await HealthProbe.get(port: httpPort, path: "/console")?.status == 200)
            // A workflow with LLM steps runs against its broker and mock.
            let kafka = KafkaConfiguration(bootstrapServers: "127.0.0.1:\(kafkaPort)", properties: LocalBroker.clientProperties)
            let completions = TopicCollector(reader: try await TopicReader(configuration: kafka, topic: ShardflowTopics().completions, fromBeginning: true))
            let client = try WorkflowClient(configuration: kafka, topics: ShardflowTopics())
            _ = try await client.start(StartMessage(workflowId: "dev-1", workflow: "llm-chain", args: .object(["steps": .int(2)])))
            await client.close()
            #expect(await completions.waitForCompletions(["dev-1"], timeout: .seconds(60)))
            #expect(completions.completions().byWorkflow["dev-1"]?.status == .succeeded)
            await completions.close()
            // Ctrl-C: everything it started stops.
            dev.signal(SIGINT)
            let stopped = ContinuousClock.now.advanced(by: .seconds(60))
            while !dev.hasExited && ContinuousClock.now < stopped { try await Task.sleep(for: .milliseconds(200)) }
            #expect(dev.exitStatus == 0)
            #expect(await HealthProbe.get(port: httpPort, path: "/healthz") == nil, "the worker still answers")
            #expect(await HealthProbe.get(port: mockPort, path: "/") == nil, "the mock LLM still answers")
            #expect(Self.portIsFree(kafkaPort), "the broker still listens")
        }

        static func portIsFree(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            return result != 0
        }
    }
}
