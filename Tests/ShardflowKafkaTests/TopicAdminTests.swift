import ShardflowTesting
import Testing
@testable import ShardflowKafka

@Suite(.serialized) struct TopicAdminTests {
    @Test func creatingTopicsTwiceLeavesTheSameTopics() async throws {
        let broker = try await LocalBroker.started()
        defer { _ = broker }
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: broker.bootstrapServers))
        let wanted = [NewTopic(name: "admin.a", partitions: 3), NewTopic(name: "admin.b", partitions: 100)]
        try await admin.createTopics(wanted)
        let first = try await admin.listTopics()
        try await admin.createTopics(wanted)
        let second = try await admin.listTopics()
        #expect(first == second)
        #expect(first.map(\.name) == ["admin.a", "admin.b"])
        #expect(try await admin.partitionCount(topic: "admin.b") == 100)
        await #expect(throws: KafkaError.self) { try await admin.partitionCount(topic: "admin.missing") }
        await broker.stop()
    }
}
