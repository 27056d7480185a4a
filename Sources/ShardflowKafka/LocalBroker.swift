import Crdkafka
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a local broker could not start.
public struct LocalBrokerError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A Tansu broker (in-memory storage) on a free loopback port, for tests, the demo and the
/// benchmark. It runs as a `ChildProcess`, so the kernel kills it if this process dies for any reason;
/// `stop()` (and deinit) end it with SIGTERM, then SIGKILL, and reap it.
public final class LocalBroker: Sendable {
    /// The loopback port; kept across `stop()` / `start()`.
    public let port: Int
    public let executable: String
    public var bootstrapServers: String { "127.0.0.1:\(port)" }

    /// Client properties suited to Tansu: it answers a group's JoinGroup only after about half the
    /// session timeout, so librdkafka's 45 s default would make every (re)join take 23 s.
    public static let clientProperties: [String: String] = ["session.timeout.ms": "6000"]

    /// A configuration for clients of this broker, with `clientProperties`.
    public var configuration: KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: bootstrapServers, properties: Self.clientProperties)
    }

    private let logger: Logger
    private let lock = ConditionLock()
    // `nonisolated(unsafe)`: only touched while `lock` is held.
    nonisolated(unsafe) private var running: ChildProcess?

    /// Finds the broker binary: `$SHARDFLOW_TANSU`, else `.tools/bin/tansu` under the current directory.
    public static func locateExecutable() throws -> String {
        if let path = getenv("SHARDFLOW_TANSU").map({ String(cString: $0) }), !path.isEmpty {
            guard access(path, X_OK) == 0 else {
                throw LocalBrokerError(description: "SHARDFLOW_TANSU=\(path) is not an executable file; run scripts/setup.sh")
            }
            return path
        }
        var buffer = [CChar](repeating: 0, count: 4096)
        let cwd = getcwd(&buffer, buffer.count) != nil ? string(fromCBuffer: buffer) : "."
        let path = cwd + "/.tools/bin/tansu"
        guard access(path, X_OK) == 0 else {
            throw LocalBrokerError(description: "the Tansu broker was not found (set SHARDFLOW_TANSU or run scripts/setup.sh, which installs .tools/bin/tansu)")
        }
        return path
    }

    /// Picks a free port and the broker binary; call `start()` to run it.
    public init(executable: String? = nil, port: Int? = nil, logger: Logger = Logger(label: "shardflow.local-broker")) throws {
        self.executable = try executable ?? Self.locateExecutable()
        self.port = try port ?? Self.freeLoopbackPort()
        self.logger = logger
    }

    /// Starts a broker and waits until it is running.
    public static func started(logger: Logger = Logger(label: "shardflow.local-broker")) async throws -> LocalBroker {
        try Librdkafka.requireSupportedVersion()
        let broker = try LocalBroker(logger: logger)
        try await broker.start()
        return broker
    }

    deinit {
        stopNow()
    }

    /// Starts the broker (if not running) and returns once it answers a metadata request.
    public func start(timeout: Duration = .seconds(20)) async throws {
        let broker: ChildProcess = try lock.withLock {
            if let running { return running }
            let url = "tcp://127.0.0.1:\(port)"
            let started = try ChildProcess(arguments: [
                executable, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ])
            running = started
            return started
        }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if broker.hasExited {
                stopNow()
                throw LocalBrokerError(description: "the Tansu broker (\(executable)) exited right after starting on port \(port)")
            }
            if await Self.answersMetadata(bootstrapServers) {
                logger.debug("local broker ready", metadata: ["bootstrap": "\(bootstrapServers)"])
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        stopNow()
        throw LocalBrokerError(description: "the Tansu broker on port \(port) did not answer within \(timeout)")
    }

    /// Terminates the broker (SIGTERM, then SIGKILL after 1 s) and reaps it. The port stays reserved for `start()`.
    public func stop() async {
        stopNow()
    }

    public var isRunning: Bool { lock.withLock { running.map { !$0.hasExited } ?? false } }

    private func stopNow() {
        let broker: ChildProcess? = lock.withLock {
            defer { running = nil }
            return running
        }
        broker?.terminateNow(grace: .seconds(1))
    }

    /// Whether a broker at `bootstrapServers` answers a metadata request within a second.
    public static func answersMetadata(_ bootstrapServers: String) async -> Bool {
        guard let admin = try? KafkaAdmin(
            configuration: KafkaConfiguration(bootstrapServers: bootstrapServers, properties: ["log_level": "0"]),
            requestTimeout: .seconds(1))
        else { return false }
        return (try? await admin.listTopics()) != nil
    }

    public static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LocalBrokerError(description: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else { throw LocalBrokerError(description: "cannot reserve a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
