import ArgumentParser
import Foundation
import Logging
import Shardflow
import ShardflowKafka

/// Where the brokers are and how to talk to them; shared by every command that touches Kafka.
struct KafkaOptions: ParsableArguments {
    @Option(help: "Bootstrap servers (host:port,...). Default: $SHARDFLOW_BROKERS or 127.0.0.1:9092.")
    var brokers: String = ProcessInfo.processInfo.environment["SHARDFLOW_BROKERS"] ?? "127.0.0.1:9092"

    @Option(help: "Prefix of every topic name.")
    var prefix: String = "shardflow"

    @Option(name: .customShort("X"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("A librdkafka property, key=value (TLS, SASL, timeouts...). Repeatable.",
                               valueName: "key=value"))
    var properties: [String] = []

    var topics: ShardflowTopics { ShardflowTopics(prefix: prefix) }

    func configuration() throws -> KafkaConfiguration {
        var configuration = KafkaConfiguration(bootstrapServers: brokers)
        do {
            try configuration.add(assignments: properties)
        } catch {
            throw ValidationError("\(error)")
        }
        return configuration
    }
}

/// Log level and format; bootstraps swift-log.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Log format: text or json.")
    var logFormat: String = "text"

    func bootstrap(label: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level '\(logLevel)'")
        }
        guard let format = LogFormat(rawValue: logFormat) else {
            throw ValidationError("unknown log format '\(logFormat)' (text or json)")
        }
        format.bootstrap(level: level)
        return Logger(label: label)
    }

    /// For commands that print a report (demo, drill): warnings and worse unless another level was asked for.
    func bootstrapForReport(label: String) throws -> Logger {
        var quieter = self
        if quieter.logLevel == "info" { quieter.logLevel = "warning" }
        return try quieter.bootstrap(label: label)
    }
}
