import Foundation
import Logging
import ShardflowKafka
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a local broker could not start.
public struct LocalBrokerError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A Tansu broker on a free loopback port, for tests, the demo and the benchmark. It runs as a
/// `ChildProcess`, so the kernel kills it if this process dies for any reason; `stop()` (and deinit) end it
/// with SIGTERM, then SIGKILL, and reap it.
///
/// With `.memory` storage (the default) a stopped broker loses everything. With `.objectStore` the broker
/// keeps its topics, records and committed offsets in a `LocalObjectStore` (an S3 server child process)
/// that lives as long as this object, so fault tests can `kill()` (kill -9), `stop()`, `pause()` and
/// `start()` the broker again on the same port and find their data back.
public final class LocalBroker: Sendable {
    /// Where the broker keeps its data.
    public enum Storage: Sendable, Equatable {
        /// Tansu's in-memory engine: gone when the broker process ends.
        case memory
        /// Tansu's `s3://` engine against a loopback object store that outlives broker restarts (not this
        /// object). A produce or commit round trip takes about 10 to 25 ms instead of well under one, and
        /// throughput is about a thousand records per second: for fault drills, not benchmarks.
        case objectStore
    }

    /// The loopback port; kept across `stop()` / `kill()` / `start()`.
    public let port: Int
    public let executable: String
    public let storage: Storage
    /// The object store behind `.objectStore` storage (nil for `.memory`); started by the first `start()`,
    /// stopped when this broker is deinitialised or `shutdown()`.
    public let objectStore: LocalObjectStore?
    public var bootstrapServers: String { "127.0.0.1:\(port)" }

    /// The bucket of `.objectStore` storage.
    public static let bucket = "shardflow"

    /// Client properties suited to Tansu: it answers a group's JoinGroup only after about half the
    /// session timeout, so librdkafka's 45 s default would make every (re)join take 23 s.
    public static let clientProperties: [String: String] = ["session.timeout.ms": "6000"]

    /// A configuration for clients of this broker, with `clientProperties`.
    public var configuration: KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: bootstrapServers, properties: Self.clientProperties)
    }

    private let logger: Logger
    /// The broker process while one runs, and whether it is stopped with SIGSTOP.
    private struct State {
        var running: ChildProcess?
        var paused = false
    }
    private let state = Mutex(State())

    /// Finds the broker binary: `$SHARDFLOW_TANSU`, else `.tools/bin/tansu` under the current directory.
    public static func locateExecutable() throws -> String {
        if let path = getenv("SHARDFLOW_TANSU").map({ String(cString: $0) }), !path.isEmpty {
            guard access(path, X_OK) == 0 else {
                throw LocalBrokerError(description: "SHARDFLOW_TANSU=\(path) is not an executable file; run scripts/setup.sh")
            }
            return path
        }
        let cwd = FileManager.default.currentDirectoryPath
        let path = cwd + "/.tools/bin/tansu"
        guard access(path, X_OK) == 0 else {
            throw LocalBrokerError(description: "the Tansu broker was not found (set SHARDFLOW_TANSU or run scripts/setup.sh, which installs .tools/bin/tansu)")
        }
        return path
    }

    /// Picks a free port and the broker binary (and, for `.objectStore`, the object store's); call `start()` to run it.
    public init(executable: String? = nil, port: Int? = nil, storage: Storage = .memory,
                logger: Logger = Logger(label: "shardflow.local-broker")) throws {
        self.executable = try executable ?? Self.locateExecutable()
        self.port = try port ?? Self.freeLoopbackPort()
        self.storage = storage
        switch storage {
        case .memory: objectStore = nil
        case .objectStore: objectStore = try LocalObjectStore(bucket: Self.bucket, logger: logger)
        }
        self.logger = logger
    }

    /// Starts a broker and waits until it is running.
    public static func started(storage: Storage = .memory,
                               logger: Logger = Logger(label: "shardflow.local-broker")) async throws -> LocalBroker {
        try Librdkafka.requireSupportedVersion()
        let broker = try LocalBroker(storage: storage, logger: logger)
        try await broker.start()
        return broker
    }

    deinit {
        stopNow()
    }

    /// Starts the broker (if not running; resumes it if paused) and returns once it answers a metadata
    /// request. After `stop()` or `kill()` it starts again on the same port, with the same storage.
    public func start(timeout: Duration = .seconds(20)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var arguments: [String] = []
        if let objectStore {
            try await objectStore.start(timeout: timeout)
            // `env` execs the broker, so the child's pid (and its death signal) stay the broker's.
            arguments = ["env", "-u", "AWS_PROFILE", "-u", "AWS_SESSION_TOKEN"]
                + objectStore.clientEnvironment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        }
        let url = "tcp://127.0.0.1:\(port)"
        arguments += [
            executable, "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", objectStore.map { "s3://\($0.bucket)/" } ?? "memory://tansu/",
        ]
        var launches = 0
        var broker = try launch(arguments, launches: &launches)
        while clock.now < deadline {
            if broker.hasExited {
                // Retried a few times: after a kill the port can be taken for a moment (e.g. by a client's
                // outgoing connection that was given it as its local port).
                let status = await broker.waitForExit()
                state.withLock { if $0.running === broker { $0.running = nil } }
                guard launches < 3 else {
                    throw LocalBrokerError(description: "the Tansu broker (\(executable)) exited with status \(status) right after starting on port \(port)")
                }
                logger.debug("local broker exited on start; retrying", metadata: ["status": "\(status)", "port": "\(port)"])
                try await Task.sleep(for: .milliseconds(300))
                broker = try launch(arguments, launches: &launches)
                continue
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

    /// The running broker (resumed if paused), else a new one from `arguments`.
    private func launch(_ arguments: [String], launches: inout Int) throws -> ChildProcess {
        try state.withLock { state in
            if let running = state.running, !running.hasExited {
                if state.paused {
                    running.signal(SIGCONT)
                    state.paused = false
                }
                return running
            }
            launches += 1
            let started = try ChildProcess(arguments: arguments)
            state = State(running: started, paused: false)
            return started
        }
    }

    /// Terminates the broker (SIGTERM, then SIGKILL after 1 s) and reaps it. The port stays reserved for
    /// `start()`, and `.objectStore` data stays for it too.
    public func stop() async {
        stopNow()
    }

    /// Stops the broker the way an orderly restart does: SIGTERM, and SIGKILL only if it has not exited within
    /// `timeout`. Returns whether it exited on its own. The port and any `.objectStore` data stay for `start()`.
    /// Unlike `kill()`, an orderly stop keeps what the broker acknowledged: Tansu 0.6.0 on S3 storage loses
    /// acknowledged records across a kill -9 when several producers write (docs/operations.md, "Fault drill").
    /// Tansu drains its client connections first, which takes seconds with a few clients and can take longer
    /// than `timeout` with many.
    @discardableResult
    public func shutDown(timeout: Duration = .seconds(30)) async -> Bool {
        let broker: ChildProcess? = state.withLock { state in
            defer { state = State() }
            if state.paused { state.running?.signal(SIGCONT) }
            return state.running
        }
        guard let broker else { return true }
        broker.signal(SIGTERM)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !broker.hasExited && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        let exited = broker.hasExited
        if !exited { broker.kill() }
        await broker.waitForExit()
        return exited
    }

    /// Kills the broker with SIGKILL (what `kill -9` does: no flush, no goodbye to clients) and waits until it
    /// is reaped. The port and any `.objectStore` data stay for `start()`.
    public func kill() async {
        let broker: ChildProcess? = state.withLock { state in
            defer { state = State() }
            return state.running
        }
        guard let broker else { return }
        broker.kill()
        await broker.waitForExit()
    }

    /// Freezes the broker with SIGSTOP: its connections stay open but nothing answers, as with a hung
    /// process or a network partition. `resume()` (or `start()`) lets it go on.
    public func pause() {
        state.withLock { state in
            guard let running = state.running, !running.hasExited, !state.paused else { return }
            running.signal(SIGSTOP)
            state.paused = true
        }
    }

    /// Lets a paused broker go on (SIGCONT).
    public func resume() {
        state.withLock { state in
            guard let running = state.running, state.paused else { return }
            running.signal(SIGCONT)
            state.paused = false
        }
    }

    public var isRunning: Bool { state.withLock { $0.running.map { !$0.hasExited } ?? false } }
    public var isPaused: Bool { state.withLock { $0.paused && $0.running.map { !$0.hasExited } ?? false } }

    /// Stops the broker and the object store of `.objectStore` storage, whose data is then gone (deinit
    /// does the same). A later `start()` begins with empty storage.
    public func shutdown() async {
        stopNow()
        await objectStore?.stop()
    }

    private func stopNow() {
        let (broker, wasPaused): (ChildProcess?, Bool) = state.withLock { state in
            defer { state = State() }
            return (state.running, state.paused)
        }
        if wasPaused { broker?.signal(SIGCONT) }
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

    /// A new TCP socket (the one place that names SOCK_STREAM: Glibc's overlay does not show it to every
    /// file of this module in a release build).
    static func tcpSocket() -> Int32 { socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }

    public static func freeLoopbackPort() throws -> Int {
        let fd = tcpSocket()
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
