import Foundation
import Logging
import Shardflow
import ShardflowKafka
import ShardflowLLM
import ShardflowMockLLM
import ShardflowSupport
import ShardflowTesting

/// `shardflow dev`: a whole Shardflow on this machine to play with. It starts the embedded broker (Tansu),
/// creates the topics, starts the mock LLM and one worker process with its web console (operator actions
/// on, behind a generated admin token), prints where everything is and what to try, and stays up until it
/// is interrupted; then it stops everything it started. State (stores, logs, the token) lives in one
/// folder, emptied at start: the embedded broker keeps its topics in memory, so stores from an earlier
/// run would not match them.
public struct DevEnvironment: Sendable {
    public struct Options: Sendable {
        public var directory = ".run/dev"
        public var shards = 8
        public var kafkaPort = 9092
        public var httpPort = 9090
        public var mockPort = 8089
        public var latencyMedian: Duration = .seconds(1)
        public var latencyP99: Duration = .seconds(4)
        /// The `shardflow` executable the worker runs as.
        public var workerExecutable: String
        public init(workerExecutable: String) { self.workerExecutable = workerExecutable }
    }

    /// Where a running environment can be reached.
    public struct Addresses: Sendable {
        public var brokers: String
        public var console: String
        public var metrics: String
        public var mockLLM: String
        public var token: String
        public var tokenFile: String
        public var workerLog: String
    }

    public var options: Options
    public var logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Starts everything, calls `ready` with the addresses, and runs until `stop` returns (or the worker dies).
    public func run(ready: @Sendable (Addresses) -> Void, until stop: @escaping @Sendable () async -> Void) async throws {
        let root = URL(fileURLWithPath: options.directory)
        let data = root.appendingPathComponent("data")
        try? FileManager.default.removeItem(at: data)
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)

        let broker = try LocalBroker(port: options.kafkaPort, storage: .memory, logger: logger)
        do {
            try await broker.start()
        } catch {
            throw DevError("cannot start the embedded broker on port \(options.kafkaPort) (is another one running? pick one with --kafka-port): \(error)")
        }
        var mock: MockLLMServer?
        var worker: ChildProcess?
        do {
            let topics = ShardflowTopics()
            try await TopicSetup.createAll(admin: try KafkaAdmin(configuration: broker.configuration), topics: topics,
                                           partitions: options.shards)
            let server = try MockLLMServer(configuration: MockLLMConfiguration(
                host: "127.0.0.1", port: options.mockPort, latencyMedian: options.latencyMedian, latencyP99: options.latencyP99),
                logger: logger)
            let mockPort = try await server.start()
            mock = server
            let token = Self.newToken()
            let tokenFile = root.appendingPathComponent("console-token").path
            guard FileManager.default.createFile(atPath: tokenFile, contents: Data((token + "\n").utf8),
                                                 attributes: [.posixPermissions: 0o600]) else {
                throw DevError("cannot write the console's admin token to \(tokenFile)")
            }
            var arguments = [options.workerExecutable, "worker", "--brokers", broker.bootstrapServers,
                             "--data-dir", data.path, "--http-port", String(options.httpPort),
                             "--llm-base-url", "http://127.0.0.1:\(mockPort)", "--drain-timeout", "10",
                             "--console-actions", "--console-token-file", tokenFile]
            for (key, value) in LocalBroker.clientProperties { arguments += ["-X", "\(key)=\(value)"] }
            let workerLog = root.appendingPathComponent("worker.log").path
            let process = try ChildProcess(arguments: arguments, outputPath: workerLog)
            worker = process
            try await HealthProbe.waitUntilReady(port: options.httpPort, timeout: .seconds(120))
            ready(Addresses(brokers: broker.bootstrapServers, console: "http://127.0.0.1:\(options.httpPort)/console",
                            metrics: "http://127.0.0.1:\(options.httpPort)/metrics", mockLLM: "http://127.0.0.1:\(mockPort)",
                            token: token, tokenFile: tokenFile, workerLog: workerLog))
            // Up until interrupted, or until the worker dies (then say so, and stop the rest).
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await stop() }
                group.addTask {
                    while !process.hasExited && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(500)) }
                }
                await group.next()
                group.cancelAll()
            }
            if process.hasExited {
                logger.error("the worker exited (status \(process.exitStatus ?? -1)); see \(workerLog)")
            }
        } catch {
            if let worker { await worker.terminate(timeout: .seconds(30)) }
            await mock?.stop()
            await broker.stop()
            throw error
        }
        if let worker { await worker.terminate(timeout: .seconds(30)) }
        await mock?.stop()
        await broker.stop()
    }

    /// 32 hex digits from the system's random generator.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(zeroPadded: UInt8.random(in: 0...255, using: &generator), width: 2, radix: 16) }.joined()
    }
}

public struct DevError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
