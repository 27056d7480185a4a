import ArgumentParser
import Foundation
import Shardflow
import ShardflowEngine
import ShardflowJSON

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Publish operator commands to shards (see docs/operations.md).",
        subcommands: [FailPending.self, BumpEpoch.self, Resume.self, ClearReplayQueue.self, ClearTaskQueue.self,
                      FailParked.self])

    struct Target: ParsableArguments {
        @OptionGroup var kafka: KafkaOptions
        @Option(help: "A shard number, or 'all' (fail-parked --workflow finds the workflow's shard itself).") var shard: String?
        @Option(help: "Why (recorded with the command; the error of failed steps for fail-pending).") var reason: String?
        @Flag(help: "Wait for every answer, print them, exit non-zero if any was rejected.") var wait = false
        @Option(help: "Seconds to wait for answers.") var timeout: Int = 60

        func run(_ type: ControlCommandType, workflowId: String? = nil) async throws {
            let client = ControlClient(configuration: try kafka.configuration(), topics: kafka.topics)
            let shards: [Int]
            switch shard {
            case nil:
                guard let workflowId else { throw ValidationError("--shard is required (a shard number, or 'all')") }
                shards = [ShardRouting.partition(ofWorkflowId: workflowId, partitionCount: try await client.shardCount())]
            case "all"?:
                shards = Array(0..<(try await client.shardCount()))
            case let text?:
                guard let number = Int(text), number >= 0 else {
                    throw ValidationError("--shard takes a shard number or 'all', got '\(text)'")
                }
                shards = [number]
            }
            let idPrefix = LoadGenerator.runId(prefix: "ops-\(type.rawValue)")
            let results = try await client.send(type, shards: shards, reason: reason, idPrefix: idPrefix,
                                                wait: wait, timeout: .seconds(timeout), workflowId: workflowId)
            guard wait else {
                print("published \(type.rawValue) to \(shards.count) shard(s), command ids \(idPrefix)-<shard>")
                return
            }
            print(ControlRendering.table(results))
            let missing = shards.count - results.count
            if missing > 0 { print("\(missing) shard(s) did not answer within \(timeout) s") }
            if missing > 0 || results.contains(where: { $0.status == .rejected }) { throw ExitCode(1) }
        }
    }

    struct FailPending: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "fail-pending", abstract: "Fail every queued task.")
        @OptionGroup var target: Target
        func run() async throws { try await target.run(.failPendingTasks) }
    }

    struct BumpEpoch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "bump-epoch", abstract: "Stop the executors (in-flight steps finish).")
        @OptionGroup var target: Target
        func run() async throws { try await target.run(.bumpEpoch) }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resume", abstract: "Start an executor at the current epoch.")
        @OptionGroup var target: Target
        func run() async throws { try await target.run(.resumeExecutors) }
    }

    struct ClearReplayQueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clear-replay-queue", abstract: "Delete every replay-queue row (may leave workflows stuck).")
        @OptionGroup var target: Target
        func run() async throws { try await target.run(.clearReplayQueue) }
    }

    struct FailParked: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fail-parked",
            abstract: "Fail parked workflows on purpose: one (--workflow) or every parked one of the shards (--shard).")
        @OptionGroup var target: Target
        @Option(help: "The one parked workflow to fail (its shard is found from its id).") var workflow: String?
        func run() async throws {
            if let workflow, !InboundDecoding.isValidWorkflowId(workflow) {
                throw ValidationError("--workflow must be 1 to 200 characters of [A-Za-z0-9._:-]")
            }
            try await target.run(.failParkedWorkflows, workflowId: workflow)
        }
    }

    struct ClearTaskQueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clear-task-queue", abstract: "Delete every queued task (may leave workflows stuck).")
        @OptionGroup var target: Target
        func run() async throws { try await target.run(.clearTaskQueue) }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a workflow.")
    @OptionGroup var kafka: KafkaOptions
    @Argument(help: "The workflowId.") var workflowId: String
    @Option(help: "Why.") var reason: String?

    func run() async throws {
        let client = try WorkflowClient(configuration: try kafka.configuration(), topics: kafka.topics)
        let report = try await client.cancel(CancelMessage(workflowId: workflowId, reason: reason))
        await client.close()
        print("cancel of \(workflowId) published to shard \(report.partition)")
    }
}

struct SendEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "send-event", abstract: "Send a named event to a workflow.")
    @OptionGroup var kafka: KafkaOptions
    @Argument(help: "The workflowId.") var workflowId: String
    @Argument(help: "The event's name.") var name: String
    @Argument(help: "The event's value, as JSON.") var value: String

    func run() async throws {
        let json: JSONValue
        do {
            json = try JSONValue.parse(Array(value.utf8))
        } catch {
            throw ValidationError("the event value is not valid JSON (\(error)): \(value)")
        }
        let client = try WorkflowClient(configuration: try kafka.configuration(), topics: kafka.topics)
        let report = try await client.send(EventMessage(workflowId: workflowId, name: name, value: json))
        await client.close()
        print("event \(name) for \(workflowId) published to shard \(report.partition)")
    }
}
