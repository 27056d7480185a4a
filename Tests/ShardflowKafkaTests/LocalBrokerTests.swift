import ShardflowTesting
import Testing
@testable import ShardflowKafka

@Suite(.serialized) struct LocalBrokerTests {
    @Test func stopsAndStartsAgainOnTheSamePort() async throws {
        let broker = try await LocalBroker.started()
        #expect(broker.isRunning)
        await broker.stop()
        #expect(!broker.isRunning)
        #expect(await LocalBroker.answersMetadata(broker.bootstrapServers) == false)
        try await broker.start()
        #expect(await LocalBroker.answersMetadata(broker.bootstrapServers))
        await broker.stop()
    }
}
