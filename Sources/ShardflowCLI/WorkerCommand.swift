import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Shardflow
import ShardflowEngine
import ShardflowLLM

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: join the group on the workflows topic and run the shards it is given.")

    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var logging: LoggingOptions
    @Option(help: "Directory of the shard stores.") var dataDir: String
    @Option(help: "Consumer group shared by the workers.") var group: String = "shardflow"
    @Option(help: "Steps running at once per shard (I5).") var maxConcurrency: Int = 50
    @Option(help: "Tasks taken by one claim (I5).") var claimLimit: Int = 50
    @Option(help: "The executor stops claiming while a shard's outbox holds more rows than this.")
    var outboxHighWater: Int = 20_000
    @Option(help: "How long a finished workflow and its journal stay in the store (e.g. 7d, 12h); 0 keeps them forever.",
            transform: DurationArgument.parse)
    var retention: Duration = .seconds(7 * 24 * 3600)
    @Option(help: "Seconds in-flight steps may take to finish on revoke or shutdown.") var drainTimeout: Int = 30
    @Option(help: "Address of the HTTP endpoint (/metrics, /healthz, /readyz).") var httpHost: String = "127.0.0.1"
    @Option(help: "Port of the HTTP endpoint; 0 turns it off.") var httpPort: Int = 9090
    @Flag(help: "Start a shard from an empty store even if the group consumed it before its log began (a store from before the shard log, elsewhere).")
    var adoptMissingStores = false
    @Option(help: "Write a snapshot of a shard's store to Kafka after this many transactions since the last (0: never).")
    var snapshotEvery: Int = 10_000
    @Option(help: "Quarantine a workflow (complete it failed) after its code stopped the worker this many times.")
    var quarantineAfter: Int = 2
    @Flag(help: "Also register the fault-drill workflows (drill-trap), which crash the worker on demand.")
    var drillWorkflows = false
    @Option(help: "Also register release 1 or 2 of the deploy-drill workflows (drill-patched, drill-unpatched, drill-versioned).")
    var drillDeploy: Int?
    @Option(help: "What a determinism violation (workflow code changed unsafely under in-flight workflows) does: park (keep the workflow running, journal intact, until a worker that can run it owns its shard or an operator fails it) or fail.")
    var onNondeterminism: ShardConfiguration.NondeterminismPolicy = .park
    @Flag(help: "Let the web console (/console on the HTTP endpoint) send operator actions; needs an admin token from $SHARDFLOW_CONSOLE_TOKEN or --console-token-file.")
    var consoleActions = false
    @Option(help: "File holding the console's admin token (first line).") var consoleTokenFile: String?
    @OptionGroup var llm: LLMOptions

    func run() async throws {
        let logger = try logging.bootstrap(label: "shardflow.worker")
        logger.info("memory allocator: \(MemoryAllocator.description)")
        let registry = MonitoringServer.bootstrapMetrics()
        let client = try llm.client(logger: logger)
        var workflows = WorkflowRegistry()
        StockWorkflows.register(in: &workflows, llm: client, model: llm.llmModel)
        if drillWorkflows { DrillWorkflows.register(in: &workflows) }
        if let drillDeploy {
            guard (1...2).contains(drillDeploy) else { throw ValidationError("--drill-deploy takes 1 or 2") }
            DeployDrillWorkflows.register(in: &workflows, release: drillDeploy)
        }
        guard quarantineAfter >= 1 else { throw ValidationError("--quarantine-after must be at least 1") }
        var shardConfiguration = ShardConfiguration(maxConcurrency: maxConcurrency, claimLimit: claimLimit,
                                                    outboxHighWater: outboxHighWater,
                                                    retention: retention == .zero ? nil : retention)
        shardConfiguration.quarantineAfterCrashes = quarantineAfter
        shardConfiguration.onNondeterminism = onNondeterminism
        var configuration = WorkerConfiguration(
            kafka: try kafka.configuration(), topics: kafka.topics, groupID: group, dataDirectory: dataDir,
            shard: shardConfiguration, drainTimeout: .seconds(drainTimeout))
        configuration.adoptMissingStores = adoptMissingStores
        configuration.snapshotEvery = max(0, snapshotEvery)
        let worker = Worker(configuration: configuration, registry: workflows, logger: logger)
        var actions: Console.Actions?
        if consoleActions {
            guard let token = try consoleToken(), token.count >= 16 else {
                throw ValidationError("--console-actions needs an admin token of at least 16 characters in $SHARDFLOW_CONSOLE_TOKEN or --console-token-file")
            }
            actions = Console.Actions(token: token, control: ControlClient(configuration: configuration.kafka, topics: kafka.topics))
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: worker)]
        if httpPort != 0 {
            let console = Console(worker: worker, actions: actions)
            let server = MonitoringServer(host: httpHost, port: httpPort, registry: registry, console: console) { worker.readiness() }
            services.append(.init(service: server.application(logger: logger)))
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try? await client.shutdown()
    }

    private func consoleToken() throws -> String? {
        if let consoleTokenFile {
            let text = try String(contentsOfFile: consoleTokenFile, encoding: .utf8)
            return text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return ProcessInfo.processInfo.environment["SHARDFLOW_CONSOLE_TOKEN"].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}

/// The LLM step's settings; the API key comes only from the environment (`ANTHROPIC_API_KEY`).
struct LLMOptions: ParsableArguments {
    @Option(help: "Base URL of the Messages API. Default: $SHARDFLOW_LLM_BASE_URL or the public API.")
    var llmBaseURL: String?
    @Option(help: "Model used when a workflow's args name none.") var llmModel: String = "claude-sonnet-4-5"
    @Option(help: "Seconds one LLM HTTP attempt may take.") var llmTimeout: Int = 120
    @Option(help: "HTTP retries inside one LLM step attempt (429, 529, 5xx, timeouts).") var llmRetries: Int = 4
    @Option(help: "HTTP connections to the Messages API: the LLM calls that can run at once across all shards.")
    var llmConnections: Int = 5_000
    @Option(help: "This worker's share of the organisation's LLM requests per minute (per model; all shards together); 0: no client-side limit.")
    var llmRpm: Int = 0
    @Option(help: "This worker's share of input tokens per minute (per model); 0: no limit.") var llmInputTpm: Int = 0
    @Option(help: "This worker's share of output tokens per minute (per model, counted at max_tokens); 0: no limit.") var llmOutputTpm: Int = 0
    @Flag(help: "Send the shardflow-step header (workflowId/step/attempt/try) with each LLM call, for a mock that draws from it (the benchmark does).")
    var llmStepIdentity = false

    func client(logger: Logger) throws -> AnthropicClient {
        var configuration = AnthropicClientConfiguration.fromEnvironment()
        if let llmBaseURL { configuration.baseURL = llmBaseURL }
        configuration.requestTimeout = .seconds(llmTimeout)
        configuration.maxRetries = llmRetries
        configuration.maxConcurrentConnections = llmConnections
        configuration.sendsStepIdentity = llmStepIdentity
        guard llmRpm >= 0, llmInputTpm >= 0, llmOutputTpm >= 0 else { throw ValidationError("--llm-rpm, --llm-input-tpm and --llm-output-tpm must not be negative") }
        configuration.rateLimits = LLMRateLimits(requestsPerMinute: llmRpm, inputTokensPerMinute: llmInputTpm,
                                                 outputTokensPerMinute: llmOutputTpm)
        return try AnthropicClient(configuration: configuration, logger: logger)
    }
}

extension ShardConfiguration.NondeterminismPolicy: ExpressibleByArgument {}
