import ArgumentParser
import Dispatch
import Foundation
import Shardflow
import ShardflowBench
import ShardflowSupport

struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "A whole Shardflow to play with on this machine: the embedded broker, the topics, the mock LLM and a worker with its web console. Stays up until Ctrl-C.")
    @Option(help: "Folder of the stores, logs and the console's admin token (emptied at start).") var directory: String = ".run/dev"
    @Option(help: "Shards (partitions of the workflows topic).") var shards: Int = 8
    @Option(help: "Port of the embedded Kafka-protocol broker.") var kafkaPort: Int = 9092
    @Option(help: "Port of the worker's HTTP endpoint (console, metrics).") var httpPort: Int = 9090
    @Option(help: "Port of the mock LLM.") var mockPort: Int = 8089
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        guard shards >= 1 else { throw ValidationError("--shards must be at least 1") }
        let logger = try logging.bootstrapForReport(label: "shardflow.dev")
        var options = DevEnvironment.Options(workerExecutable: try ExecutablePath.current())
        options.directory = directory
        options.shards = shards
        options.kafkaPort = kafkaPort
        options.httpPort = httpPort
        options.mockPort = mockPort
        Self.say("starting: embedded broker, \(shards) shards, mock LLM, one worker (state in \(directory))")
        try await DevEnvironment(options: options, logger: logger).run(ready: { a in
            let brokers = "--brokers \(a.brokers)"
            Self.say("""

                Shardflow is up.
                  broker    \(a.brokers)   (Kafka protocol, topics shardflow.*)
                  console   \(a.console)
                  metrics   \(a.metrics)
                  mock LLM  \(a.mockLLM)
                  admin token for the console's actions: \(a.token)   (also in \(a.tokenFile))
                  worker log \(a.workerLog)

                Try, in another terminal:
                  shardflow submit \(brokers) --workflow llm-chain --args '{"steps": 3}' --count 200
                  shardflow tail completions \(brokers) --limit 5
                  shardflow admin bump-epoch \(brokers) --shard 0 --wait
                then watch the console; Ctrl-C here stops everything.
                """)
        }, until: { await Self.interrupted() })
        Self.say("stopped")
    }

    /// Writes a line to standard output at once (unbuffered, also when piped), so the addresses show as soon as
    /// they are known.
    static func say(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Returns at the first SIGINT or SIGTERM.
    static func interrupted() async {
        let signalled = AsyncSignal()
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { signalled.notify() }
            source.resume()
            sources.append(source)
        }
        await signalled.wait()
        for source in sources { source.cancel() }
    }
}
