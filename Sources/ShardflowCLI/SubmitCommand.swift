import ArgumentParser
import Foundation
import Shardflow
import ShardflowEngine
import ShardflowJSON
import ShardflowSupport

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Start one workflow, or --count N of them (a load with generated ids and increasing createdAt).")

    @OptionGroup var kafka: KafkaOptions
    @Option(help: "Name of a workflow registered in the worker.") var workflow: String
    @Option(help: "The workflow's args, as JSON.") var args: String = "{}"
    @Option(help: "The workflowId (one workflow). Default: generated.") var id: String?
    @Option(help: "Start this many workflows with generated ids.") var count: Int?
    @Option(help: "Prefix of generated workflow ids.") var idPrefix: String = "wf"
    @Option(help: "The registered version of the workflow to run. Default: the newest the worker has.") var version: Int?

    func run() async throws {
        let argsValue: JSONValue
        do {
            argsValue = try JSONValue.parse(Array(args.utf8))
        } catch {
            throw ValidationError("--args is not valid JSON (\(error)): \(args)")
        }
        if let version, !(1...WorkflowRegistry.maxVersion).contains(version) {
            throw ValidationError("--version must be from 1 to \(WorkflowRegistry.maxVersion)")
        }
        let client = try WorkflowClient(configuration: try kafka.configuration(), topics: kafka.topics)
        defer { Task { await client.close() } }
        if let count {
            guard count > 0 else { throw ValidationError("--count must be positive") }
            guard id == nil else { throw ValidationError("--id and --count exclude each other") }
            let messages = LoadGenerator.starts(workflow: workflow, args: argsValue, count: count, idPrefix: idPrefix,
                                               version: version)
            let started = ContinuousClock.now
            try await client.startAll(messages) { delivered in
                let seconds = max(0.001, (ContinuousClock.now - started).timeInterval)
                FileHandle.standardError.write(Data("\rsubmitted \(delivered)/\(count) (\(Int(Double(delivered) / seconds))/s)".utf8))
            }
            FileHandle.standardError.write(Data("\n".utf8))
            print("submitted \(count) \(workflow) workflows: \(messages.first?.workflowId ?? "") … \(messages.last?.workflowId ?? "")")
        } else {
            let workflowId = id ?? LoadGenerator.runId(prefix: idPrefix)
            guard InboundDecoding.isValidWorkflowId(workflowId) else {
                throw ValidationError("invalid workflowId '\(workflowId)': 1 to 200 characters of [A-Za-z0-9._:-]")
            }
            let report = try await client.start(StartMessage(workflowId: workflowId, workflow: workflow, args: argsValue,
                                                             createdAt: Int64(Date().timeIntervalSince1970 * 1000),
                                                             version: version))
            print("started \(workflowId) (\(workflow)) on shard \(report.partition) at offset \(report.offset)")
        }
        await client.close()
    }
}
