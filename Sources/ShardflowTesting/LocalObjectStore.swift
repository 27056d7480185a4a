import Foundation
import Logging
import ShardflowSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An S3-compatible object store on a free loopback port (moto's server, installed by scripts/setup.sh into
/// .tools/moto), behind the durable `LocalBroker`. It keeps its objects in memory for as long as it runs, so
/// a broker that stores its data here can be killed and restarted without losing topics, records or committed
/// offsets; the data is gone once the store stops. Like the broker it runs as a `ChildProcess`, so it dies
/// with this process.
public final class LocalObjectStore: Sendable {
    /// The loopback port; kept across `stop()` / `start()` (a restarted store starts empty).
    public let port: Int
    public let executable: String
    /// The bucket `start()` creates (3 to 63 lowercase letters, digits, dots or hyphens).
    public let bucket: String
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Static credentials: the store accepts any, but S3 clients insist on some.
    public static let accessKeyID = "shardflow"
    public static let secretAccessKey = "shardflow"
    public static let region = "us-east-1"

    /// The environment an S3 client of the Rust `object_store` crate (Tansu's `s3://` storage engine) needs
    /// to use this store: the endpoint, plain HTTP, and the static credentials.
    public var clientEnvironment: [String: String] {
        [
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": Self.accessKeyID,
            "AWS_SECRET_ACCESS_KEY": Self.secretAccessKey,
            "AWS_DEFAULT_REGION": Self.region,
            "AWS_REGION": Self.region,
        ]
    }

    private let logger: Logger
    private let http = BlockingExecutor(name: "object-store-http")
    /// The server process while one runs, and whether it answered and has the bucket.
    private struct State {
        var running: ChildProcess?
        var ready = false
    }
    private let state = Mutex(State())

    /// Finds moto's server: `$SHARDFLOW_MOTO_SERVER`, else `.tools/moto/bin/moto_server` under the current directory.
    public static func locateExecutable() throws -> String {
        if let path = getenv("SHARDFLOW_MOTO_SERVER").map({ String(cString: $0) }), !path.isEmpty {
            guard access(path, X_OK) == 0 else {
                throw LocalBrokerError(description: "SHARDFLOW_MOTO_SERVER=\(path) is not an executable file; run scripts/setup.sh")
            }
            return path
        }
        let cwd = FileManager.default.currentDirectoryPath
        let path = cwd + "/.tools/moto/bin/moto_server"
        guard access(path, X_OK) == 0 else {
            throw LocalBrokerError(description: "moto's S3 server was not found (set SHARDFLOW_MOTO_SERVER or run scripts/setup.sh, which installs .tools/moto/bin/moto_server)")
        }
        return path
    }

    /// Picks a free port and the server binary; call `start()` to run it.
    public init(executable: String? = nil, port: Int? = nil, bucket: String = "shardflow",
                logger: Logger = Logger(label: "shardflow.local-object-store")) throws {
        let valid = (3...63).contains(bucket.utf8.count)
            && bucket.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2e || $0 == 0x2d }
        guard valid else { throw LocalBrokerError(description: "invalid bucket name \"\(bucket)\" (3 to 63 of a-z, 0-9, '.', '-')") }
        self.executable = try executable ?? Self.locateExecutable()
        self.port = try port ?? LocalBroker.freeLoopbackPort()
        self.bucket = bucket
        self.logger = logger
    }

    deinit {
        stopNow()
        http.shutdown()
    }

    /// Starts the server (if not running), waits until it answers and creates the bucket.
    public func start(timeout: Duration = .seconds(20)) async throws {
        let (server, isReady): (ChildProcess, Bool) = try state.withLock { state in
            if let running = state.running, !running.hasExited { return (running, state.ready) }
            let started = try ChildProcess(arguments: [executable, "-H", "127.0.0.1", "-p", "\(port)"])
            state = State(running: started, ready: false)
            return (started, false)
        }
        if isReady { return }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if server.hasExited {
                stopNow()
                throw LocalBrokerError(description: "the object store (\(executable)) exited with status \(server.exitStatus ?? -1) right after starting on port \(port)")
            }
            if await request("GET", "/") == 200 {
                // A PUT on /BUCKET creates it (200 again if it exists); Tansu itself starts without a bucket
                // and only fails on its first write, so the bucket must exist before the broker starts.
                let status = await request("PUT", "/\(bucket)")
                guard status == 200 else {
                    stopNow()
                    throw LocalBrokerError(description: "the object store on port \(port) refused to create bucket \(bucket): HTTP \(status.map(String.init) ?? "no answer")")
                }
                state.withLock { if $0.running === server { $0.ready = true } }
                logger.debug("local object store ready", metadata: ["endpoint": "\(endpoint)", "bucket": "\(bucket)"])
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        stopNow()
        throw LocalBrokerError(description: "the object store on port \(port) did not answer within \(timeout)")
    }

    /// Terminates the server (SIGTERM, then SIGKILL after 1 s) and reaps it; its objects are gone.
    public func stop() async {
        stopNow()
    }

    public var isRunning: Bool { state.withLock { $0.running.map { !$0.hasExited } ?? false } }

    private func stopNow() {
        let server: ChildProcess? = state.withLock { state in
            defer { state = State() }
            return state.running
        }
        server?.terminateNow(grace: .seconds(1))
    }

    /// The HTTP status of a body-less request to the store, or nil when it does not answer within a second.
    private func request(_ method: String, _ path: String) async -> Int? {
        let port = port
        return (try? await http.run { Self.blockingRequest(method: method, path: path, port: port) }) ?? nil
    }

    private static func blockingRequest(method: String, path: String, port: Int) -> Int? {
        let fd = LocalBroker.tcpSocket()
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return nil }
        let head = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < head.count {
            let n = head[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return nil }
            sent += n
        }
        // Only the status line matters: "HTTP/1.1 200 OK".
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while !received.contains(0x0a) && received.count < 4096 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += chunk[..<n]
        }
        let line = String(decoding: received.prefix { $0 != 0x0d && $0 != 0x0a }, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/") else { return nil }
        return Int(fields[1])
    }
}
