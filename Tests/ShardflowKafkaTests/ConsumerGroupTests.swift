import ShardflowTesting
import Testing
@testable import ShardflowKafka

@Suite(.serialized, .timeLimit(.minutes(2))) struct ConsumerGroupTests {
    @Test func tenThousandMessagesOverHundredPartitionsAreConsumedOnceAfterCommits() async throws {
        let broker = try await LocalBroker.started()
        let configuration = broker.configuration
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: "group.tenk", partitions: 100)])
        let producer = try KafkaProducer(configuration: configuration)
        try await producePlainMessages(producer, topic: "group.tenk", range: 0..<10_000)

        let log = ConsumptionLog()
        let first = try KafkaConsumer(configuration: configuration, groupID: "tenk")
        try first.subscribe(topics: ["group.tenk"])
        let reader = Task { await consumeAndCommit(first, as: "first", into: log) }
        await log.wait { $0.allValues.count >= 10_000 }
        let assignedPartitions = Set(await log.assigned["first"]?.last ?? [])
        await first.close()
        await reader.value

        let values = await log.allValues
        #expect(values.count == 10_000)
        #expect(Set(values) == Set((0..<10_000).map(String.init)))
        #expect(assignedPartitions.count == 100)

        // A new member of the group starts at the committed offsets: it sees only what came after.
        try await producePlainMessages(producer, topic: "group.tenk", range: 10_000..<10_100)
        let second = try KafkaConsumer(configuration: configuration, groupID: "tenk")
        try second.subscribe(topics: ["group.tenk"])
        let later = ConsumptionLog()
        let secondReader = Task { await consumeAndCommit(second, as: "second", into: later) }
        await later.wait { $0.allValues.count >= 100 }
        await second.close()
        await secondReader.value
        #expect(await later.allValues.sorted() == (10_000..<10_100).map(String.init).sorted())
        await producer.close()
        await broker.stop()
    }

    @Test func aSecondConsumerJoiningSplitsPartitionsWithoutLossOrDuplicates() async throws {
        let broker = try await LocalBroker.started()
        let configuration = broker.configuration
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: "group.handover", partitions: 20)])
        let producer = try KafkaProducer(configuration: configuration)
        try await producePlainMessages(producer, topic: "group.handover", range: 0..<1_000)

        let log = ConsumptionLog()
        let a = try KafkaConsumer(configuration: configuration, groupID: "handover")
        try a.subscribe(topics: ["group.handover"])
        let readerA = Task { await consumeAndCommit(a, as: "a", into: log) }
        await log.wait { $0.allValues.count >= 1_000 }

        let b = try KafkaConsumer(configuration: configuration, groupID: "handover")
        try b.subscribe(topics: ["group.handover"])
        let readerB = Task { await consumeAndCommit(b, as: "b", into: log) }
        await log.wait { ($0.assigned["b"]?.count ?? 0) >= 1 && ($0.assigned["a"]?.count ?? 0) >= 2 }
        try await producePlainMessages(producer, topic: "group.handover", range: 1_000..<2_000)
        await log.wait { $0.allValues.count >= 2_000 && ($0.values["b"]?.count ?? 0) > 0 }

        let revokedA = await log.revoked["a"] ?? []
        let assignedA = Set(await log.assigned["a"]?.last ?? [])
        let assignedB = Set(await log.assigned["b"]?.last ?? [])
        #expect(revokedA.count >= 1)
        #expect(assignedA.isDisjoint(with: assignedB))
        #expect(assignedA.union(assignedB).count == 20)
        #expect(!assignedA.isEmpty && !assignedB.isEmpty)

        // B stops reading and leaves: its close revokes its partitions, and A gets everything back.
        readerB.cancel()
        await readerB.value
        await b.close()
        var closingEvents: [KafkaConsumerEvent] = []
        for await event in b.events { closingEvents.append(event) }
        #expect(closingEvents.contains { if case .revoked(let revoked) = $0 { Set(revoked) == assignedB } else { false } })
        await log.wait { ($0.assigned["a"]?.last?.count ?? 0) == 20 }
        await a.close()
        await readerA.value

        let values = await log.allValues
        #expect(values.count == 2_000, "duplicates or losses: \(values.count) values")
        #expect(Set(values) == Set((0..<2_000).map(String.init)))
        await producer.close()
        await broker.stop()
    }

    @Test func partitionsAssignedPausedReadNothingUntilResumedThenReadFromTheSeekOffset() async throws {
        let broker = try await LocalBroker.started()
        let configuration = broker.configuration
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: "group.paused", partitions: 2)])
        let producer = try KafkaProducer(configuration: configuration)
        for partition in 0..<2 {
            let results = await producer.sendAll((0..<50).map {
                KafkaProducerMessage(topic: "group.paused", partition: Int32(partition), key: nil, value: "\(partition):\($0)")
            })
            for result in results { _ = try result.get() }
        }
        let log = ConsumptionLog()
        let consumer = try KafkaConsumer(configuration: configuration, groupID: "paused",
                                         options: KafkaConsumerOptions(startsAssignedPartitionsPaused: true))
        try consumer.subscribe(topics: ["group.paused"])
        let reader = Task { await consumeAndCommit(consumer, as: "c", into: log) }
        await log.wait { ($0.assigned["c"]?.last?.count ?? 0) == 2 }
        // Assigned but paused: nothing is read, however long the application takes to get ready.
        try await Task.sleep(for: .seconds(3))
        #expect(await log.allValues.isEmpty)

        // Positioned, then resumed: partition 0 is read from offset 20 on, partition 1 still not at all.
        try await consumer.seek(topic: "group.paused", partition: 0, offset: 20)
        try consumer.resume([TopicPartition(topic: "group.paused", partition: 0)])
        await log.wait { $0.allValues.count >= 30 }
        try await Task.sleep(for: .seconds(1))
        #expect(await log.allValues == (20..<50).map { "0:\($0)" })

        try consumer.resume([TopicPartition(topic: "group.paused", partition: 1)])
        await log.wait { $0.allValues.count >= 80 }
        #expect(await log.values["c"]?.filter { $0.hasPrefix("1:") } == (0..<50).map { "1:\($0)" })
        await consumer.close()
        await reader.value
        await producer.close()
        await broker.stop()
    }
}
