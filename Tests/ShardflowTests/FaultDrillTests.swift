import Foundation
import Logging
import Shardflow
import ShardflowBench
import Testing

extension Integration {
    @Suite("Fault drill")
    struct FaultDrillSuite {
        @Test("workers killed, joining and leaving, the broker paused and restarted on durable storage, malformed input and LLM errors: nothing lost, duplicated or stuck")
        func smallDrill() async throws {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("shardflow-drill-\(UUID().uuidString)")
            // Kept when the drill falls short, so the workers' logs show why.
            var keepOutput = false
            defer { if !keepOutput { try? FileManager.default.removeItem(at: output) } }
            var options = FaultDrillOptions(workerExecutable: Repository.shardflowBinary, outputDirectory: output.path)
            options.workflows = 400
            // About 50 s of work on 8 x 4 slots (1,600 steps of 1.1 s mean), so every fault meets work in flight.
            options.steps = 4
            options.shards = 8
            options.maxConcurrency = 4
            options.workers = 3
            options.malformedRate = 0.03
            options.llmErrorRate = 0.025
            options.latencyMedian = .seconds(1)
            options.latencyP99 = .seconds(3)
            options.stallTimeout = .seconds(180)
            var logger = Logger(label: "shardflow.drill-test")
            logger.logLevel = .warning
            let report = try await FaultDrill(options: options, logger: logger).run { line in print("drill: \(line)") }
            print(report)
            keepOutput = !report.passed || report.faults.count != 7
            if keepOutput { print("drill: output kept in \(output.path)") }
            #expect(report.faults.count == 7, "\(report.faults)")
            #expect(report.faults.contains { $0.contains("broker restarted") })
            #expect(report.faultsAfterTheWork == 0, "faults came after the work was done: \(report.faults)")
            #expect(report.faults.contains { $0.contains("SIGSTOP") })
            #expect(report.submitted == 400)
            #expect(report.completed == 400)
            #expect(report.lost == 0)
            #expect(report.logicalDuplicates == 0)
            #expect(report.malformedSent == 12)
            #expect(report.deadLetters == report.malformedSent)
            #expect(report.unexpectedDeadLetters == 0)
            #expect(report.stuck == 0)
            #expect(report.failed == 0)
            #expect(report.workerDeaths == 3, "a worker died of something other than the drill's kills")
            #expect(report.passed)
        }
    }
}
