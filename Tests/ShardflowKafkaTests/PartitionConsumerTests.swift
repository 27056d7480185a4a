import ShardflowTesting
import Testing
@testable import ShardflowKafka

@Suite(.serialized, .timeLimit(.minutes(1))) struct PartitionConsumerTests {
    @Test func manualAssignmentReadsFromGivenOffsetsAndCanSeek() async throws {
        let broker = try await LocalBroker.started()
        let configuration = broker.configuration
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: "manual", partitions: 3)])
        let producer = try KafkaProducer(configuration: configuration)
        for (partition, count) in [(1, 10), (2, 5)] {
            let results = await producer.sendAll((0..<count).map {
                KafkaProducerMessage(topic: "manual", partition: Int32(partition), key: nil, value: "p\(partition)-\($0)")
            })
            for result in results { _ = try result.get() }
        }

        let consumer = try KafkaPartitionConsumer(configuration: configuration)
        var events = consumer.events.makeAsyncIterator()
        func read(_ count: Int) async -> [KafkaMessage] {
            var messages: [KafkaMessage] = []
            while messages.count < count, let event = await events.next() {
                if case .messages(let batch) = event { messages += batch }
            }
            return messages
        }

        try await consumer.assign([TopicPartitionOffset(topic: "manual", partition: 1, offset: 3)])
        let fromThree = await read(7)
        #expect(fromThree.map(\.offset) == Array(3..<10))
        #expect(fromThree.allSatisfy { $0.partition == 1 && $0.timestamp != nil })

        try await consumer.assign([TopicPartitionOffset(topic: "manual", partition: 2, offset: TopicPartitionOffset.beginning)])
        let second = await read(5)
        #expect(second.map { String(decoding: $0.value, as: UTF8.self) } == (0..<5).map { "p2-\($0)" })
        #expect(Set(try await consumer.assignment()) == [TopicPartition(topic: "manual", partition: 1), TopicPartition(topic: "manual", partition: 2)])

        try await consumer.seek(topic: "manual", partition: 1, offset: 8)
        #expect(await read(2).map(\.offset) == [8, 9])

        try await consumer.unassign([TopicPartition(topic: "manual", partition: 1)])
        #expect(try await consumer.assignment() == [TopicPartition(topic: "manual", partition: 2)])
        await consumer.close()
        #expect(await events.next() == nil)
        await producer.close()
        await broker.stop()
    }
}
