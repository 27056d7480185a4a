import Testing
@testable import ShardflowKafka

@Suite struct LibrdkafkaVersionTests {
    @Test func loadedVersionIsSupported() throws {
        try Librdkafka.requireSupportedVersion()
        #expect(Librdkafka.versionNumber >= Librdkafka.minimumSupportedVersionNumber)
        #expect(Librdkafka.version.hasPrefix("2."))
    }

    @Test func debiansOldVersionIsRejectedWithCauseAndFix() {
        #expect(throws: UnsupportedLibrdkafkaError.self) {
            try Librdkafka.requireSupportedVersion(loaded: 0x0200_02ff, text: "2.0.2")
        }
        let message = UnsupportedLibrdkafkaError(loadedVersion: "2.0.2").description
        #expect(message.contains("Read underflow"))
        #expect(message.contains("scripts/setup.sh"))
        #expect(message.contains("LD_LIBRARY_PATH"))
    }

    @Test func secretsNeverShowInDescriptions() throws {
        var configuration = KafkaConfiguration(bootstrapServers: "127.0.0.1:1")
        try configuration.add(assignments: ["sasl.password=hunter2", "security.protocol=SASL_SSL"])
        #expect(!configuration.description.contains("hunter2"))
        #expect(configuration.description.contains("SASL_SSL"))
        #expect(throws: KafkaError.self) { try configuration.add(assignments: ["no-equals-sign"]) }
        let bad = configuration.setting("ssl.key.password", "topsecret").setting("linger.ms", "topsecret")
        do {
            _ = try KafkaProducer(configuration: bad)
            Issue.record("an invalid linger.ms was accepted")
        } catch let error as KafkaError {
            #expect(!error.description.contains("topsecret"))
            #expect(error.description.contains("linger.ms"))
        }
    }
}
