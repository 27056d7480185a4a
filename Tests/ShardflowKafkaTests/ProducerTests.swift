import ShardflowSupport
import ShardflowTesting
import Testing
@testable import ShardflowKafka

@Suite(.serialized) struct ProducerTests {
    @Test func produceToMissingTopicReportsAnError() async throws {
        let broker = try await LocalBroker.started()
        let configuration = KafkaConfiguration(bootstrapServers: broker.bootstrapServers, properties: [
            "allow.auto.create.topics": "false",
            "topic.metadata.propagation.max.ms": "1000",
            "message.timeout.ms": "5000",
        ])
        let producer = try KafkaProducer(configuration: configuration)
        let result = await producer.sendAll([KafkaProducerMessage(topic: "does.not.exist", key: "k", value: "v")])
        await producer.close()
        await broker.stop()
        guard case .failure(let error) = result[0] else {
            Issue.record("produce to a missing topic succeeded: \(result[0])")
            return
        }
        #expect(error.name.contains("UNKNOWN_TOPIC") || error.name.contains("MSG_TIMED_OUT"), "\(error)")
    }

    @Test func aProducerInAFatalStateReplacesItsInstanceAndDeliversWhatFailed() async throws {
        let broker = try await LocalBroker.started()
        let configuration = broker.configuration
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: "produce.fatal", partitions: 1)])
        let producer = try KafkaProducer(configuration: configuration)
        let before = try await producer.send(KafkaProducerMessage(topic: "produce.fatal", key: "a", value: "1"))
        producer.injectFatalErrorForTesting()
        // Without the replacement every later message would fail with the fatal error.
        let after = await producer.sendAll((2...5).map { KafkaProducerMessage(topic: "produce.fatal", key: "a", value: "\($0)") })
        for result in after {
            let report = try result.get()
            #expect(report.offset > before.offset)
        }
        await producer.close()
        await broker.stop()
    }

    @Test func deliveryReportsCarryPartitionAndOffset() async throws {
        let broker = try await LocalBroker.started()
        let configuration = broker.configuration
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: "produce.reports", partitions: 4)])
        let producer = try KafkaProducer(configuration: configuration)
        let first = try await producer.send(KafkaProducerMessage(topic: "produce.reports", partition: 2, key: "a", value: "1"))
        let second = try await producer.send(KafkaProducerMessage(topic: "produce.reports", partition: 2, key: "a", value: "2"))
        #expect(first.partition == 2 && second.partition == 2)
        #expect(second.offset == first.offset + 1)
        let keyed = await producer.sendAll((0..<100).map { KafkaProducerMessage(topic: "produce.reports", key: "same-key", value: "\($0)") })
        let partitions = Set(try keyed.map { try $0.get().partition })
        #expect(partitions.count == 1)
        await producer.close()
        await #expect(throws: KafkaError.self) { try await producer.send(KafkaProducerMessage(topic: "produce.reports", key: "a", value: "late")) }
        await broker.stop()
    }

    /// Prints the producer's throughput (a figure, not an assertion on speed).
    @Test func sendAllOfFiftyThousandSmallMessagesDeliversEveryOne() async throws {
        let broker = try await LocalBroker.started()
        let configuration = broker.configuration
        try await KafkaAdmin(configuration: configuration).createTopics([NewTopic(name: "produce.bulk", partitions: 100)])
        let producer = try KafkaProducer(configuration: configuration)
        let messages = (0..<50_000).map { KafkaProducerMessage(topic: "produce.bulk", key: "workflow-\($0)", value: "{\"type\":\"start\",\"n\":\($0)}") }
        let clock = ContinuousClock()
        let started = clock.now
        let results = await producer.sendAll(messages)
        let elapsed = clock.now - started
        let seconds = elapsed.timeInterval
        print("producer throughput: \(messages.count) messages in \(elapsed): \(Int(Double(messages.count) / seconds)) msgs/s (librdkafka \(Librdkafka.version))")
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        await producer.close()
        await broker.stop()
    }
}
