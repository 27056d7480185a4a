import ArgumentParser
import Foundation
import Shardflow
import ShardflowEngine
import ShardflowKafka
import Logging

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show shard stores (read-only; safe while a worker runs).")

    @Option(help: "Directory of the shard stores.") var dataDir: String
    @Option(help: "Only this shard.") var shard: Int?
    @Option(help: "Show one workflow: status, args, journal, pending steps.") var workflow: String?
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let shards = try shard.map { [$0] } ?? ShardInspector.shards(in: dataDir)
        if let workflow {
            for number in shards {
                if let detail = try ShardInspector(directory: dataDir, shard: number).workflow(workflow) {
                    if json { try printJSON(detail) } else { print(InspectRendering.workflow(detail, shard: number)) }
                    return
                }
            }
            throw ValidationError("workflow \(workflow) not found in \(dataDir)")
        }
        let stats = try shards.map { try ShardInspector(directory: dataDir, shard: $0).stats() }
        if json { try printJSON(stats); return }
        print(InspectRendering.shards(stats))
        print("")
        print("shard log positions")
        print(InspectRendering.logPositions(try shards.map { number in
            (number, try? ShardInspector(directory: dataDir, shard: number).logState())
        }))
    }
}

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Audit every shard's invariants; exits 1 if any workflow is stuck or anything is broken. With --from-log, audits the shards as their logs in Kafka hold them (no owner needed) and says whether each local store is current.")

    @Option(help: "Directory of the shard stores.") var dataDir: String?
    @Option(help: "The workers' --max-concurrency (bound on running tasks).") var maxConcurrency: Int = 50
    @Option(help: "Report a shard whose oldest unpublished outbox row is older than this (e.g. 5m, 60s).",
            transform: DurationArgument.parse)
    var outboxAgeLimit: Duration = .seconds(300)
    @Flag(help: "Rebuild each shard from its log in Kafka (into a scratch directory) and audit that.") var fromLog = false
    @Option(help: "With --from-log: only this shard.") var shard: Int?
    @OptionGroup var kafka: KafkaOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func validate() throws {
        if !fromLog && dataDir == nil { throw ValidationError("check needs --data-dir, or --from-log") }
    }

    func run() async throws {
        if fromLog { return try await runFromLog() }
        let dataDir = dataDir ?? ""
        let shards = try ShardInspector.shards(in: dataDir)
        let reports = try shards.map {
            try ShardInspector(directory: dataDir, shard: $0).audit(concurrencyBound: maxConcurrency, outboxAgeLimit: outboxAgeLimit)
        }
        if json {
            try printJSON(reports)
        } else {
            print(InspectRendering.audit(reports))
        }
        if reports.contains(where: { !$0.isHealthy }) { throw ExitCode(1) }
    }

    private func runFromLog() async throws {
        let configuration = try kafka.configuration()
        let topics = kafka.topics
        var logger = Logger(label: "shardflow.check")
        logger.logLevel = .warning
        let admin = try KafkaAdmin(configuration: configuration, logger: logger)
        let count = try await admin.partitionCount(topic: topics.shardLog)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("shardflow-check-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var reports: [AuditReport] = []
        var lines: [String] = []
        for number in shard.map({ [$0] }) ?? Array(0..<count) {
            let result = try await ShardLogAudit.restore(shard: number, kafka: configuration, topics: topics, into: scratch,
                                                         logger: logger)
            reports.append(try ShardInspector(directory: scratch, shard: number)
                .audit(concurrencyBound: maxConcurrency, outboxAgeLimit: outboxAgeLimit))
            var line = "shard \(number): the log holds \(result.position.seq) transactions (epoch \(result.position.epoch), \(result.recordsRead) records)"
            if let dataDir, let local = try? ShardInspector(directory: dataDir, shard: number).logState() {
                let verdict = local.lastSeq == result.position.seq ? "current"
                    : local.lastSeq < result.position.seq ? "stale (\(result.position.seq - local.lastSeq) transactions behind; restored at its next use)"
                    : "ahead of the log (\(local.lastSeq - result.position.seq) transactions never confirmed; discarded at its next open)"
                line += "; the store in \(dataDir) is \(verdict)"
            }
            lines.append(line)
        }
        if json {
            try printJSON(reports)
        } else {
            print(lines.joined(separator: "\n"))
            print(InspectRendering.audit(reports))
        }
        if reports.contains(where: { !$0.isHealthy }) { throw ExitCode(1) }
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
