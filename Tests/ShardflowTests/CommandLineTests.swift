import Foundation
import ShardflowTesting
import Testing

/// The `shardflow` binary as an operator runs it.
@Suite("Command line")
struct CommandLineTests {
    @Test("-X properties reach librdkafka (librdkafka itself refuses an invalid one) and secrets never show")
    func kafkaPropertiesPassThrough() async throws {
        let run = try await ChildProcess.run([
            Repository.shardflowBinary, "topics", "create", "--brokers", "127.0.0.1:1",
            "-X", "sasl.password=hunter2", "-X", "security.protocol=sasl_ssl", "-X", "sasl.mechanisms=NOT-A-MECHANISM",
        ])
        #expect(run.status != 0)
        #expect(run.output.contains("Unsupported SASL mechanism: NOT-A-MECHANISM"), "\(run.output)")
        #expect(!run.output.contains("hunter2"))
    }

    @Test("a malformed -X is a usage error, not a crash")
    func malformedProperty() async throws {
        let run = try await ChildProcess.run([Repository.shardflowBinary, "tail", "completions", "-X", "no-equals-sign"])
        #expect(run.status == 64, "\(run.output)")
        #expect(run.output.contains("key=value"))
    }
}
