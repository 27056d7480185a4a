import ArgumentParser
import Foundation
import Shardflow
import ShardflowBench
import ShardflowKafka

struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "A fault drill: workers killed and restarted, the broker stopped and restarted, malformed input, LLM errors; then counts lost, duplicated, dead-lettered and stuck workflows. Exits 1 unless all hold.")
    @Option(help: "llm-chain workflows to run.") var workflows: Int = 10_000
    @Option(help: "LLM calls per workflow.") var steps: Int = 3
    @Option(help: "Shards (partitions of the workflows topic).") var shards: Int = 16
    @Option(help: "Worker processes at the start.") var workers: Int = 3
    @Option(help: "Steps running at once per shard, in each worker.") var maxConcurrency: Int = 50
    @Option(help: "Median mock LLM latency (the work must outlast the fault schedule, about 40 s).",
            transform: DurationArgument.parse) var latencyMedian: Duration = .seconds(1)
    @Option(help: "99th percentile mock LLM latency.", transform: DurationArgument.parse) var latencyP99: Duration = .seconds(3)
    @Option(help: "Fraction of inbound messages that are malformed.") var malformedRate: Double = 0.01
    @Option(help: "Fraction of LLM calls answered 500, and as many answered 529.") var llmErrorRate: Double = 0.025
    @Option(help: "Use these brokers (your cluster: the broker itself is then left alone) instead of a local durable one.")
    var brokers: String?
    @Option(name: .customShort("X"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("A librdkafka property for the drill's clients and workers, key=value. Repeatable.",
                               valueName: "key=value"))
    var properties: [String] = []
    @Option(help: "Seed of the fault order and the victims.") var seed: UInt64 = 42
    @Option(help: "Folder for drill.json, worker logs and stores.") var output: String = ".run/drill"
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.bootstrapForReport(label: "shardflow.drill")
        var options = FaultDrillOptions(workerExecutable: try ExecutablePath.current(), outputDirectory: output)
        options.workflows = workflows
        options.steps = steps
        options.shards = shards
        options.workers = workers
        options.maxConcurrency = maxConcurrency
        options.latencyMedian = latencyMedian
        options.latencyP99 = latencyP99
        options.malformedRate = malformedRate
        options.llmErrorRate = llmErrorRate
        options.brokers = brokers
        options.seed = seed
        var parsed = KafkaConfiguration(bootstrapServers: brokers ?? "")
        do {
            try parsed.add(assignments: properties)
        } catch {
            throw ValidationError("\(error)")
        }
        options.kafkaProperties = parsed.properties
        let report = try await FaultDrill(options: options, logger: logger).run { line in
            FileHandle.standardError.write(Data("drill: \(line)\n".utf8))
        }
        print(report)
        print("wrote \(URL(fileURLWithPath: output).appendingPathComponent("drill.json").path)")
        if !report.passed { throw ExitCode(1) }
    }
}
