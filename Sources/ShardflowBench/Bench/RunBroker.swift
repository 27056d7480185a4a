import Logging
import ShardflowKafka
import ShardflowTesting

/// The broker a bench or a drill runs against: the cluster it was given, or a local one it starts itself
/// (with the client properties Tansu needs) and stops at the end.
struct RunBroker: Sendable {
    let local: LocalBroker?
    let kafka: KafkaConfiguration

    static func start(given brokers: String?, storage: LocalBroker.Storage, properties: [String: String],
                      logger: Logger, progress: @Sendable (String) -> Void) async throws -> RunBroker {
        guard brokers == nil else {
            return RunBroker(local: nil, kafka: KafkaConfiguration(bootstrapServers: brokers ?? "", properties: properties))
        }
        progress(storage == .memory ? "starting a local broker" : "starting a local broker on durable storage")
        let local = try await LocalBroker.started(storage: storage, logger: logger)
        let merged = properties.merging(LocalBroker.clientProperties) { given, _ in given }
        return RunBroker(local: local, kafka: KafkaConfiguration(bootstrapServers: local.bootstrapServers, properties: merged))
    }

    var bootstrapServers: String { kafka.bootstrapServers }

    func stop() async {
        if let local { await local.stop() }
    }
}
