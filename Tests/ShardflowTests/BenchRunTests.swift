import Foundation
import Shardflow
import ShardflowBench
import ShardflowTesting
import Testing

extension Integration {
    @Suite("Bench")
    struct BenchRun {
        @Test("a 200-workflow llm-chain bench against the mock: the JSON report is consistent and nothing is stuck")
        func smallBenchReportIsConsistent() async throws {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("shardflow-bench-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: output) }
            let run = try await ChildProcess.run([
                Repository.shardflowBinary, "bench", "--workflows", "200", "--workflow", "llm-chain", "--steps", "3",
                "--shards", "8", "--latency-median", "50ms", "--latency-p99", "200ms", "--error-rate", "0.02",
                "--output", output.path, "--stall-timeout", "60", "--log-level", "warning",
            ])
            #expect(run.status == 0, "\(run.output.suffix(2_000))")
            let data = try Data(contentsOf: output.appendingPathComponent("report.json"))
            let report = try JSONDecoder().decode(BenchReport.self, from: data)
            #expect(report.workflows == 200)
            #expect(report.succeeded + report.failed + report.canceled + report.incomplete == report.workflows)
            // Injected 500s are retried inside the step and by the step's policy: none should fail for good.
            #expect(report.succeeded == 200, "\(report.failed) failed, \(report.incomplete) incomplete")
            #expect(report.stuck == 0)
            #expect(report.metadata.submitted == 200)
            #expect(report.metadata.workerPeakRSSBytes ?? 0 > 0)
            #expect(report.deciles.count == 10)
            #expect(report.deciles.map(\.workflows).reduce(0, +) == 200)
            #expect(report.deciles.map(\.firstIndex) == report.deciles.map(\.firstIndex).sorted())
            let percentiles = try #require(report.completionTime)
            #expect(percentiles.p50Ms <= percentiles.p90Ms && percentiles.p90Ms <= percentiles.p99Ms
                    && percentiles.p99Ms <= percentiles.maxMs)
            #expect(report.throughput.steps == 600)
            #expect(report.makespan.idealMs != nil && (report.makespan.ratio ?? 0) >= 1)
            // The exact ideal uses the run's own draws (workers identify each call); with more slots than
            // workflows it is each workflow's own chain, which no run can beat.
            let exact = try #require(report.exactIdeal)
            #expect(exact.makespanRatio >= 1, "\(exact)")
            #expect(exact.decileRatios.allSatisfy { ($0 ?? 0) >= 1 }, "\(exact.decileRatios)")
            #expect(exact.makespanMs >= report.makespan.criticalPathMs * 0.5)
            // The mock runs as its own process: the CPU of each is measured apart.
            let cpu = try #require(report.cpu)
            #expect(cpu.workerMicrosecondsPerStep > 0)
            #expect((cpu.mockMicrosecondsPerStep ?? 0) > 0)
            #expect(run.output.contains("CPU per step"))
            // A step's time around its call: from the stores and the mock's request log. With a 2% error rate
            // most steps made one try; the call is the mock's draw (median 50 ms).
            let split = try #require(report.stepSplit)
            #expect(split.steps > 400 && split.steps <= 600, "\(split.steps) steps")
            #expect(split.call.p50Ms >= 20 && split.call.p50Ms <= split.call.p90Ms, "\(split.call)")
            #expect(split.beforeCall.p50Ms >= 0 && split.afterCall.p50Ms >= 0)
            #expect(run.output.contains("a step's time around its LLM call"))
            #expect((report.executorLag?.samples ?? 0) > 0)
            for file in ["report.txt", "chart.svg"] {
                #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(file).path))
            }
            #expect(run.output.contains("200 workflows: 200 completed"))
        }
    }
}
