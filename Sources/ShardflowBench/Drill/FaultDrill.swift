import Foundation
import Logging
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowKafka
import ShardflowLLM
import ShardflowMockLLM
import ShardflowSupport
import ShardflowTesting
import Synchronization

/// What `shardflow drill` (and the fault-drill test) runs.
public struct FaultDrillOptions: Sendable {
    public var workflows = 10_000
    /// LLM calls per `llm-chain` workflow.
    public var steps = 3
    public var shards = 16
    public var workers = 3
    /// Fraction of inbound messages that are malformed (each must become exactly one dead letter).
    public var malformedRate = 0.01
    /// Fraction of mock LLM requests answered 500, and as many answered 529.
    public var llmErrorRate = 0.025
    /// The mock LLM's latency and the workers' steps per shard (`--max-concurrency`) set how long the work
    /// lasts: it must outlast the fault schedule (about 40 s), or faults hit a finished run and prove nothing.
    /// 10,000 x 3 at 1 s on 16 x 50 slots is about 40 s of work.
    public var latencyMedian: Duration = .seconds(1)
    public var latencyP99: Duration = .seconds(3)
    public var maxConcurrency = 50
    /// Use these brokers instead of starting a local durable one (then the broker is never stopped).
    public var brokers: String?
    public var kafkaProperties: [String: String] = [:]
    /// The `shardflow` executable that runs the workers.
    public var workerExecutable: String
    public var outputDirectory: String
    /// Give up when no workflow completed for this long.
    public var stallTimeout: Duration = .seconds(240)
    /// How long the broker stays stopped (SIGSTOP): past the session timeout, so the group rebalances.
    public var brokerPause: Duration = .seconds(9)
    public var seed: UInt64 = 42

    public init(workerExecutable: String, outputDirectory: String) {
        self.workerExecutable = workerExecutable
        self.outputDirectory = outputDirectory
    }
}

/// The drill's figures; `passed` when nothing was lost, duplicated, stuck or silently dropped.
public struct FaultDrillReport: Sendable, Codable, CustomStringConvertible {
    public var submitted = 0
    public var malformedSent = 0
    public var completed = 0
    public var lost = 0
    /// Some of the lost workflowIds, for looking them up in the stores and the workers' logs.
    public var lostWorkflows: [String] = []
    /// Of the lost, those a fresh reader of the completions topic did not find either (missing on the broker).
    public var missingOnReread = 0
    /// workflowIds that completed with more than one distinct eventId (I2 broken).
    public var logicalDuplicates = 0
    /// Completion messages beyond one per eventId (republished after a crash; consumers dedupe them).
    public var wireCopies = 0
    public var failed = 0
    /// Distinct dead letters of the drill's own malformed messages.
    public var deadLetters = 0
    /// Dead letters the drill did not send a malformed message for.
    public var unexpectedDeadLetters = 0
    public var stuck = 0
    public var workerDeaths = 0
    public var faults: [String] = []
    /// Faults applied when every workflow had already completed: they tested nothing (the work was too short).
    public var faultsAfterTheWork = 0
    public var secondsFromLastFaultToLastCompletion: Double?
    public var totalSeconds = 0.0

    public var passed: Bool {
        lost == 0 && logicalDuplicates == 0 && stuck == 0 && deadLetters == malformedSent && unexpectedDeadLetters == 0
            && completed == submitted && faultsAfterTheWork == 0
    }

    public var description: String {
        var lines = ([
            "fault drill: \(passed ? "PASSED" : "FAILED")",
            "  workflows      \(submitted) submitted, \(completed) completed (\(failed) failed), \(lost) lost, \(stuck) stuck",
            lost == 0 ? nil : "  lost           \(lostWorkflows.joined(separator: ", ")); \(missingOnReread) of \(lost) also missing when the topic was read again",
            "  duplicates     \(logicalDuplicates) logical (workflowIds with two eventIds), \(wireCopies) wire copies (same eventId again)",
            "  dead letters   \(deadLetters) of \(malformedSent) malformed messages sent, \(unexpectedDeadLetters) unexpected",
            "  faults         \(faults.count): " + faults.joined(separator: "; "),
            "  after the work \(faultsAfterTheWork) faults came when every workflow had completed"
                + (faultsAfterTheWork > 0 ? " (make the work last longer: slower LLM latency, fewer slots or more workflows)" : ""),
            "  worker deaths  \(workerDeaths)",
        ] as [String?]).compactMap { $0 }
        if let recovery = secondsFromLastFaultToLastCompletion {
            lines.append(String(format: "  recovery       %.1f s from the last fault to the last completion", recovery))
        }
        lines.append(String(format: "  total          %.1f s", totalSeconds))
        return lines.joined(separator: "\n")
    }
}

/// A fault drill with real processes: several workers, kill -9 at random moments, the broker stopped past the
/// session timeout and killed and restarted on durable storage, a worker joining and one leaving, malformed
/// input and LLM errors; then it counts what was lost, duplicated, dead-lettered and stuck.
public struct FaultDrill: Sendable {
    public var options: FaultDrillOptions
    public var logger: Logger

    public init(options: FaultDrillOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// The malformed messages the drill sends, one kind after another; each must give one dead letter.
    static func malformed(_ index: Int, runId: String) -> (key: String?, value: [UInt8]) {
        let id = "\(runId)-bad-\(index)"
        switch index % 6 {
        case 0: return (id, Array("{\"type\":\"start\",\"workflowId\":\"\(id)\"".utf8))  // truncated JSON
        case 1: return (id, Array("{\"type\":\"start\",\"workflowId\":\"\(id)\",\"workflow\":\"no-such-workflow\",\"args\":{}}".utf8))
        case 2: return (id, Array("{\"type\":\"start\",\"workflowId\":\"\(id)\",\"workflow\":\"noop\",\"args\":{\"steps\":-1}}".utf8))
        case 3: return ("not-\(id)", Array("{\"type\":\"start\",\"workflowId\":\"\(id)\",\"workflow\":\"noop\",\"args\":{\"steps\":1}}".utf8))
        case 4: return (id, [0xff, 0xfe, 0x00, 0x7b] + Array(id.utf8))
        default: return (id, Array("{\"type\":\"start\",\"workflowId\":\"\(id)\",\"workflow\":\"noop\",\"workflow\":\"noop\",\"args\":{}}".utf8))
        }
    }

    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> FaultDrillReport {
        let began = ContinuousClock.now
        let runId = LoadGenerator.runId(prefix: "drill")
        let output = URL(fileURLWithPath: options.outputDirectory)
        let dataDirectory = output.appendingPathComponent("data").path
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        var random = SplitMix64(seed: options.seed)

        let run = try await RunBroker.start(given: options.brokers, storage: .objectStore,
                                            properties: options.kafkaProperties, logger: logger, progress: progress)
        // The broker the drill may stop and kill: only one it started itself.
        let broker = run.local
        let brokers = run.bootstrapServers
        let properties = run.kafka.properties
        let kafka = run.kafka
        let topics = ShardflowTopics(prefix: runId)
        try await TopicSetup.createAll(admin: try KafkaAdmin(configuration: kafka), topics: topics, partitions: options.shards)

        let mock = try MockLLMServer(configuration: MockLLMConfiguration(
            host: "127.0.0.1", port: 0, latencyMedian: options.latencyMedian, latencyP99: options.latencyP99,
            errorRate: options.llmErrorRate, overloadRate: options.llmErrorRate), logger: logger)
        let mockPort = try await mock.start()

        let workerProperties = properties
        let pool = WorkerPool(executable: options.workerExecutable, output: output, arguments: { port in
            var arguments = ["worker", "--brokers", brokers, "--prefix", runId, "--group", runId,
                             "--data-dir", dataDirectory, "--http-port", String(port), "--drain-timeout", "10",
                             "--max-concurrency", String(options.maxConcurrency),
                             "--llm-base-url", "http://127.0.0.1:\(mockPort)"]
            for (key, value) in workerProperties.sorted(by: { $0.key < $1.key }) { arguments += ["-X", "\(key)=\(value)"] }
            return arguments
        })
        for _ in 0..<options.workers { try pool.add() }
        progress("waiting for \(options.workers) workers to be ready")
        try await pool.waitUntilReady()

        // The drill's own readers lose the broker on purpose: their connection errors are not news.
        var quiet = logger
        quiet.logLevel = .critical
        let completions = try await TopicReader(configuration: kafka, topic: topics.completions, fromBeginning: true, logger: quiet)
        let deadLetters = try await TopicReader(configuration: kafka, topic: topics.deadLetters, fromBeginning: true, logger: quiet)
        let seen = DrillObservations()
        let readers = [
            Task { for await batch in completions.batches() { seen.addCompletions(batch) } },
            Task { for await batch in deadLetters.batches() { seen.addDeadLetters(batch) } },
        ]

        // Submit in chunks with malformed messages among them, while the faults go on.
        let starts = LoadGenerator.starts(workflow: "llm-chain", args: .object(["steps": .int(Int64(options.steps))]),
                                          count: options.workflows, idPrefix: runId)
        let ids = Set(starts.map(\.workflowId))
        let malformedCount = Int((Double(options.workflows) * options.malformedRate).rounded())
        let client = try WorkflowClient(configuration: kafka, topics: topics)
        let chunk = max(1, options.workflows / 20)
        let submitter = Task {
            var malformedSent = 0
            for (number, start) in stride(from: 0, to: starts.count, by: chunk).enumerated() {
                try await client.startAll(Array(starts[start..<min(start + chunk, starts.count)]))
                let due = malformedCount * (number + 1) / max(1, (starts.count + chunk - 1) / chunk)
                while malformedSent < due {
                    let bad = Self.malformed(malformedSent, runId: runId)
                    _ = try await client.publishRaw(key: bad.key, value: bad.value)
                    malformedSent += 1
                }
            }
            while malformedSent < malformedCount {
                let bad = Self.malformed(malformedSent, runId: runId)
                _ = try await client.publishRaw(key: bad.key, value: bad.value)
                malformedSent += 1
            }
            await client.close()
            return malformedSent
        }

        // Faults, each once the run has moved on a little more, in an order drawn from the seed.
        var faults: [DrillFault] = [.killWorker, .workerJoins, .killWorker, .workerLeaves]
        if broker != nil { faults += [.pauseBroker, .restartBroker] }
        faults.shuffle(using: &random)
        faults.append(.killWorker)
        var applied: [String] = []
        var faultsAfterTheWork = 0
        var lastFaultAt = ContinuousClock.now
        for (number, fault) in faults.enumerated() {
            // The last fault comes at about half the completions: completions held back by a broker restart
            // arrive in a burst, and the last kill must still meet work in flight.
            let target = options.workflows * (number + 1) / (faults.count + 6)
            let moved = await seen.waitForCompletions(atLeast: target, of: ids, timeout: options.stallTimeout) {
                try? pool.superviseOnce()
            }
            guard moved else { break }
            let unfinished = ids.count - seen.completedCount(of: ids)
            if unfinished == 0 { faultsAfterTheWork += 1 }
            let moment = String(format: "%.1f s (%d unfinished)", (ContinuousClock.now - began).timeInterval, unfinished)
            progress("fault \(number + 1)/\(faults.count) at \(ids.count - unfinished) completions: \(fault)")
            switch fault {
            case .killWorker:
                let victim = pool.killRandom(using: &random)
                applied.append("\(moment) kill -9 \(victim ?? "none")")
                try? await Task.sleep(for: .milliseconds(Int.random(in: 200...2000, using: &random)))
                try? pool.superviseOnce()
            case .workerJoins:
                try pool.add()
                applied.append("\(moment) a worker joins")
            case .workerLeaves:
                let leaving = await pool.removeOne()
                applied.append("\(moment) \(leaving ?? "none") leaves (SIGTERM)")
            case .pauseBroker:
                broker?.pause()
                try? await Task.sleep(for: options.brokerPause)
                broker?.resume()
                applied.append("\(moment) broker stopped (SIGSTOP) for \(options.brokerPause)")
            case .restartBroker:
                // An orderly restart, not kill -9: Tansu 0.6.0 on S3 storage loses records it acknowledged when
                // it is killed under several producers (it hands their offsets out again), and no client can
                // keep a guarantee over a broker that drops acknowledged writes.
                let stopping = ContinuousClock.now
                let exited = await broker?.shutDown(timeout: .seconds(30)) ?? true
                let stopped = String(format: "%.1f s", (ContinuousClock.now - stopping).timeInterval)
                try? await Task.sleep(for: .seconds(1))
                try await broker?.start(timeout: .seconds(60))
                applied.append("\(moment) broker restarted (SIGTERM: " + (exited ? "exited after \(stopped)" : "still up after \(stopped), so SIGKILL") + "; then started on the same storage)")
            }
            lastFaultAt = ContinuousClock.now
        }

        let malformedSent = try await submitter.value
        progress("faults done; waiting for every workflow to complete")
        _ = await seen.waitForCompletions(atLeast: ids.count, of: ids, timeout: options.stallTimeout) {
            try? pool.superviseOnce()
        }
        // Dead letters of the last malformed messages may trail the completions a little.
        _ = await seen.waitForDeadLetters(atLeast: malformedSent, runId: runId, timeout: .seconds(30))
        let lastCompletion = seen.lastCompletionAt(of: ids)
        let deaths = pool.deaths
        await pool.stopAll()
        for reader in [completions, deadLetters] { await reader.close() }
        for task in readers { await task.value }
        // A workflow the drill's reader never saw complete: read the topic again from its beginning with a new
        // reader, to tell a completion missing from the broker from one this reader missed.
        let missing = seen.missing(of: ids)
        var missingOnReread: [String] = []
        if !missing.isEmpty {
            progress("\(missing.count) completions not seen (\(missing.prefix(5).joined(separator: ", "))); reading the topic again")
            let again = DrillObservations()
            let reader = try await TopicReader(configuration: kafka, topic: topics.completions, fromBeginning: true, logger: quiet)
            let reading = Task { for await batch in reader.batches() { again.addCompletions(batch) } }
            _ = await again.waitForCompletions(atLeast: ids.count, of: ids, timeout: .seconds(15)) {}
            await reader.close()
            await reading.value
            missingOnReread = again.missing(of: ids)
        }
        progress("mock LLM: " + mock.summary())
        await mock.stop()
        await run.stop()

        var report = FaultDrillReport()
        report.submitted = starts.count
        report.malformedSent = malformedSent
        let summary = seen.summary(of: ids, runId: runId)
        report.completed = summary.completed
        report.failed = summary.failed
        report.lost = ids.count - summary.completed
        report.lostWorkflows = Array(missing.prefix(20))
        report.missingOnReread = missingOnReread.count
        report.logicalDuplicates = summary.logicalDuplicates
        report.wireCopies = summary.wireCopies
        report.deadLetters = summary.drillDeadLetters
        report.unexpectedDeadLetters = summary.otherDeadLetters
        report.workerDeaths = deaths
        report.faults = applied
        report.faultsAfterTheWork = faultsAfterTheWork
        if let lastCompletion { report.secondsFromLastFaultToLastCompletion = max(0, (lastCompletion - lastFaultAt).timeInterval) }
        for shard in try ShardInspector.shards(in: dataDirectory) {
            report.stuck += try ShardInspector(directory: dataDirectory, shard: shard).audit().stuckWorkflows.count
        }
        report.totalSeconds = (ContinuousClock.now - began).timeInterval
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: output.appendingPathComponent("drill.json"))
        return report
    }
}

enum DrillFault: String, CustomStringConvertible {
    case killWorker = "kill -9 a worker"
    case workerJoins = "a worker joins"
    case workerLeaves = "a worker leaves"
    case pauseBroker = "broker stopped past the session timeout"
    case restartBroker = "broker restarted on its durable storage"
    var description: String { rawValue }
}

/// The drill's worker processes: started, killed, restarted (as a supervisor would), stopped.
final class WorkerPool: Sendable {
    private struct State {
        var workers: [(name: String, port: Int, process: ChildProcess)] = []
        var started = 0
        var deaths = 0
    }

    private let executable: String
    private let output: URL
    private let arguments: @Sendable (Int) -> [String]
    private let state = Mutex(State())

    init(executable: String, output: URL, arguments: @escaping @Sendable (Int) -> [String]) {
        self.executable = executable
        self.output = output
        self.arguments = arguments
    }

    var deaths: Int { state.withLock { $0.deaths } }

    func add() throws {
        let port = try LocalBroker.freeLoopbackPort()
        try state.withLock { state in
            state.started += 1
            let name = "worker-\(state.started)"
            let process = try ChildProcess(arguments: [executable] + arguments(port),
                                           outputPath: output.appendingPathComponent("\(name).log").path)
            state.workers.append((name, port, process))
        }
    }

    func waitUntilReady() async throws {
        for port in state.withLock({ $0.workers.map(\.port) }) {
            try await HealthProbe.waitUntilReady(port: port, timeout: .seconds(120))
        }
    }

    /// Replaces each worker that died with a new one.
    func superviseOnce() throws {
        let dead = state.withLock { state -> Int in
            let before = state.workers.count
            state.workers.removeAll { $0.process.hasExited }
            state.deaths += before - state.workers.count
            return before - state.workers.count
        }
        for _ in 0..<dead { try add() }
    }

    func killRandom(using random: inout SplitMix64) -> String? {
        let live = state.withLock { $0.workers.filter { !$0.process.hasExited } }
        guard let victim = live.randomElement(using: &random) else { return nil }
        victim.process.kill()
        return victim.name
    }

    /// Stops one worker gracefully (it leaves the group) and does not replace it.
    func removeOne() async -> String? {
        let leaving = state.withLock { state -> (String, ChildProcess)? in
            guard state.workers.count > 1 else { return nil }
            let worker = state.workers.removeFirst()
            return (worker.name, worker.process)
        }
        guard let (name, process) = leaving else { return nil }
        _ = await process.terminate(timeout: .seconds(60))
        return name
    }

    func stopAll() async {
        let all = state.withLock { state in
            defer { state.workers.removeAll() }
            return state.workers.map(\.process)
        }
        for process in all { _ = await process.terminate(timeout: .seconds(60)) }
    }
}

/// Completions and dead letters read back during the drill.
final class DrillObservations: Sendable {
    private struct State {
        var completionEventIds: [String: Set<String>] = [:]
        var statuses: [String: CompletionStatus] = [:]
        var completionMessages = 0
        var lastCompletion: [String: ContinuousClock.Instant] = [:]
        /// Distinct dead letters by (partition, offset), with the original key.
        var deadLetters: [String: String?] = [:]
    }

    private let state = Mutex(State())

    func addCompletions(_ messages: [KafkaMessage]) {
        let now = ContinuousClock.now
        let events = messages.compactMap { try? JSONCoding.decode(CompletionEvent.self, from: $0.value) }
        state.withLock { state in
            for event in events {
                state.completionMessages += 1
                if state.completionEventIds[event.workflowId] == nil { state.lastCompletion[event.workflowId] = now }
                state.completionEventIds[event.workflowId, default: []].insert(event.eventId)
                state.statuses[event.workflowId] = event.status
            }
        }
    }

    func addDeadLetters(_ messages: [KafkaMessage]) {
        let letters = messages.compactMap { try? JSONCoding.decode(DeadLetter.self, from: $0.value) }
        state.withLock { state in
            for letter in letters { state.deadLetters["\(letter.sourceTopic)/\(letter.partition)/\(letter.offset)"] = letter.key }
        }
    }

    func missing(of ids: Set<String>) -> [String] {
        state.withLock { state in ids.filter { state.completionEventIds[$0] == nil }.sorted() }
    }

    func completedCount(of ids: Set<String>) -> Int {
        state.withLock { state in ids.reduce(0) { $0 + (state.completionEventIds[$1] == nil ? 0 : 1) } }
    }

    func drillDeadLetterCount(runId: String) -> Int {
        state.withLock { state in state.deadLetters.values.filter { Self.isDrills($0, runId: runId) }.count }
    }

    static func isDrills(_ key: String??, runId: String) -> Bool {
        guard let key = key ?? nil else { return false }
        return key.hasPrefix("\(runId)-bad-") || key.hasPrefix("not-\(runId)-bad-")
    }

    /// Waits until `atLeast` of `ids` completed (calling `tick` every half second), or nothing completes for `timeout`.
    func waitForCompletions(atLeast: Int, of ids: Set<String>, timeout: Duration, tick: () -> Void) async -> Bool {
        var last = completedCount(of: ids)
        var lastMove = ContinuousClock.now
        while last < atLeast {
            tick()
            try? await Task.sleep(for: .milliseconds(500))
            let now = completedCount(of: ids)
            if now > last { lastMove = ContinuousClock.now }
            last = now
            if ContinuousClock.now - lastMove > timeout { return false }
        }
        return true
    }

    func waitForDeadLetters(atLeast: Int, runId: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while drillDeadLetterCount(runId: runId) < atLeast && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(200))
        }
        return drillDeadLetterCount(runId: runId) >= atLeast
    }

    func lastCompletionAt(of ids: Set<String>) -> ContinuousClock.Instant? {
        state.withLock { state in ids.compactMap { state.lastCompletion[$0] }.max() }
    }

    func summary(of ids: Set<String>, runId: String)
        -> (completed: Int, failed: Int, logicalDuplicates: Int, wireCopies: Int, drillDeadLetters: Int, otherDeadLetters: Int) {
        state.withLock { state in
            let mine = state.completionEventIds.filter { ids.contains($0.key) }
            let distinctEvents = mine.values.reduce(0) { $0 + $1.count }
            let failed = mine.keys.filter { state.statuses[$0] != .succeeded }.count
            let drill = state.deadLetters.values.filter { Self.isDrills($0, runId: runId) }.count
            return (mine.count, failed, mine.values.filter { $0.count > 1 }.count,
                    max(0, state.completionMessages - distinctEvents), drill, state.deadLetters.count - drill)
        }
    }
}

/// A small seeded generator, so a drill's fault order and victims can be repeated.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
