import ArgumentParser
import Shardflow
import ShardflowKafka

struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics", abstract: "Manage the contract's topics.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create every topic of the contract (idempotent) and print them.")

        @OptionGroup var kafka: KafkaOptions
        @Option(help: "Partitions of the workflows and control topics: the number of shards.")
        var partitions: Int = 100
        @Option(help: "Replication factor of new topics.")
        var replicationFactor: Int = 1

        func run() async throws {
            guard partitions > 0 else { throw ValidationError("--partitions must be positive") }
            try Librdkafka.requireSupportedVersion()
            let admin = try KafkaAdmin(configuration: try kafka.configuration())
            let created = try await TopicSetup.createAll(admin: admin, topics: kafka.topics, partitions: partitions,
                                                         replicationFactor: replicationFactor)
            for topic in created.topics {
                print("\(topic.name)\t\(topic.partitionCount) partitions")
            }
        }
    }
}
