import Foundation
import Logging
@testable import Shardflow
import ShardflowEngine
import ShardflowJSON
import Synchronization
import Testing

/// A shard's intake applies what the consumers hand it in offset order, makes only a workflows consumer
/// wait when it is full, and drops what is queued when it closes (the store's offset says where to read again).
@Suite struct ShardIntakeTests {
    private static func openShard() async throws -> (Shard, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sf-intake-\(UUID().uuidString)").path
        var registry = WorkflowRegistry()
        registry.registerWorkflow("echo", args: Int.self, result: Int.self) { _, value in value }
        return (try await Shard.open(directory: directory, shard: 0, registry: registry), directory)
    }

    private static func starts(_ offsets: Range<Int>) throws -> [InboundMessage] {
        try offsets.map { offset in
            InboundMessage(stream: .workflows, topic: "shardflow.workflows", partition: 0, offset: Int64(offset),
                           key: Array("w-\(offset)".utf8),
                           value: try StartMessage(workflowId: "w-\(offset)", workflow: "echo", args: .int(Int64(offset))).contractJSON(),
                           timestamp: 1_795_900_000_000)
        }
    }

    private static func waitUntil(_ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while try !condition() {
            guard ContinuousClock.now < deadline else { Issue.record("condition not met within 20 s"); return }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func messagesAppendedInSeveralBatchesAreAllAppliedInOrder() async throws {
        let (shard, directory) = try await Self.openShard()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A small batch limit, so the intake's transactions split the appends differently than they came.
        let intake = ShardIntake(shard: shard, logger: Logger(label: "test"), batchLimit: 7)
        let running = Task { await intake.run() }
        for range in [0..<5, 5..<30, 30..<31, 31..<60] {
            await intake.append(try Self.starts(range), waitForRoom: true)
        }
        try await Self.waitUntil { try shard.stats().nextWorkflowsOffset == 60 }
        // Out of order, a lower offset would have been skipped as already applied.
        #expect(try shard.stats().workflowsByStatus.values.reduce(0, +) == 60)
        #expect(intake.depth == 0)
        intake.close()
        await running.value
        await shard.close()
    }

    @Test func aFullIntakeHoldsBackOnlyWorkflowMessagesUntilItDrains() async throws {
        let (shard, directory) = try await Self.openShard()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let intake = ShardIntake(shard: shard, logger: Logger(label: "test"), capacity: 1)
        await intake.append(try Self.starts(0..<3), waitForRoom: true)  // room: the queue was empty
        let returned = Atomic<Bool>(false)
        let waiting = Task {
            await intake.append(try! Self.starts(3..<6), waitForRoom: true)
            returned.store(true, ordering: .sequentiallyConsistent)
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(returned.load(ordering: .sequentiallyConsistent) == false, "a full intake must hold the workflows consumer")
        #expect(intake.depth == 3)
        // A control message is not held back.
        let command = ControlCommand(type: .resumeExecutors, shard: 0, commandId: "c-1", reason: nil)
        await intake.append([InboundMessage(stream: .control, topic: "shardflow.control", partition: 0, offset: 0, key: nil,
                                            value: try command.contractJSON(), timestamp: 1_795_900_000_000)],
                            waitForRoom: false)
        #expect(intake.depth == 4)
        let running = Task { await intake.run() }
        await waiting.value
        try await Self.waitUntil { try shard.stats().nextWorkflowsOffset == 6 && shard.stats().nextControlOffset == 1 }
        #expect(try shard.stats().workflowsByStatus.values.reduce(0, +) == 6)
        intake.close()
        await running.value
        await shard.close()
    }

    @Test func closingDropsWhatIsQueuedAndReleasesAWaitingConsumer() async throws {
        let (shard, directory) = try await Self.openShard()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let intake = ShardIntake(shard: shard, logger: Logger(label: "test"), capacity: 1)
        await intake.append(try Self.starts(0..<3), waitForRoom: true)
        let waiting = Task { await intake.append(try! Self.starts(3..<6), waitForRoom: true) }
        intake.close()
        await waiting.value
        #expect(intake.depth == 0)
        await intake.append(try Self.starts(6..<7), waitForRoom: true)
        #expect(intake.depth == 0, "a closed intake takes nothing")
        await intake.run()  // returns at once: closed
        #expect(try shard.stats().nextWorkflowsOffset == nil, "nothing queued was applied")
        await shard.close()
    }
}
