import ShardflowTesting
import Testing
@testable import ShardflowKafka

@Suite(.serialized, .timeLimit(.minutes(3))) struct DurableBrokerTests {
    @Test func killedBrokerComesBackWithTopicsRecordsAndCommittedOffsets() async throws {
        let broker = try await LocalBroker.started(storage: .objectStore)
        #expect(broker.objectStore?.isRunning == true)
        let configuration = broker.configuration
        let topic = "durable.records"
        let count = 1_000
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: topic, partitions: 100)])
        let producer = try KafkaProducer(configuration: configuration)
        try await producePlainMessages(producer, topic: topic, range: 0..<count)

        // A group reads and commits a part (its first batches), then leaves.
        let log = ConsumptionLog()
        let half = try KafkaConsumer(configuration: configuration, groupID: "durable.half")
        try half.subscribe(topics: [topic])
        let halfReader = Task { await consumeAndCommit(half, as: "half", into: log) }
        await log.wait { $0.allValues.count >= 1 }
        await half.close()
        await halfReader.value
        let committedBefore = await log.allValues

        await broker.kill()
        #expect(!broker.isRunning)
        #expect(await LocalBroker.answersMetadata(broker.bootstrapServers) == false)
        let clock = ContinuousClock()
        let restarting = clock.now
        try await broker.start()
        print("durable broker restart after kill -9: metadata answers after \(clock.now - restarting)")

        let topics = try await KafkaAdmin(configuration: configuration).listTopics()
        #expect(topics.first { $0.name == topic }?.partitionCount == 100)

        // Every record is back, read by a group that has no offsets yet.
        let fresh = ConsumptionLog()
        let reader = try KafkaConsumer(configuration: configuration, groupID: "durable.fresh")
        try reader.subscribe(topics: [topic])
        let freshReader = Task { await consumeAndCommit(reader, as: "fresh", into: fresh) }
        await fresh.wait { $0.allValues.count >= count }
        await reader.close()
        await freshReader.value
        let values = await fresh.allValues
        #expect(values.count == count)
        #expect(Set(values) == Set((0..<count).map(String.init)))

        // The producer made before the kill goes on; the first group resumes at its committed offsets.
        try await producePlainMessages(producer, topic: topic, range: count..<(count + 10))
        let rest = ConsumptionLog()
        let resumed = try KafkaConsumer(configuration: configuration, groupID: "durable.half")
        try resumed.subscribe(topics: [topic])
        let resumedReader = Task { await consumeAndCommit(resumed, as: "resumed", into: rest) }
        let expected = count + 10 - committedBefore.count
        await rest.wait { $0.allValues.count >= expected }
        await resumed.close()
        await resumedReader.value
        let after = await rest.allValues
        #expect(after.count == expected)
        #expect(Set(after + committedBefore) == Set((0..<(count + 10)).map(String.init)))
        #expect(Set(after).isDisjoint(with: committedBefore))

        await producer.close()
        await broker.shutdown()
        #expect(broker.objectStore?.isRunning == false)
    }

    @Test func stoppedDurableBrokerKeepsItsTopics() async throws {
        let broker = try await LocalBroker.started(storage: .objectStore)
        try await KafkaAdmin(configuration: broker.configuration).createTopics([NewTopic(name: "durable.kept", partitions: 3)])
        await broker.stop()
        try await broker.start()
        #expect(try await KafkaAdmin(configuration: broker.configuration).partitionCount(topic: "durable.kept") == 3)
        await broker.shutdown()
    }

    @Test func pausedBrokerAnswersAgainOnceResumed() async throws {
        let broker = try await LocalBroker.started()
        broker.pause()
        #expect(broker.isPaused && broker.isRunning)
        #expect(await LocalBroker.answersMetadata(broker.bootstrapServers) == false)
        broker.resume()
        #expect(!broker.isPaused)
        #expect(await LocalBroker.answersMetadata(broker.bootstrapServers))

        // start() resumes a paused broker; stop() ends a paused one.
        broker.pause()
        try await broker.start()
        #expect(!broker.isPaused)
        broker.pause()
        await broker.stop()
        #expect(!broker.isRunning && !broker.isPaused)
    }

    @Test func killedMemoryBrokerRestartsEmptyOnTheSamePort() async throws {
        let broker = try await LocalBroker.started()
        try await KafkaAdmin(configuration: broker.configuration).createTopics([NewTopic(name: "memory.lost", partitions: 1)])
        await broker.kill()
        #expect(!broker.isRunning)
        try await broker.start()
        let names = try await KafkaAdmin(configuration: broker.configuration).listTopics().map(\.name)
        #expect(!names.contains("memory.lost"))
        await broker.stop()
    }
}
