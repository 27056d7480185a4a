import ArgumentParser
import Foundation
import Logging
import Shardflow
import ShardflowBench
import ShardflowEngine
import ShardflowLLM

/// Options shared by `bench` and `demo`.
struct BenchArguments: ParsableArguments {
    @Option(help: "Workflows to run.") var workflows: Int = 20_000
    @Option(help: "Workflow: llm-chain, fanout or noop.") var workflow: String = "llm-chain"
    @Option(help: "Steps per workflow (branches for fanout).") var steps: Int = 3
    @Flag(help: "Run noop steps instead of LLM calls (pure overhead).") var noLlm = false
    @Option(help: "Median mock LLM latency.", transform: DurationArgument.parse) var latencyMedian: Duration = .seconds(1)
    @Option(help: "p99 mock LLM latency.", transform: DurationArgument.parse) var latencyP99: Duration = .seconds(4)
    @Option(help: "Fraction of mock LLM requests answered 500.") var errorRate: Double = 0
    @Option(help: "Fraction of mock LLM requests answered 529.") var overloadRate: Double = 0
    @Option(help: "Mock LLM requests per minute before 429; 0: no limit.") var rateLimitRpm: Int = 0
    @Option(help: "The workers' client-side limit of LLM requests per minute (shared by all shards of a worker; split between workers); 0: none.")
    var llmRpm: Int = 0
    @Option(help: "Shards (partitions of the workflows topic).") var shards: Int = 100
    @Option(help: "Steps running at once per shard.") var maxConcurrency: Int = 50
    @Option(help: "Tasks per claim.") var claimLimit: Int = 50
    @Option(help: "Worker processes.") var workers: Int = 1
    @Option(help: "Use these brokers instead of starting a local one.") var brokers: String?
    @Option(help: "Use this Messages API instead of starting the mock LLM.") var llmBaseURL: String?
    @Option(help: "Folder for report.json, report.txt, chart.svg, worker logs and stores.") var output: String = ".run/bench"
    @Option(help: "Seconds without any completion before giving up waiting.") var stallTimeout: Int = 180

    func options() throws -> BenchOptions {
        guard workflows > 0, steps > 0, shards > 0, workers > 0 else {
            throw ValidationError("--workflows, --steps, --shards and --workers must be positive")
        }
        guard ["llm-chain", "fanout", "noop"].contains(workflow) else {
            throw ValidationError("--workflow must be llm-chain, fanout or noop")
        }
        var options = BenchOptions(workerExecutable: try ExecutablePath.current(), outputDirectory: output)
        options.workflows = workflows
        options.workflow = workflow
        options.steps = steps
        options.noLLM = noLlm || workflow == "noop"
        options.latencyMedian = latencyMedian
        options.latencyP99 = latencyP99
        options.errorRate = errorRate
        options.overloadRate = overloadRate
        options.rateLimitRPM = rateLimitRpm
        options.clientRequestsPerMinute = llmRpm
        options.shards = shards
        options.maxConcurrency = maxConcurrency
        options.claimLimit = claimLimit
        options.workerCount = workers
        options.brokers = brokers
        options.llmBaseURL = llmBaseURL
        options.stallTimeout = .seconds(stallTimeout)
        return options
    }

    func run(logger: Logger) async throws {
        let runner = BenchRunner(options: try options(), logger: logger)
        let outcome = try await runner.run { line in
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            if !line.hasPrefix("[") { FileHandle.standardError.write(Data("\n".utf8)) }
        }
        FileHandle.standardError.write(Data("\n".utf8))
        print(outcome.report.text())
        for file in outcome.files { print("wrote \(file.path)") }
        print("")
        print(outcome.report.summaryLine())
    }
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run N workflows end to end (broker, mock LLM, worker processes) and report like a production run.")
    @OptionGroup var bench: BenchArguments
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.bootstrap(label: "shardflow.bench")
        try await bench.run(logger: logger)
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job: a local broker, the mock LLM and a worker run 10,000 llm-chain workflows (more work than the 5,000 slots, so FIFO shows); prints the report.")
    @Option(help: "Workflows to run.") var workflows: Int = 10_000
    @Option(help: "Folder for the report and chart.") var output: String = ".run/demo"
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.bootstrapForReport(label: "shardflow.demo")
        var bench = try BenchArguments.parse(["--workflows", String(workflows), "--workflow", "llm-chain",
                                              "--steps", "3", "--output", output])
        bench.stallTimeout = 120
        try await bench.run(logger: logger)
    }
}

struct BenchEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-engine",
        abstract: "Benchmark the engine alone (no Kafka): N workflows x K no-op steps over S shards.")
    @Option(help: "Workflows.") var workflows: Int = 20_000
    @Option(help: "No-op steps per workflow.") var steps: Int = 3
    @Option(help: "Shards (comma-separated list runs each).") var shards: String = "1,100"
    @Option(help: "Crash attribution (the quarantine's crash guard): on, off, or compare (off and on alternately, N pairs).")
    var crashAttribution: String = "on"
    @Option(help: "Pairs of runs for --crash-attribution compare.") var pairs: Int = 3
    @Flag(help: "Capture every transaction for a shard log (confirmed at once, no Kafka): the capture's cost.")
    var captureLog = false
    @Option(help: "Steps at once per shard, and per claim (the contract's 50): more shows whether a shard is bound by its slots or by its CPU.")
    var maxConcurrency: Int = 50

    func run() async throws {
        guard maxConcurrency > 0 else { throw ValidationError("--max-concurrency takes a positive number") }
        guard ["on", "off", "compare"].contains(crashAttribution) else {
            throw ValidationError("--crash-attribution takes on, off or compare")
        }
        for item in shards.split(separator: ",") {
            guard let count = Int(item.trimmingCharacters(in: .whitespaces)), count > 0 else {
                throw ValidationError("--shards takes positive numbers, got '\(item)'")
            }
            func once(_ attribution: Bool) async throws -> EngineBenchmark.Report {
                var configuration = ShardConfiguration(maxConcurrency: maxConcurrency, claimLimit: maxConcurrency)
                configuration.crashAttribution = attribution
                return try await EngineBenchmark(workflows: workflows, stepsPerWorkflow: steps, shards: count,
                                                 configuration: configuration, captureLog: captureLog).run()
            }
            guard crashAttribution == "compare" else {
                print(try await once(crashAttribution == "on"))
                continue
            }
            var ratios: [Double] = []
            for pair in 1...max(1, pairs) {
                let off = try await once(false)
                let on = try await once(true)
                ratios.append(on.stepsPerSecond / off.stepsPerSecond)
                print(String(format: "shards %d pair %d: off %.0f steps/s, on %.0f steps/s, on/off %.3f",
                             count, pair, off.stepsPerSecond, on.stepsPerSecond, ratios.last!))
            }
            print(String(format: "shards %d: crash attribution on/off %@", count,
                         ratios.map { String(format: "%.3f", $0) }.joined(separator: ", ")))
        }
    }
}

struct BenchTakeoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-takeover",
        abstract: "Time a shard takeover: worker A fills the shards with in-flight workflows and leaves; worker B, on an empty data directory, restores every shard from its log; then B restarts on its own directory.")
    @Option(help: "Shards.") var shards: Int = 100
    @Option(help: "approval workflows left waiting (in flight) when the shards move.") var inFlight: Int = 20_000
    @Option(help: "noop workflows run to completion first (history the log holds too).") var completed: Int = 0
    @Option(help: "Steps of each completed noop workflow.") var steps: Int = 3
    @Option(help: "The workers' --snapshot-every (0: none, a new owner reads the whole log).") var snapshotEvery: Int = 0
    @Option(help: "Folder for worker logs and stores.") var output: String = ".run/bench-takeover"
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.bootstrapForReport(label: "shardflow.bench-takeover")
        var options = TakeoverBenchmark.Options(workerExecutable: try ExecutablePath.current(), outputDirectory: output)
        options.shards = shards
        options.inFlight = inFlight
        options.completed = completed
        options.steps = steps
        options.snapshotEvery = snapshotEvery
        let takeovers = try await TakeoverBenchmark(options: options, logger: logger).run { line in
            FileHandle.standardError.write(Data("bench-takeover: \(line)\n".utf8))
        }
        print("takeover of \(shards) shards holding \(inFlight) in-flight workflows (\(completed) completed before; snapshots \(snapshotEvery == 0 ? "off" : "every \(snapshotEvery) transactions")):")
        for takeover in takeovers { print("  \(takeover)") }
    }
}

struct BenchLLMCallsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-llm-calls",
        abstract: "Benchmark the LLM HTTP path alone: the Anthropic client against the in-process mock (no engine, no Kafka).")
    @Option(help: "Calls to make.") var requests: Int = 20_000
    @Option(help: "Calls in flight at once (and HTTP connections).") var concurrency: Int = 2_000
    @Option(help: "Median latency of the mock's replies (e.g. 0, 1s).", transform: DurationArgument.parse)
    var latencyMedian: Duration = .zero

    func run() async throws {
        let report = try await LLMCallBenchmark(requests: requests, concurrency: concurrency, latencyMedian: latencyMedian).run()
        print(report)
    }
}

enum ExecutablePath {
    /// The absolute path of this executable, to start worker processes from it.
    static func current() throws -> String {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return path
    }
}
