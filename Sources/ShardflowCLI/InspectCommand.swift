import ArgumentParser
import Foundation
import Shardflow
import ShardflowEngine

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
        abstract: "Audit every shard's invariants; exits 1 if any workflow is stuck or anything is broken.")

    @Option(help: "Directory of the shard stores.") var dataDir: String
    @Option(help: "The workers' --max-concurrency (bound on running tasks).") var maxConcurrency: Int = 50
    @Option(help: "Report a shard whose oldest unpublished outbox row is older than this (e.g. 5m, 60s).",
            transform: DurationArgument.parse)
    var outboxAgeLimit: Duration = .seconds(300)
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
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
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
